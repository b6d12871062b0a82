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


def batch_axis(text: str) -> int | str:
    """``'auto'``, ``'none'`` or an axis number ``>= 0``."""
    if text in ("auto", "none"):
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not 'auto', 'none' or an axis number (0, 1, ...)")


def add_model_args(p: argparse.ArgumentParser, help_text: str = "the model (.onnx, .pt, .nir, .sir, .net)") -> None:
    """The model file plus what some readers need: NIR's dt, a .pt state_dict's architecture, an ONNX batch
    axis, and the options of the formats installed targets read."""
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
    _add_format_options(p)


def _add_format_options(p: argparse.ArgumentParser) -> None:
    """The options of the formats installed targets read (e.g. a netx reader's reset interval)."""
    from spikec.errors import SpikecError
    from spikec.plugins import target_formats

    try:
        formats = target_formats()
    except SpikecError:
        return  # a broken plugin: reported when its format is used
    seen: set[str] = set()
    for _, fmt in formats.values():
        for option in fmt.options:
            if option.name not in seen:
                seen.add(option.name)
                p.add_argument(option.flag, dest=option.name, type=option.type, metavar=option.metavar,
                               help=option.help)  # fmt: skip


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The reader options of ``add_model_args`` for ``spikec.models.load_model``."""
    from spikec.plugins import target_formats

    options = {"dt": args.dt, "arch": args.arch, "input_shape": args.input_shape, "batch_axis": args.batch_axis}
    for _, fmt in target_formats().values():
        options |= {o.name: getattr(args, o.name, None) for o in fmt.options}
    return options
