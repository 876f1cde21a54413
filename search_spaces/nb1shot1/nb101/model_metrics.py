"""NAS-Bench-101's `ModelMetrics` protobuf messages, built at import from a FileDescriptorProto (no protoc).

Field numbers and types follow google-research/nasbench `nasbench/lib/model_metrics.proto` (proto2,
package `nasbench`):

    message ModelMetrics   { repeated EvaluationData evaluation_data = 1; optional int32 trainable_parameters = 2;
                             optional double total_time = 3; }
    message EvaluationData { optional double current_epoch = 1; optional double training_time = 2;
                             optional double train_accuracy = 3; optional double validation_accuracy = 4;
                             optional double test_accuracy = 5; optional string checkpoint_path = 6; }

The messages live in a private descriptor pool so that they never clash with another copy of the file.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_FILE_NAME = "balenas/nasbench/model_metrics.proto"


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
    fp = descriptor_pb2.FileDescriptorProto(name=_FILE_NAME, package="nasbench", syntax="proto2")
    evaluation = fp.message_type.add(name="EvaluationData")
    for number, name, ftype in [(1, "current_epoch", _F.TYPE_DOUBLE), (2, "training_time", _F.TYPE_DOUBLE),
                                (3, "train_accuracy", _F.TYPE_DOUBLE), (4, "validation_accuracy", _F.TYPE_DOUBLE),
                                (5, "test_accuracy", _F.TYPE_DOUBLE), (6, "checkpoint_path", _F.TYPE_STRING)]:
        evaluation.field.add(name=name, number=number, type=ftype, label=_F.LABEL_OPTIONAL)
    metrics = fp.message_type.add(name="ModelMetrics")
    metrics.field.add(name="evaluation_data", number=1, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                      type_name=".nasbench.EvaluationData")
    metrics.field.add(name="trainable_parameters", number=2, type=_F.TYPE_INT32, label=_F.LABEL_OPTIONAL)
    metrics.field.add(name="total_time", number=3, type=_F.TYPE_DOUBLE, label=_F.LABEL_OPTIONAL)
    return fp


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_proto())
ModelMetrics = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("nasbench.ModelMetrics"))
EvaluationData = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("nasbench.EvaluationData"))

__all__ = ["ModelMetrics", "EvaluationData"]
