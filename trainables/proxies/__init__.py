"""Training-free (zero-cost) proxies, one file per proxy, found by name.

`names()` lists them; `score(net, inputs, targets, names)` returns {name: float}. A failed proxy is a
`ProxyError` (a NaN float carrying `.reason`, see `base.py`), never an anonymous NaN; `to_row` turns a
result into the `<proxy>` / `<proxy>_error` columns of the `samples` table. `proxy_batch(dataset, root,
batch_size)` is the fixed batch they score on (loads the data set on first use).
"""

import importlib

from trainables.proxies.base import ProxyError, ProxyFailure, is_error, to_row
from trainables.proxies.registry import get_proxy, names, score, score_one, validate_names

_LAZY = {"proxy_batch": "batch"}

__all__ = ["ProxyError", "ProxyFailure", "get_proxy", "is_error", "names", "score", "score_one", "to_row",
           "validate_names", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"trainables.proxies.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'trainables.proxies' has no attribute {name!r}")
