"""The chosen architectures of a sweep, whatever the space: a table (method, seed, rule, architecture,
parameters of the proxy-size network, proxy scores, ground truth where known) and the space's pictures of
them (`SearchSpace.draw`, e.g. DARTS' normal and reduction cells)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from search_spaces.space import available_spaces, get_space

MAX_PICTURES = 12


def _params_m(space, arch: str) -> float:
    import torch

    try:
        with torch.device("meta"):      # shapes only: nothing allocated or initialised
            net = space.network(arch)
    except (RuntimeError, NotImplementedError):    # a network whose construction needs real tensors
        net = space.network(arch)
    return sum(p.numel() for p in net.parameters()) / 1e6


def chosen_table(sel: pd.DataFrame, space_name: str | None, proxy_names: list[str]) -> pd.DataFrame:
    """One row per (trial, rule): method, seed, rule, arch, params_M, proxies and bench_* columns present (empty
    where the space is not known: its networks count the parameters)."""
    if sel.empty or "arch" not in sel.columns or space_name not in available_spaces():
        return pd.DataFrame()
    space = get_space(space_name)
    out = sel.copy()
    params = {a: _params_m(space, a) for a in out["arch"].dropna().unique()}
    out["params_M"] = out["arch"].map(params)
    keep = [c for c in ("method", "seed", "rule", "arch", "params_M") if c in out.columns]
    keep += [c for c in proxy_names if c in out.columns]
    keep += sorted(c for c in out.columns if str(c).startswith("bench_"))
    sort = [c for c in ("method", "seed", "rule") if c in out.columns]
    return out[keep].sort_values(sort).reset_index(drop=True)


def section(sel: pd.DataFrame, space_name: str | None, proxy_names: list[str], out_dir: Path, md_table) -> list[str]:
    """Markdown lines of the report's "Chosen architectures" section; pictures are written into `out_dir`."""
    table = chosen_table(sel, space_name, proxy_names)
    if table.empty:
        return []
    space = get_space(space_name)
    lines = ["## Chosen architectures", "",
             f"params_M: parameters of the network proxies score ({space_name} proxy size, "
             f"{', '.join(f'{k}={v}' for k, v in space.proxy_size.items())}); bench_*: ground truth where the "
             "benchmark holds the architecture (empty otherwise, never estimated).", "",
             md_table(table)]
    archs = list(dict.fromkeys(table["arch"].dropna()))
    pictures = []
    for i, arch in enumerate(archs[:MAX_PICTURES]):
        fig = space.draw(arch)
        if fig is None:
            break
        who = table[table["arch"] == arch]
        title = "; ".join(f"{r.get('method', '?')} seed {r.get('seed', '?')} ({r.get('rule', '?')})"
                          for r in who.head(3).to_dict("records"))
        fig.suptitle(title, fontsize=9)
        path = out_dir / f"architecture_{i}.png"
        fig.savefig(path, dpi=90)
        pictures += [f"![{title}]({path.name})", ""]
    if pictures:
        lines += ["", *pictures]
        if len(archs) > MAX_PICTURES:
            lines.append(f"({len(archs) - MAX_PICTURES} more architectures not drawn.)")
    return lines + [""]
