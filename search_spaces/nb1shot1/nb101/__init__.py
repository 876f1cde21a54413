"""NAS-Bench-101, the ground truth of the NAS-Bench-1shot1 spaces: the official TFRecord read without TensorFlow
(`tfrecord`, `records`), the module hash (`graph`) and the compact table (`benchmark.NB101Benchmark`, opened as
`search_spaces.benchmarks.open_benchmark("nb101", path)`; converted with `balenas benchmark convert SRC OUT
--benchmark nb101`, i.e. `convert(src, out)`). Each name loads on first use."""

import importlib

_LAZY = {"NB101Benchmark": "benchmark", "convert": "benchmark",
         "InvalidSpecError": "graph", "canonical_spec": "graph", "spec_hash": "graph",
         "RecordError": "tfrecord", "iter_records": "tfrecord", "write_records": "tfrecord",
         "decode_record": "records", "encode_record": "records"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"search_spaces.nb1shot1.nb101.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'search_spaces.nb1shot1.nb101' has no attribute {name!r}")
