"""Command-line options shared by every command that reads a model, and what installed targets offer.

The CLI names no target: the formats a model file may have, the options their readers take, and the
targets that have an array layout (``run --layout``), a fixed-point mode (``run --fixed``) or a resource
model (``partition --target``) all come from the installed targets (``spikec.plugins``), and so do the
``compile`` flags a target declares (``Target.compile_flags``): each is one of its pass options spelled as a flag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikec.target import Target, TargetFlag


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


# -- the compile flags targets declare (``Target.compile_flags``) ---------------------------------------------
# flag -> (target name, its declaration) for each target declaring it
Declared = Mapping[str, Sequence[tuple[str, "TargetFlag"]]]


def add_target_flags(p: argparse.ArgumentParser, declared: Declared | None = None) -> None:
    """Every installed target's ``compile`` flags (``declared``: by flag, as ``spikec.plugins.target_flags`` gives
    them, which is the default), each help naming its target and the pass option it sets. A flag two targets declare
    is added too, so that using it is the error naming both (``flag_pass_options``)."""
    from spikec.errors import SpikecError
    from spikec.plugins import target_flags

    try:
        declared = target_flags() if declared is None else declared
    except SpikecError:
        return  # two distributions claiming one target name: reported when a target is used
    for flag, owners in declared.items():
        (owner, one), shared = owners[0], len(owners) > 1
        text = (
            f"declared by targets {_names(owners)}: refused until one of them is uninstalled"
            if shared
            else f"target {owner} only: {one.help} (--pass-option {one.option}=VALUE)"
        )
        choices = None if shared else one.choices
        try:
            p.add_argument(flag, dest=one.dest, choices=choices, metavar=one.metavar, help=text.replace("%", "%%"))
        except argparse.ArgumentError:
            continue  # spikec's own option: the target hears of it when used (target_flag_options)


def _names(owners: Sequence[tuple[str, TargetFlag]]) -> str:
    return " and ".join(f"'{name}'" for name, _ in owners)


def target_flag_options(
    args: argparse.Namespace, target: str, pass_options: Sequence[str], declared: Declared | None = None
) -> list[str]:
    """``pass_options`` (``--pass-option``'s) and the target flags given on the command line as more of them
    (``flag_pass_options``; ``declared`` as for ``add_target_flags``). A flag of ``target`` that spikec's own options
    hide is a warning: it cannot be given."""
    import warnings

    from spikec.plugins import target_flags

    declared = target_flags() if declared is None else declared
    for flag, owners in declared.items():
        if any(name == target for name, _ in owners) and not hasattr(args, owners[0][1].dest):
            warnings.warn(
                f"target '{target}' declares {flag}, which is spikec compile's own option: give what it stands for "
                "with --pass-option; the target's package should rename it",
                stacklevel=2,
            )
    values = {flag: getattr(args, owners[0][1].dest, None) for flag, owners in declared.items()}
    given = {flag: value for flag, value in values.items() if value is not None}
    return flag_pass_options(given, target, pass_options, declared)


def flag_pass_options(
    given: Mapping[str, str], target: str, pass_options: Sequence[str], declared: Declared
) -> list[str]:
    """``pass_options`` plus ``'PASS.KEY=VALUE'`` for each flag in ``given`` (flag -> value) that ``target``
    declares (``declared``: ``spikec.plugins.target_flags``). ``UsageError``: a flag of another target (naming
    it), a flag two targets declare (naming both), a flag and a pass option setting one option two ways."""
    from spikec.errors import UsageError

    options = list(pass_options)
    source = {}
    for item in pass_options:
        key, _, value = item.partition("=")
        source[key.strip()] = (value.strip(), f"--pass-option {item.strip()}")
    for flag, value in given.items():
        owners = declared[flag]
        if len(owners) > 1:
            each = "; ".join(f"for '{name}': --pass-option {one.option}={value}" for name, one in owners)
            raise UsageError(
                f"{flag} is declared by targets {_names(owners)}, so it cannot say which it is for: uninstall one "
                f"of their packages, or give the option it stands for ({each})"
            )
        owner, one = owners[0]
        if owner != target:
            raise UsageError(
                f"{flag} is a flag of target '{owner}': --target {target} does not take it; drop it, or compile "
                f"with --target {owner}"
            )
        if one.option in source and source[one.option][0] != value:
            raise UsageError(f"{flag} {value} and {source[one.option][1]} set {one.option} two ways: give one of them")
        if one.option not in source:
            options.append(f"{one.option}={value}")
            source[one.option] = (value, f"{flag} {value}")
    return options
