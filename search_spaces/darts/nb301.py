"""A partial DARTS-space benchmark: NAS-Bench-Suite-Zero's NB301 sample (registered as 'nb301-zc').

The file is NASLib's `zc_nasbench301.json` (automl/NASLib, Apache-2.0), or a subset of it such as
`../shared/data/zero_cost/zc_nasbench301_small.json`: `{"nasbench301": {"cifar10": {compact: {...}}}}`, keyed
by NASLib's compact genotype encoding, each with NAS-Bench-301's CIFAR-10 `val_accuracy` (its surrogate's
prediction for the NB301 training recipe: 100 epochs), NASLib's `params`/`flops` and published zero-cost
scores. A genotype in the sample gets its values; any other genotype gets a missing value (NaN in `query`,
absent from `record`), never an invented one: NB301's surrogate models are not available offline.

NASLib's `params` counts its own NB301 graph, not DARTS' evaluation network: C=32 (channels 32/64/128), 8
cells, no auxiliary head, BN without scale/shift inside the cell ops (see tests/search_spaces/darts,
`test_nb301_sample_params_reproduced`). It is kept as `naslib_params_M`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from search_spaces.benchmarks.base import (
    Benchmark,
    BenchmarkFileError,
    ReportColumn,
    UnknownArchitectureError,
    bench_column,
)
from search_spaces.benchmarks.table_io import stored_benchmark
from search_spaces.darts.genotype import Genotype, canonical

DATASET = "cifar10"
EPOCHS = 100           # NB301's training recipe (the surrogate predicts the 100-epoch validation accuracy)
#: published zero-cost columns kept as extras, `zc_<name>` (NAS-Bench-Suite-Zero's names).
PROXY_COLUMNS = ("nwot", "synflow", "jacov", "snip", "grad_norm", "fisher", "grasp", "epe_nas", "plain",
                 "l2_norm")
HELP = ("expected NASLib's zero-cost file zc_nasbench301.json (automl/NASLib naslib/data, "
        "{'nasbench301': {'cifar10': {compact genotype: {'val_accuracy': ..., ...}}}})")


class NB301ZCBenchmark(Benchmark):
    """NB301 validation accuracies (percent) for the sampled genotypes; missing values for all others."""

    name = "nb301-zc"
    record_extras = ("naslib_params_M",)
    default_epochs = EPOCHS
    report_note = ("NAS-Bench-301 valid: the NB301 surrogate's predicted CIFAR-10 validation accuracy for its "
                   "100-epoch recipe, from NASLib's zero-cost sample; architectures outside the sample have none.")
    report_columns = (ReportColumn("NAS-Bench-301", "valid", "nb301_valid", (bench_column(DATASET, "valid"),)),)

    def canonical_key(self, arch) -> str:
        return canonical(arch)

    def row(self, arch) -> int:
        return super().row(arch if isinstance(arch, str) else self.canonical_key(arch))

    def _row_or_none(self, arch) -> int | None:
        try:
            return self.row(arch)
        except UnknownArchitectureError:
            return None

    def query(self, arch, dataset: str = DATASET, split: str = "valid", epochs: int | None = None) -> float:
        """NB301's accuracy of a sampled genotype; NaN for a well-formed genotype outside the sample."""
        epochs = EPOCHS if epochs is None else epochs
        if self._row_or_none(arch) is None:
            self.column(dataset, split, epochs)      # a bad (dataset, split, epochs) still raises
            return math.nan
        return super().query(self.canonical_key(arch), dataset, split, epochs)

    def record(self, arch, epochs: int | None = None) -> dict[str, float]:
        """bench_cifar10_valid and naslib_params_M of a sampled genotype; {} for any other genotype."""
        epochs = EPOCHS if epochs is None else epochs
        if self._row_or_none(arch) is None:
            return {}
        return super().record(self.canonical_key(arch), epochs=epochs)

    @classmethod
    def test_column(cls, dataset: str) -> str:
        """NB301 has no test accuracy: its CIFAR-10 validation accuracy is the one to watch."""
        return bench_column(DATASET, "valid")

    @classmethod
    def open(cls, path: Path | str) -> NB301ZCBenchmark:
        """NASLib's zero-cost JSON (or a subset); FileNotFoundError says where to get it, a BenchmarkFileError (a
        ValueError) names the file and what is wrong: not JSON (or truncated), not NASLib's layout, a bad
        genotype key or value, no `val_accuracy` at all."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"NB301 zero-cost file not found: {path}; {HELP}")
        with open(path, "rb") as f:
            if f.read(4) == b"PAR1":
                name = stored_benchmark(path)
                what = f"the {name!r} benchmark table" if name else "a table"
                raise BenchmarkFileError(f"{path}: a Parquet file ({what}), not NASLib's NB301 zero-cost JSON; {HELP}")
        try:
            data = json.loads(path.read_text())
            rows = data["nasbench301"][DATASET]
            if not isinstance(rows, dict):
                raise TypeError(f"nasbench301.{DATASET} is a {type(rows).__name__}, not a mapping of genotypes")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise BenchmarkFileError(f"{path}: not a NASLib NB301 zero-cost file ({type(err).__name__}: {err}); "
                                     f"{HELP}") from None
        if not rows:
            raise BenchmarkFileError(f"{path}: nasbench301.{DATASET} holds no genotypes; {HELP}")
        keys, acc, extras = [], [], {"naslib_params_M": [], "naslib_flops_M": [], "nb301_index": [],
                                     **{f"zc_{p}": [] for p in PROXY_COLUMNS}}
        fields = {"naslib_params_M": "params", "naslib_flops_M": "flops", "nb301_index": "nb301_index",
                  **{f"zc_{p}": p for p in PROXY_COLUMNS}}
        for compact, value in rows.items():
            try:
                keys.append(str(Genotype.from_compact(compact)))
            except ValueError as err:
                raise BenchmarkFileError(f"{path}: bad genotype key {compact[:80]!r}: {err}") from None
            if not isinstance(value, dict):
                raise BenchmarkFileError(f"{path}: the entry of genotype {compact[:80]!r} is a "
                                         f"{type(value).__name__}, not a mapping of values; {HELP}")
            try:
                acc.append(_number(value.get("val_accuracy")))
                for column, field in fields.items():
                    extras[column].append(_number(value.get(field)))
            except (TypeError, ValueError) as err:
                raise BenchmarkFileError(f"{path}: genotype {compact[:80]!r}: {err}") from None
        if all(math.isnan(a) for a in acc):
            raise BenchmarkFileError(f"{path}: no genotype has a 'val_accuracy'; {HELP}")
        metrics = {(DATASET, "valid", EPOCHS): np.asarray(acc)}
        try:
            return cls(keys, metrics, {k: np.asarray(v) for k, v in extras.items()}, source=path.name)
        except ValueError as err:  # the same genotype under two keys
            raise BenchmarkFileError(f"{path}: {err}") from None


def _number(value) -> float:
    """A JSON value as a float (None: NaN; NASLib's `{"score": x, "time": t}` form of a proxy: x); a TypeError
    names a value that is not a number."""
    if isinstance(value, dict) and "score" in value:
        value = value["score"]
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)
