"""Command-line options shared by every command that reads a model."""

from __future__ import annotations

import argparse
from typing import Any


def shape(text: str) -> tuple[int, ...]:
    """``'1,28,28'`` (or ``'1x28x28'``) → ``(1, 28, 28)``."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28")
    return dims


def positive_int(text: str) -> int:
    """``'17'`` → 17; zero, negatives and non-integers are a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def batch_axis(text: str) -> int | str:
    """``'auto'``, ``'none'`` or an axis number ``>= 0``."""
    if text in ("auto", "none"):
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not 'auto', 'none' or an axis number (0, 1, ...)")


def add_model_args(p: argparse.ArgumentParser, help_text: str = "the model (.onnx, .pt, .nir, .sir, .net)") -> None:
    """The model file plus what some readers need: NIR's dt, a .pt state_dict's architecture, a netx reset."""
    p.add_argument("model", help=help_text)
    p.add_argument(
        "--dt", type=float, help="seconds per step for NIR time constants (default: file metadata, else 1e-4)"
    )
    p.add_argument(
        "--arch", metavar="FILE.py:FUNCTION", help="for a .pt state_dict: code you trust that builds the nn.Module"
    )
    p.add_argument(
        "--input-shape",
        type=shape,
        metavar="C,H,W",
        help="per-sample input shape: to trace a .pt, or to fix an .onnx input's dynamic axes",
    )
    p.add_argument(
        "--batch-axis",
        type=batch_axis,
        metavar="auto|none|N",
        help="for .onnx/.pt: which axis of the model's inputs is the batch axis (default auto: a symbolic axis, "
        "else axis 0 unless the model mixes its samples; none: the whole tensor is one sample)",
    )
    p.add_argument(
        "--reset-interval",
        type=positive_int,
        metavar="N",
        help="for a netx .net: zero every LIF layer's u and v every N steps, as lava-dl's "
        "netx.hdf5.Network(reset_interval=N) (one sample per N steps)",
    )
    p.add_argument(
        "--reset-offset",
        type=int,
        metavar="K",
        help="for a netx .net with --reset-interval: the phase, as Network(reset_offset=K); "
        "the k-th neuron layer resets at steps t = K + 1 + k (mod N) (default 0)",
    )


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The reader options of ``add_model_args`` for ``spikec.models.load_model``."""
    options = {"dt": args.dt, "arch": args.arch, "input_shape": args.input_shape, "batch_axis": args.batch_axis}
    return options | {"reset_interval": args.reset_interval, "reset_offset": args.reset_offset}
