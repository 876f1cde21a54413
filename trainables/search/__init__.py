"""The search stage: one search run (`SearchRun`, `run_search`), its settings (`SearchConfig`) and the Tune
Trainable that runs it as a trial (`trainables.search.trainable`, imported where Ray is wanted)."""

from trainables.search.config import SearchConfig, parse_config
from trainables.search.loop import (
    CHECKPOINT_FILE,
    NonFiniteSearch,
    SearchRun,
    checkpoint_file,
    load_distribution,
    nonfinite_state,
    run_search,
)

__all__ = ["CHECKPOINT_FILE", "NonFiniteSearch", "SearchConfig", "SearchRun", "checkpoint_file", "load_distribution",
           "nonfinite_state", "parse_config", "run_search"]
