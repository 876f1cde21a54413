"""What every run shares, whichever stage writes it: the run folder and its Parquet store (`store`, `fsfolder`),
checkpoints, the spec pieces every run spec shares and its one validation-error formatter (`spec`), the
memory-format rule (`memory_format`), and the Tune plumbing (`tuner`, `results`, `trainable`). Stages import
this package; it imports no stage.

    from trainables.runs import store, location
    store.read_table(location("runs/quickstart"), "trials")

Every name loads on first use (the Tune plumbing imports Ray, checkpoints torch), so the store stays cheap.
"""

import importlib

_SUBMODULES = ("checkpoints", "fsfolder", "host_sync", "memory_format", "results", "spec", "store", "trainable",
               "tuner")
_LAZY = {
    "Folder": "fsfolder", "location": "fsfolder", "is_uri": "fsfolder",
    "read_table": "store", "write_table": "store", "write_partition": "store", "CorruptTableError": "store",
    "save_atomic": "checkpoints", "rng_state": "checkpoints", "load_rng_state": "checkpoints",
    "ParquetResults": "results", "RunResult": "results", "read_trials": "results",
    "RunTrainable": "trainable",
    "DEFAULT_STORAGE": "tuner", "TunerPlan": "tuner", "build_tuner": "tuner", "init_ray": "tuner",
    "prepare_run_dir": "tuner", "InterruptAfter": "tuner",
    "count_host_syncs": "host_sync",
    "SpecError": "spec", "Resources": "spec", "Failure": "spec", "Checkpointing": "spec", "RunName": "spec",
}

__all__ = [*_SUBMODULES, *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"trainables.runs.{_LAZY[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"trainables.runs.{name}")
    raise AttributeError(f"module 'trainables.runs' has no attribute {name!r}")
