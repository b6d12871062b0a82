"""Command-line options shared by every command that reads a model, and what installed targets offer.

The CLI names no target: the formats a model file may have, the options their readers take, and the
targets that have an array layout (``run --layout``), a fixed-point mode (``run --fixed``) or a resource
model (``partition --target``) all come from the installed targets (``spikec.plugins``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikec.target import Target


def _has_fixed_point(target: Target) -> bool:
    from spikec.target import Target

    return type(target).check_fixed is not Target.check_fixed


# what a target may offer the CLI, by the name messages use
FEATURES: dict[str, Callable[[Target], bool]] = {
    "array layout": lambda t: t.layout is not None,
    "fixed-point mode": _has_fixed_point,
    "resource model": lambda t: t.resources is not None,
}


def installed_targets(feature: str | None = None) -> list[str]:
    """The installed targets that load (and offer ``feature``, a key of ``FEATURES``), by name."""
    from spikec.errors import SpikecError
    from spikec.plugins import load_target, target_entry_points

    try:
        names = list(target_entry_points())
    except SpikecError:
        return []
    found = []
    for name in names:
        try:
            target = load_target(name)
        except SpikecError:
            continue  # a broken plugin: reported when it is named
        if feature is None or FEATURES[feature](target):
            found.append(name)
    return found


def target_with(name: str, feature: str, option: str) -> Target:
    """The target ``name`` (``option``'s value), or ``TargetError`` when it has no ``feature``, naming those that do."""
    from spikec.errors import TargetError
    from spikec.plugins import load_target

    target = load_target(name)
    if not FEATURES[feature](target):
        having = ", ".join(installed_targets(feature)) or "none is installed"
        raise TargetError(f"{option} {name}: target '{name}' has no {feature}; targets with one: {having}")
    return target


def layout_help() -> str:
    """``run --layout``'s help: spikec's layout, and each installed target's that has one."""
    from spikec.plugins import load_target

    shown = "; ".join(f"{name}: {load_target(name).layout}" for name in installed_targets("array layout"))
    return (
        "the layout of --input and -o arrays: spikec (default; (T, batch, *shape)) or a target's own, by target "
        "name" + (f" ({shown})" if shown else "")
    )


def model_suffixes(writable: bool = False) -> str:
    """The model file suffixes spikec and the installed targets read (or write), for help texts."""
    from spikec.errors import SpikecError
    from spikec.models import READERS, WRITERS
    from spikec.plugins import target_formats

    try:
        extra = [s for s, (_, f) in target_formats().items() if (f.writer if writable else f.reader)]
    except SpikecError:
        extra = []
    core = [s for s in (WRITERS if writable else READERS) if s not in (".pth", ".pt2")]
    return ", ".join([*core, *sorted(set(extra) - set(core))])


def shape(text: str) -> tuple[int, ...]:
    """``'1,28,28'`` (or ``'1x28x28'``) → ``(1, 28, 28)``."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28")
    return dims


def at_least(option: str, value: int | None, minimum: int) -> None:
    """``InputError`` unless the integer option (when given) is ``>= minimum`` (``verify --steps 0``,
    ``partition --search -5``)."""
    from spikec.errors import InputError

    if value is not None and value < minimum:
        raise InputError(f"{option} must be >= {minimum}, got {value}")


def batch_axis(text: str) -> int | str:
    """``'auto'``, ``'none'`` or an axis number ``>= 0``."""
    if text in ("auto", "none"):
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not 'auto', 'none' or an axis number (0, 1, ...)")


def add_model_args(p: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """The model file plus what some readers need: NIR's dt, a .pt state_dict's architecture, an ONNX batch
    axis, and the options of the formats installed targets read."""
    p.add_argument("model", help=help_text or f"the model ({model_suffixes()})")
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
    """The options of the formats installed targets read (``ReaderOption``: e.g. a reset interval)."""
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
    """The reader options of ``add_model_args`` for ``spikec.models.load_model`` (``--dt`` checked here)."""
    from spikec.errors import InputError
    from spikec.plugins import target_formats

    if args.dt is not None and not (math.isfinite(args.dt) and args.dt > 0):
        raise InputError(f"--dt must be a finite number of seconds per step > 0, got {args.dt}")
    options = {"dt": args.dt, "arch": args.arch, "input_shape": args.input_shape, "batch_axis": args.batch_axis}
    for _, fmt in target_formats().values():
        options |= {o.name: getattr(args, o.name, None) for o in fmt.options}
    return options
