"""The op-probability figure: one row of panels per group of the space's `arch_shapes`, whatever the space, with
titles that do not overlap one another or any axes, at a 50-epoch search."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from _frames import make_frames, write_run

from analysis import load
from analysis import plots as P
from analysis.frames import op_probabilities
from search_spaces.space import available_spaces, get_space

EPOCHS = 50


def epoch_rows(space: str, epochs: int = EPOCHS, seeds=(0, 1), method: str = "darts", seed: int = 0) -> pd.DataFrame:
    """Epoch rows of `seeds` trials whose per-group probabilities drift from uniform towards one option per row
    (a softmax of a random walk with a pull), in the `op_probs` JSON the search loop writes."""
    shapes = get_space(space).arch_shapes
    rng = np.random.default_rng(seed)
    rows = []
    for k, s in enumerate(seeds):
        target = {g: rng.integers(0, o, size=r) for g, (r, o) in shapes.items()}
        logits = {g: np.zeros(shape) for g, shape in shapes.items()}
        for e in range(1, epochs + 1):
            probs = {}
            for g, (r, o) in shapes.items():
                logits[g] += rng.normal(scale=0.15, size=(r, o))
                logits[g][np.arange(r), target[g]] += 0.08
                p = np.exp(logits[g] - logits[g].max(axis=1, keepdims=True))
                probs[g] = (p / p.sum(axis=1, keepdims=True)).tolist()
            rows.append({"trial_id": f"t{k:03d}", "method": method, "seed": s, "epoch": e, "space": space,
                         "dataset": "cifar10", "op_probs": json.dumps(probs)})
    return pd.DataFrame(rows)


def _figure(space: str):
    long = op_probabilities(epoch_rows(space))
    groups = P.group_probabilities(long, space)
    return P.op_probability_figure(groups, f"darts: architecture probabilities ({space})"), groups


def _title_overlaps(fig) -> list[str]:
    """Pairs (title, thing) whose window extents overlap: titles (the figure's too) against each other, and each
    title against every axes' area, tick labels and axis labels (colour bars included)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes if ax.get_title()] + ([fig._suptitle] if fig._suptitle else [])
    boxes = [(f"title {t.get_text()!r}", t.get_window_extent(renderer)) for t in titles]
    bad = [f"{a} / {b}" for (a, ba), (b, bb) in combinations(boxes, 2) if ba.overlaps(bb)]
    for name, box in boxes:
        for ax in fig.axes:
            things = [("axes area", ax.get_window_extent(renderer)),
                      ("x axis", ax.xaxis.get_tightbbox(renderer)), ("y axis", ax.yaxis.get_tightbbox(renderer))]
            for what, other in things:
                if other is not None and other.width > 0 and box.overlaps(other):
                    bad.append(f"{name} / {what} of {ax.get_title() or 'a colour bar'}")
    return bad


@pytest.mark.parametrize("space", sorted(available_spaces()))
def test_one_row_of_panels_per_group_and_no_title_overlaps(space):
    import matplotlib.pyplot as plt

    fig, groups = _figure(space)
    try:
        shapes = get_space(space).arch_shapes
        assert [g.group for g in groups] == list(shapes)  # the space's order
        for g in groups:
            assert g.final.shape == shapes[g.group] and g.per_epoch.shape == (EPOCHS, *shapes[g.group])
            assert g.rows == get_space(space).row_names(g.group)
            assert g.options == list(get_space(space).option_names[g.group])
            np.testing.assert_allclose(g.final.sum(axis=1), 1.0, rtol=1e-9)
        # per group: final heatmap, mean per option, most likely option per row; plus one colour bar per heatmap
        titled = [ax for ax in fig.axes if ax.get_title()]
        assert len(titled) == 3 * len(shapes) and len(fig.axes) == 4 * len(shapes)
        for g in groups:
            assert sum(ax.get_title().startswith(f"{g.group}: ") for ax in titled) == 3
        assert _title_overlaps(fig) == []
    finally:
        plt.close(fig)


def test_final_heatmap_shows_the_mean_of_each_trials_last_epoch():
    frame = epoch_rows("nb201", epochs=6, seeds=(0, 1, 2), seed=3)
    frame = frame[~((frame["trial_id"] == "t002") & (frame["epoch"] > 4))]  # one trial stopped at epoch 4
    groups = P.group_probabilities(op_probabilities(frame), "nb201")
    last = frame.loc[frame.groupby("trial_id")["epoch"].idxmax(), "op_probs"]
    want = np.mean([np.asarray(json.loads(raw)["edges"]) for raw in last], axis=0)
    np.testing.assert_allclose(groups[0].final, want, rtol=1e-12)
    np.testing.assert_allclose(groups[0].per_epoch[0], np.mean(
        [np.asarray(json.loads(raw)["edges"]) for raw in frame.loc[frame["epoch"] == 1, "op_probs"]], axis=0))


def test_an_unknown_space_gets_generic_labels(tmp_path):
    frame = epoch_rows("nb201", epochs=3).assign(space="my-space")
    groups = P.group_probabilities(op_probabilities(frame), "my-space")
    assert groups[0].rows == [f"edges[{i}]" for i in range(6)] and groups[0].options == [f"op{i}" for i in range(5)]


def test_the_report_plot_writes_one_figure_per_config_with_its_final_numbers(tmp_path):
    frames = make_frames(methods=("darts",), proxies=False, failed=None, seed=5)
    t = load(write_run(tmp_path / "r", frames))
    plot = P.op_probability_heatmaps(t, tmp_path / "out")
    assert [p.name for p in plot.paths] == ["op_probs_darts.png"]
    shown = plot.data["op_probs_darts.png"]
    ep = frames["epochs"]
    last = ep[ep["epoch"] == ep["epoch"].max()]
    want = np.mean([np.asarray(json.loads(raw)["edges"]) for raw in last["op_probs"]], axis=0)
    got = shown.pivot(index="row", columns="option", values="prob")
    got = got.loc[get_space("nb201").row_names("edges"), list(get_space("nb201").option_names["edges"])]
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-12)
