"""Scoring a list of architectures into Parquet across Ray workers: chunked flushes, resume, the command."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from search_spaces.nb201 import all_architectures, network
from trainables.proxies.batch import proxy_batch
from trainables.proxy_stage.score_space import read_arch_list, read_scores, score_space, scored_architectures

REPO = Path(__file__).resolve().parents[2]
ARCHS = all_architectures()[::1100][:14]  # 12 + 2 spread over the space


def _params(arch: str) -> float:
    return float(sum(p.numel() for p in network(arch, 10, C=4, N=1).parameters()))


def test_read_arch_list_validates_lines(tmp_path):
    path = tmp_path / "archs.txt"
    path.write_text(f"# two archs\n{ARCHS[0]}\n\n{ARCHS[1]}\n")
    assert read_arch_list(path) == ARCHS[:2]
    path.write_text(f"{ARCHS[0]}\n|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    with pytest.raises(ValueError, match=r"archs.txt:2: .*unknown op 'conv'"):
        read_arch_list(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_arch_list(tmp_path / "missing.txt")


@pytest.mark.slow
def test_score_space_chunks_and_resumes(local_ray, tmp_path, tiny_cifar10):
    batch = proxy_batch("cifar10", tiny_cifar10, 4)
    out = tmp_path / "scores"
    kwargs = dict(size={"C": 4, "N": 1}, archs_per_task=3, flush_every=5, progress=False, max_in_flight=2)
    first = score_space(out, batch, ["params", "naswot"], archs=ARCHS[:12], **kwargs)
    assert first == {"total": 12, "skipped": 0, "scored": 12}
    assert len(list(out.glob("part-*.parquet"))) >= 2  # flushed in chunks, not held until the end
    assert scored_architectures(out) == set(ARCHS[:12])

    again = score_space(out, batch, ["params", "naswot"], archs=ARCHS, **kwargs)
    assert again == {"total": 14, "skipped": 12, "scored": 2}
    frame = read_scores(out)
    assert sorted(frame.arch) == sorted(ARCHS) and frame.arch.is_unique
    assert list(frame.columns) == ["arch", "params", "params_error", "naswot", "naswot_error"]
    for arch, params in zip(frame.arch, frame.params):
        assert params == _params(arch)
    # an all-`none` cell has no path from input to output: an explicit error, not a NaN
    row = frame.set_index("arch").loc["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    assert "singular" in row.naswot_error and row.naswot != row.naswot

    with pytest.raises(ValueError, match="holds scores for proxies"):
        score_space(out, batch, ["synflow"], archs=ARCHS, **kwargs)


@pytest.mark.slow
def test_score_space_command(local_ray, tmp_path, tiny_cifar10):
    spec = importlib.util.spec_from_file_location("score_space_cmd", REPO / "platform" / "score_space.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(ARCHS[:3]) + "\n")
    out = tmp_path / "cmd"
    argv = [str(out), "--archs", str(archs), "--names", "params", "flops", "--data-root", str(tiny_cifar10),
            "--batch-size", "4", "--size", "C=4", "N=1", "--archs-per-task", "2", "--no-progress"]
    assert module.main(argv) == 0
    frame = read_scores(out)
    assert sorted(frame.arch) == sorted(ARCHS[:3])
    assert module.main(argv) == 0  # resumed: nothing left to do, nothing duplicated
    assert len(read_scores(out)) == 3
