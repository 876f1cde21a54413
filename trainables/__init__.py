"""How a search runs: architecture distributions, the search loop, the Tune Trainable, proxies, sweeps.

One subpackage per part, each with its own public names (`__all__`):
`methods` (architecture distributions: `make_distribution`, `available_methods`), `search` (one search run:
`run_search`, `SearchRun`, `load_distribution`), `proxies` (`score`, `names`), `proxy_stage` (`run_proxy_stage`,
`score_space`), `sweep` (`load_spec`, `run_sweep`), `train` (final training: `TrainRun`, `run_training`,
`run_train`) and `runs` (the run folder and its Parquet store, checkpoints, Tune plumbing, shared by the stages).
Each loads on first use: `import trainables` imports neither torch nor Ray.
"""

import importlib

__all__ = ["methods", "proxies", "proxy_stage", "runs", "search", "sweep", "train"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"trainables.{name}")
    raise AttributeError(f"module 'trainables' has no attribute {name!r}")
