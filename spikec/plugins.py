"""Find targets through the ``spikec.targets`` entry-point group (built-ins included), and what they bring.

A vendor publishes ``[project.entry-points."spikec.targets"] mychip = "pkg.module:MyTarget"``; spikec lists
it by name without importing it, and imports it only when used. What a target brings is loaded lazily too:

- ``load_target(name)``: the target's class (its module must import no vendor SDK), instantiated, with its dialect;
- ``load_dialects()``: every installed target's dialect module (node kinds and their kernels), when a graph
  names a kind spikec's core does not have (the ``.sir`` parser asks, ``node_kind``);
- ``file_format(suffix)``: the target format that reads or writes a model file of that suffix;
- ``target_passes()``: the passes targets contribute, by name;
- ``target_flags()``: the ``spikec compile`` flags targets declare, by flag.

A broken plugin is reported when it is used, naming its distribution and the import error; two
distributions claiming one target name, or a plugin defining a node kind that exists, are errors naming both.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from spikec.errors import TargetError
from spikec.ir.node import NODE_KINDS, Node
from spikec.target import FileFormat, Target, TargetFlag

GROUP = "spikec.targets"


def _owner(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{ep.value} (distribution {dist.name} {dist.version})" if dist is not None else ep.value


def target_entry_points() -> dict[str, EntryPoint]:
    """Name -> entry point; two distributions claiming one name is an error naming both."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            raise TargetError(
                f"target name '{ep.name}' is claimed twice: by {_owner(found[ep.name])} and by {_owner(ep)}; "
                "uninstall one of the packages"
            )
        found[ep.name] = ep
    return dict(sorted(found.items()))


@functools.cache
def _target_class(name: str) -> type[Target]:
    eps = target_entry_points()
    if name not in eps:
        raise TargetError(f"no target named '{name}'; installed: {', '.join(eps) or 'none'}")
    ep = eps[name]
    try:
        cls = ep.load()
    except Exception as err:  # a broken plugin must not take the CLI down with a traceback
        raise TargetError(f"target '{name}' from {_owner(ep)} failed to load: {type(err).__name__}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise TargetError(f"target '{name}' from {_owner(ep)} is not a spikec.target.Target subclass")
    if cls.name != name:
        raise TargetError(f"target '{name}' from {_owner(ep)} calls itself '{cls.name}'; the names must agree")
    return cls


def load_target(name: str) -> Target:
    """Import and instantiate the target called ``name``, with its dialect: the target's own methods use its
    kinds, so a dialect that cannot load (a node kind spikec or another target already defines) is reported
    here, as a ``TargetError``, before any of them runs."""
    load_dialect(name)
    return _target_class(name)()


_DIALECT_ERRORS: dict[str, TargetError] = {}  # a dialect that failed stays failed: it may be half-registered


def load_dialect(name: str) -> None:
    """Import target ``name``'s dialect module (its node kinds, their kernels and demand). A failure (an import
    error; a kind or kernel registered twice, ``TypeError``) names the distribution and both registrations."""
    if name in _DIALECT_ERRORS:
        raise _DIALECT_ERRORS[name]
    cls = _target_class(name)
    if cls.dialect is None:
        return
    before = set(NODE_KINDS.values())
    try:
        importlib.import_module(cls.dialect)
        from spikec.kind_check import check_kinds

        check_kinds(set(NODE_KINDS.values()) - before)  # each new kind brings a kernel and its traits
    except Exception as err:
        owner = _owner(target_entry_points()[name])
        _DIALECT_ERRORS[name] = TargetError(
            f"target '{name}' from {owner}: its dialect {cls.dialect} failed to load: {type(err).__name__}: {err}; "
            "fix the plugin or uninstall its distribution"
        )
        raise _DIALECT_ERRORS[name] from err


def load_dialects() -> None:
    """Import every installed target's dialect (a broken one is reported when a graph needs a kind it lacks)."""
    for name in target_entry_points():
        try:
            load_dialect(name)
        except TargetError:
            continue  # reported by node_kind if the graph needs a kind this target would have brought


def node_kind(kind: str) -> type[Node]:
    """The class of node kind ``kind``, loading target dialects when the core does not define it."""
    if kind not in NODE_KINDS:
        errors = []
        for name in target_entry_points():
            try:
                load_dialect(name)
            except TargetError as err:
                errors.append(str(err))
            if kind in NODE_KINDS:
                break
        if kind not in NODE_KINDS:
            broken = f" (targets that failed to load: {'; '.join(errors)})" if errors else ""
            raise TargetError(f"unknown node kind '{kind}': no installed target defines it{broken}")
    return NODE_KINDS[kind]


def _declared(attribute: str) -> Iterator[tuple[str, Any]]:
    """(target name, its class's ``attribute``) for every installed target that loads; one that fails to load is
    skipped here (and reported when used)."""
    for name in target_entry_points():
        try:
            value = getattr(_target_class(name), attribute)
        except TargetError:
            continue
        yield name, value


def target_formats() -> dict[str, tuple[str, FileFormat]]:
    """Suffix -> (target name, format) for every format an installed target declares; a suffix two targets
    claim is an error naming both. Targets that fail to load are skipped (and reported when used)."""
    found: dict[str, tuple[str, FileFormat]] = {}
    for name, formats in _declared("formats"):
        for fmt in formats:
            suffix = fmt.suffix.lower()
            if suffix in found and found[suffix][0] != name:
                raise TargetError(f"file suffix '{suffix}' is claimed by targets '{found[suffix][0]}' and '{name}'")
            found[suffix] = (name, fmt)
    return found


def target_passes() -> dict[str, tuple[str, str]]:
    """Pass name -> (target name, ``"module:function"``) for the passes installed targets contribute."""
    found: dict[str, tuple[str, str]] = {}
    for name, passes in _declared("passes"):
        for pass_name, where in passes.items():
            if pass_name in found:
                raise TargetError(f"pass '{pass_name}' is contributed by targets '{found[pass_name][0]}' and '{name}'")
            found[pass_name] = (name, where)
    return found


def target_flags() -> dict[str, list[tuple[str, TargetFlag]]]:
    """Flag -> the installed targets declaring it (``Target.compile_flags``), each with its declaration. A flag
    two targets declare is kept with both: using it is the error naming them (``spikec.cli_args``), so the
    command line still parses. Targets that fail to load are skipped (and reported when used)."""
    found: dict[str, list[tuple[str, TargetFlag]]] = {}
    for name, flags in _declared("compile_flags"):
        for flag in flags:
            found.setdefault(flag.flag, []).append((name, flag))
    return found


def resolve(where: str, what: str) -> object:
    """Import ``"module:attribute"`` (a reader, writer or pass a target names); ``TargetError`` naming ``what``."""
    module, _, attribute = where.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as err:
        raise TargetError(f"{what}: cannot load {where}: {type(err).__name__}: {err}") from err
