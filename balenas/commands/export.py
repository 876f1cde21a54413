"""Export a derived network as ONNX and check it against torch in onnxruntime.

    balenas export ARCH --space nb201 --onnx net.onnx                      # random weights (seeded)
    balenas export ARCH --space darts --size C=36 layers=20 --onnx net.onnx
    balenas export --checkpoint RUN/.../train.pt --onnx net.onnx          # trained weights of a final training

The network is `space.network(ARCH, num_classes, **size)` in eval mode (an auxiliary head, as DARTS networks
have for training, is left off), at the data set's resolution (`--dataset`, default cifar10; with
`--checkpoint`, the training's own space, architecture, data set and protocol size). It is exported with
torch's TorchScript-based ONNX exporter (`dynamo=False`: no onnxscript needed), input `images` and output
`logits` with a dynamic batch axis, then run in onnxruntime on a fixed seeded batch; the largest absolute
difference from torch's logits is printed. Exit 0 when it is at most --tolerance (1e-4, fp32), 1 above it,
2 on bad input or when the `export` extra (onnx, onnxruntime) is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from balenas.commands._run import size_args


def _from_checkpoint(path: Path, arch: str | None, num_classes: int | None):
    """(space name, canonical arch, model with the trained weights, image size) of a final-training checkpoint."""
    import torch

    from search_spaces.costs import AUXILIARY_NAME, dataset_shape
    from search_spaces.space import get_space
    from trainables.train.config import parse_train_config
    from trainables.train.loop import network_keywords

    if not path.is_file():
        raise ValueError(f"--checkpoint: training checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"config", "arch", "model"} <= set(state):
        raise ValueError(f"--checkpoint {path}: not a final-training checkpoint (train.pt with config, arch, model)")
    cfg = parse_train_config(state["config"])
    space = get_space(cfg.space_name)
    trained = space.canonical(state["arch"])
    if arch is not None and space.canonical(arch) != trained:
        raise ValueError(f"ARCH {arch!r} differs from the checkpoint's architecture {trained!r}")
    classes, image_size = dataset_shape(cfg.dataset, num_classes)
    kw = network_keywords(space, cfg.resolved_protocol())
    if "auxiliary" in kw:
        kw["auxiliary"] = False
    model = space.network(trained, num_classes=classes, **kw)
    weights = {k: v for k, v in state["model"].items() if AUXILIARY_NAME not in k}
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(f"--checkpoint {path}: weights do not fit the network (pass --num-classes?): "
                         f"{str(err)[:300]}") from None
    return space.name, trained, model, image_size


def main(argv: list[str] | None = None, prog: str = "balenas export") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arch", nargs="?", default=None,
                        help="architecture in the space's syntax (optional with --checkpoint: the trained one)")
    parser.add_argument("--space", default=None, help="a registered search space (default: the registry's)")
    parser.add_argument("--size", nargs="+", default=[], metavar="KEY=VALUE",
                        help="network size keys of the space, e.g. C=16 N=5 (default: the space's proxy_size)")
    parser.add_argument("--dataset", default="cifar10", help="sets the classes and the input resolution")
    parser.add_argument("--num-classes", type=int, default=None, help="override the data set's classes")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a final training's checkpoint (train.pt): export its trained weights")
    parser.add_argument("--seed", type=int, default=0, help="weight-initialisation seed without --checkpoint")
    parser.add_argument("--onnx", required=True, type=Path, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest absolute logit difference accepted between torch and onnxruntime")
    args = parser.parse_args(argv)
    if args.num_classes is not None and args.num_classes < 1:
        parser.exit(2, f"{prog}: error: --num-classes must be >= 1 (got {args.num_classes})\n")

    from search_spaces.onnx_export import CHECK_BATCH, OnnxUnavailable, export_checked, require_onnx

    try:
        require_onnx()
    except OnnxUnavailable as err:
        parser.exit(2, f"{prog}: error: {err}\n")

    import torch

    from search_spaces.costs import build_network
    from search_spaces.space import DEFAULT_SPACE, get_space

    try:
        if args.checkpoint is not None:
            if args.space is not None or args.size:
                raise ValueError("--checkpoint takes the space and size from the training; drop --space/--size")
            space_name, arch, model, image_size = _from_checkpoint(args.checkpoint, args.arch, args.num_classes)
        else:
            if args.arch is None:
                raise ValueError("ARCH is required without --checkpoint")
            space = get_space(args.space or DEFAULT_SPACE)
            space_name = space.name
            try:
                arch = space.canonical(args.arch)
            except ValueError as err:
                raise ValueError(f"ARCH {args.arch!r} is not an architecture of space {space_name!r}: "
                                 f"{err}") from None
            size = size_args(args.size)
            if "auxiliary" in getattr(space, "network_extras", ()):
                size["auxiliary"] = False
            torch.manual_seed(args.seed)
            model, image_size = build_network(space, arch, size, args.dataset, num_classes=args.num_classes)
    except (ValueError, KeyError) as err:
        parser.exit(2, f"{prog}: error: {err}\n")

    diff = export_checked(model, image_size, args.onnx, opset=args.opset)
    with torch.no_grad():
        classes = model.eval()(torch.zeros(1, 3, image_size, image_size)).shape[-1]
    print(f"{space_name} {arch}: wrote {args.onnx} (input [N, 3, {image_size}, {image_size}], "
          f"{classes} classes); onnxruntime vs torch on {CHECK_BATCH} images: max abs diff {diff:.3g}")
    if not diff <= args.tolerance:
        print(f"{prog}: error: max abs diff {diff:.3g} exceeds --tolerance {args.tolerance:g}", file=sys.stderr)
        return 1
    return 0
