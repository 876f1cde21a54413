"""Published zero-cost scores for NAS-Bench-201 and their conversion to our architecture strings.

NAS-Bench-Suite-Zero (automl/NASLib, `zc_nasbench201.json`) keys an architecture by an op tuple in NASLib's
op order (0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3) over the edges
(0->1, 0->2, 0->3, 1->2, 1->3, 2->3); our strings list edges as (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd

from search_spaces.nb201 import to_string

NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
OUR_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# our edge k comes from NASLib edge _EDGE_FROM_NASLIB[k]
_EDGE_FROM_NASLIB = (0, 1, 3, 2, 4, 5)
# our proxy name -> NAS-Bench-Suite-Zero's
SUITE_ZERO_NAMES = {"jacob_cov": "jacov", "synflow": "synflow", "snip": "snip", "grad_norm": "grad_norm",
                    "fisher": "fisher", "grasp": "grasp", "params": "params", "flops": "flops"}


def naslib_key_to_arch(key: str | tuple[int, ...]) -> str:
    """'(4, 3, 3, 3, 2, 3)' (NASLib op tuple) -> our canonical string."""
    ops = ast.literal_eval(key) if isinstance(key, str) else tuple(key)
    if len(ops) != 6:
        raise ValueError(f"NASLib NB201 key must have 6 ops, got {key!r}")
    ours = [OUR_OPS.index(NASLIB_OPS[int(ops[i])]) for i in _EDGE_FROM_NASLIB]
    return to_string(ours)


def load_suite_zero(path: Path | str, dataset: str = "cifar10") -> pd.DataFrame:
    """One row per architecture: `arch` and the published columns (`jacov`, `synflow`, ..., `val_accuracy`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NAS-Bench-Suite-Zero scores not found at {path} (zc_nasbench201_small.json)")
    with open(path) as f:
        data = json.load(f)
    try:
        table = data["nasbench201"][dataset]
    except KeyError as e:
        raise ValueError(f"{path} has no nasbench201/{dataset} entry") from e
    rows = []
    for key, values in table.items():
        row = {"arch": naslib_key_to_arch(key)}
        for name, value in values.items():
            row[name] = value["score"] if isinstance(value, dict) else value
        rows.append(row)
    return pd.DataFrame(rows)
