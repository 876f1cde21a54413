"""One NAS-Bench-101 record: decode (reader) and encode (tests, benchmarks) the official payload.

Each record's data is UTF-8 JSON `[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]`:
the hash (32 hex digits), the training budget (4, 12, 36 or 108), the pruned adjacency matrix as a string
of '0'/'1' (row-major, V*V characters), the op labels joined by ',', and base64 of a serialized
`ModelMetrics` whose `evaluation_data` holds evaluations at the start [0], halfway [1] and end [2] of
training (google-research/nasbench `api.py`, NASBench.__init__).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from search_spaces.nb1shot1.nb101.model_metrics import ModelMetrics

#: evaluation fields kept from the halfway and final evaluations
EVAL_FIELDS = ("train_accuracy", "validation_accuracy", "test_accuracy", "training_time")


@dataclass(frozen=True)
class NB101Record:
    """One training run of one cell at one budget."""

    module_hash: str
    epochs: int
    adjacency: str  # '0'/'1' characters, V*V
    operations: str  # comma-separated labels
    trainable_parameters: int
    final: dict[str, float]
    halfway: dict[str, float]

    @property
    def num_vertices(self) -> int:
        return math.isqrt(len(self.adjacency))

    def matrix(self) -> np.ndarray:
        v = self.num_vertices
        return np.frombuffer(self.adjacency.encode("ascii"), dtype=np.uint8).reshape(v, v) - ord("0")


def decode_record(data: bytes) -> NB101Record:
    """Parse one record's data; ValueError names what is malformed."""
    try:
        module_hash, epochs, adjacency, operations, raw_metrics = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as err:
        raise ValueError(f"record data is not the NB101 JSON list [hash, epochs, adjacency, ops, metrics]: "
                         f"{err}") from None
    v = math.isqrt(len(adjacency))
    if v * v != len(adjacency) or set(adjacency) - {"0", "1"}:
        raise ValueError(f"record {module_hash}: adjacency {adjacency!r} is not a square 0/1 matrix string")
    if len(operations.split(",")) != v:
        raise ValueError(f"record {module_hash}: {len(operations.split(','))} ops for {v} vertices")
    try:
        metrics = ModelMetrics.FromString(base64.b64decode(raw_metrics, validate=True))
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"record {module_hash}: metrics are not base64 ModelMetrics protobuf ({err})") from None
    if len(metrics.evaluation_data) < 3:
        raise ValueError(f"record {module_hash}: ModelMetrics has {len(metrics.evaluation_data)} evaluations, "
                         f"expected 3 (start, halfway, end)")
    half, final = metrics.evaluation_data[1], metrics.evaluation_data[2]
    return NB101Record(
        module_hash=str(module_hash), epochs=int(epochs), adjacency=adjacency, operations=operations,
        trainable_parameters=int(metrics.trainable_parameters),
        final={f: getattr(final, f) for f in EVAL_FIELDS},
        halfway={f: getattr(half, f) for f in EVAL_FIELDS},
    )


def encode_record(module_hash: str, epochs: int, matrix: np.ndarray, ops: Sequence[str],
                  trainable_parameters: int, evaluations: Sequence[dict[str, float]],
                  total_time: float = 0.0) -> bytes:
    """The data of one record in the official layout. `evaluations` are 3 dicts (start, halfway, end) with
    keys among current_epoch, training_time, train/validation/test_accuracy."""
    m = ModelMetrics(trainable_parameters=int(trainable_parameters), total_time=float(total_time))
    for ev in evaluations:
        m.evaluation_data.add(**ev)
    adjacency = "".join(str(int(x)) for x in np.asarray(matrix).ravel())
    payload = [module_hash, int(epochs), adjacency, ",".join(ops),
               base64.b64encode(m.SerializeToString()).decode("ascii")]
    return json.dumps(payload).encode("utf-8")
