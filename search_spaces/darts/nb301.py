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

from search_spaces.benchmarks.base import Benchmark, ReportColumn, UnknownArchitectureError, bench_column
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
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"NB301 zero-cost file not found: {path}; {HELP}")
        try:
            data = json.loads(path.read_text())
            rows = data["nasbench301"][DATASET]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a NASLib NB301 zero-cost file ({type(err).__name__}: {err}); "
                             f"{HELP}") from None
        keys, acc, extras = [], [], {"naslib_params_M": [], "naslib_flops_M": [], "nb301_index": [],
                                     **{f"zc_{p}": [] for p in PROXY_COLUMNS}}
        for compact, value in rows.items():
            try:
                keys.append(str(Genotype.from_compact(compact)))
            except ValueError as err:
                raise ValueError(f"{path}: bad genotype key {compact[:80]!r}: {err}") from None
            acc.append(float(value.get("val_accuracy", math.nan)))
            extras["naslib_params_M"].append(float(value.get("params", math.nan)))
            extras["naslib_flops_M"].append(float(value.get("flops", math.nan)))
            extras["nb301_index"].append(float(value.get("nb301_index", math.nan)))
            for p in PROXY_COLUMNS:
                extras[f"zc_{p}"].append(float(value.get(p, math.nan)))
        metrics = {(DATASET, "valid", EPOCHS): np.asarray(acc)}
        return cls(keys, metrics, {k: np.asarray(v) for k, v in extras.items()}, source=path.name)
