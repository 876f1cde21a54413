"""ONNX export of a network, checked in onnxruntime against torch (used by `balenas export`, final training's
`export: onnx` and the onnxruntime backend of the latency lookup tables).

torch's TorchScript-based exporter (`dynamo=False`) is used: it needs no onnxscript, and it exports every
network of our spaces. onnx and onnxruntime are the optional `export` extra; `require_onnx` says how to
install them when they are missing.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

INSTALL_HINT = 'ONNX export needs onnx and onnxruntime: pip install -e ".[export]"'
#: images in the fixed batch both runtimes see in `export_checked`
CHECK_BATCH = 4
DEFAULT_OPSET = 17


class OnnxUnavailable(ImportError):
    """onnx or onnxruntime is not installed (the message says how to install them)."""


def require_onnx():
    """(onnx, onnxruntime), or `OnnxUnavailable` with the install line."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise OnnxUnavailable(f"{INSTALL_HINT} ({err})") from None
    return onnx, onnxruntime


def to_onnx_bytes(model: nn.Module, example: Sequence[torch.Tensor], *, opset: int = DEFAULT_OPSET,
                  input_names: Sequence[str] | None = None, output_names: Sequence[str] = ("logits",),
                  dynamic_batch: bool = True) -> bytes:
    """The ONNX model of `model` (eval mode) traced on `example` inputs, as bytes (batch axis dynamic)."""
    input_names = list(input_names or [f"input{i}" for i in range(len(example))])
    axes = {name: {0: "batch"} for name in [*input_names, *output_names]} if dynamic_batch else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(model.eval(), tuple(example), buffer, dynamo=False, opset_version=opset,
                          input_names=input_names, output_names=list(output_names), dynamic_axes=axes)
    return buffer.getvalue()


def session(onnx_bytes: bytes, device: str = "cpu", *, threads: int | None = None):
    """An onnxruntime InferenceSession of an ONNX model (CUDA provider for device 'cuda', where installed)."""
    _, ort = require_onnx()
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError("device 'cuda' with backend onnxruntime needs onnxruntime-gpu (CUDAExecutionProvider "
                             f"not among {ort.get_available_providers()})")
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=providers)


def checked_onnx(model: nn.Module, image_size: int, *, opset: int = DEFAULT_OPSET,
                 channels: int = 3) -> tuple[bytes, float]:
    """(ONNX bytes of `model` in eval mode — input `images` [N, channels, S, S], output `logits` — checked by
    onnx's checker, largest absolute difference of onnxruntime's logits from torch's on a fixed seeded batch).
    The model is exported from a CPU, float32, contiguous-format copy; `model` itself is left as it was."""
    import copy

    onnx, _ = require_onnx()
    model = copy.deepcopy(model).cpu().float().to(memory_format=torch.contiguous_format).eval()
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(CHECK_BATCH, channels, image_size, image_size, generator=generator)
    with torch.no_grad():
        expected = model(batch)
    data = to_onnx_bytes(model, (batch,), opset=opset, input_names=["images"])
    onnx.checker.check_model(onnx.load_from_string(data))
    got = session(data).run(None, {"images": batch.numpy()})[0]
    return data, float((torch.from_numpy(got) - expected).abs().max())


def export_checked(model: nn.Module, image_size: int, path: Path | str, *, opset: int = DEFAULT_OPSET,
                   channels: int = 3) -> float:
    """`checked_onnx` written to `path`; returns the largest absolute difference from torch's logits."""
    data, diff = checked_onnx(model, image_size, opset=opset, channels=channels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return diff
