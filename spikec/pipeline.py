"""Passes: a registry of named graph transformations and the manager that runs them.

A pass is a pure function ``(graph, *, option=...) -> PassResult`` registered under a kebab-case
name; its keyword-only, annotated options become ``name{option=value}`` on the command line.
Options of other types (a calibration array, a progress callback) are given from Python as
``(name, {option: value})`` steps.

Passes are registered by table, ``name -> "module:function"`` (``register_passes``): spikec's own
in ``spikec.passes.PASSES``, a target's in its own table. A pass module registers nothing and is
imported only when its pass is first used or listed (``pass_info``), so this module and the pass
modules do not import each other.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spikec.errors import PassError, SpikecError
from spikec.ir.graph import Graph


@dataclasses.dataclass(frozen=True)
class PassResult:
    graph: Graph
    changed: bool


@dataclasses.dataclass(frozen=True)
class PassInfo:
    name: str
    fn: Callable[..., PassResult]
    summary: str
    options: dict[str, tuple[type, Any]]  # option -> (type, default)
    owner: str = "spikec"  # who registered it: spikec, or the distribution of a target that brings it


@dataclasses.dataclass(frozen=True)
class PassEntry:
    """A registered pass before it is imported: where its function is and who registered it."""

    name: str
    target: str  # "module:function"
    owner: str


class PassRegistryError(SpikecError):
    """Two owners claim one pass name, or a registered pass cannot be imported (names both, or the import error)."""


PassTable = Mapping[str, str]  # pass name -> "module:function"
_ENTRIES: dict[str, PassEntry] = {}
_LOADED: dict[str, PassInfo] = {}
_SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9-]*)(?:\{(?P<opts>.*)\})?$")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_CONVERT: dict[type, Callable[[str], Any]] = {
    int: int,
    float: float,
    str: str,
    bool: lambda s: {"true": True, "1": True, "false": False, "0": False}[s.lower()],
}
PassStep = str | tuple[str, Mapping[str, Any]]  # 'name{k=v}' or (name, options) from Python


def option_type_name(kind: Any) -> str:
    """``float``, ``np.ndarray | None``: how ``spikec passes`` shows an option's type."""
    text = str(getattr(kind, "__name__", None) or kind)
    return text.replace("typing.", "").replace("collections.abc.", "").replace("numpy.", "np.")


def register_passes(table: PassTable, owner: str) -> None:
    """Make the passes of ``table`` (name -> ``"module:function"``) known under their names; imports nothing.

    ``owner`` says who brings them (``spikec``, a target's distribution). Registering the same table
    again is harmless; a name another owner (or another function) already holds is an error naming both.
    """
    for name, target in table.items():
        if not _NAME.match(name):
            raise PassRegistryError(f"pass name {name!r} from {owner} is not kebab-case (a-z, 0-9, '-')")
        if not _TARGET.match(target):
            raise PassRegistryError(f"pass '{name}' from {owner}: {target!r} is not 'module:function'")
        old = _ENTRIES.get(name)
        if old is not None and (old.target, old.owner) != (target, owner):
            raise PassRegistryError(
                f"pass '{name}' is registered twice: by {old.owner} ({old.target}) and by {owner} ({target}); "
                "rename one of them or uninstall one of the packages"
            )
        _ENTRIES[name] = PassEntry(name, target, owner)


@functools.cache
def _builtins() -> None:
    """Register spikec's own passes (``spikec.passes.PASSES``) and those the installed targets bring
    (``Target.passes``) the first time any pass is looked up."""
    from spikec.passes import PASSES
    from spikec.plugins import target_passes

    register_passes(PASSES, "spikec")
    for name, (target, where) in target_passes().items():
        register_passes({name: where}, f"target '{target}'")


def pass_names() -> list[str]:
    """The names of every registered pass, sorted; imports no pass module."""
    _builtins()
    return sorted(_ENTRIES)


def pass_info(name: str) -> PassInfo:
    """Pass ``name``, importing its module on first use (its options come from the function's signature)."""
    if name in _LOADED:
        return _LOADED[name]
    _builtins()
    entry = _ENTRIES.get(name)
    if entry is None:
        raise SpikecError(f"unknown pass {name!r}; passes: {', '.join(pass_names())}")
    module_name, _, attr = entry.target.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except Exception as err:  # a broken plugin must name itself, not take the CLI down with a traceback
        raise PassRegistryError(
            f"pass '{name}' from {entry.owner} ({entry.target}) failed to load: {type(err).__name__}: {err}"
        ) from err
    if not callable(fn):
        raise PassRegistryError(f"pass '{name}' from {entry.owner}: {entry.target} is not a function")
    params = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
    options = {p.name: (p.annotation, p.default) for p in params if p.kind is p.KEYWORD_ONLY}
    summary = (inspect.getdoc(fn) or "").split("\n")[0]
    info = _LOADED[name] = PassInfo(name, fn, summary, options, entry.owner)
    return info


def all_passes() -> dict[str, PassInfo]:
    """Every registered pass by name, sorted (imports each pass's module: for listing them all)."""
    return {name: pass_info(name) for name in pass_names()}


def parse_pass_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'threshold-balance{percentile=99.9}'`` -> ``('threshold-balance', {'percentile': 99.9})``."""
    match = _SPEC.match(spec.strip())
    names = pass_names()
    if not match or match["name"] not in names:
        raise SpikecError(f"unknown pass {spec!r}; passes: {', '.join(names)}")
    info = pass_info(match["name"])
    options: dict[str, Any] = {}
    for item in filter(None, (match["opts"] or "").split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in info.options:
            raise SpikecError(f"pass '{info.name}' has no option '{key}'; options: {', '.join(info.options) or 'none'}")
        kind = info.options[key][0]
        if kind not in _CONVERT:
            raise SpikecError(
                f"pass '{info.name}': option '{key}' takes a {option_type_name(kind)} and cannot be given in a "
                "spec; set it from Python with a (name, options) step"
            )
        try:
            options[key] = _CONVERT[kind](value.strip())
        except (ValueError, KeyError):
            raise SpikecError(f"pass '{info.name}': option {key}={value!r} is not a {kind.__name__}") from None
    return info.name, options


def pass_step(name: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A step given from Python: the pass must exist and take every option named (any value type)."""
    names = pass_names()
    if name not in names:
        raise SpikecError(f"unknown pass {name!r}; passes: {', '.join(names)}")
    known = pass_info(name).options
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SpikecError(f"pass '{name}' has no option {unknown}; options: {', '.join(known) or 'none'}")
    return name, dict(options)


class PassManager:
    """Runs passes in order, verifying the graph after each; failures name the pass and history."""

    def __init__(self, specs: Sequence[PassStep]) -> None:
        self.steps = [parse_pass_spec(s) if isinstance(s, str) else pass_step(*s) for s in specs]

    def run(self, graph: Graph, *, observe: Callable[[str, PassResult], None] | None = None) -> Graph:
        """The graph after every step; ``observe(name, result)`` sees each pass's result (reports, timing)."""
        graph.verify()
        done: list[str] = []
        for name, options in self.steps:
            try:
                result = pass_info(name).fn(graph, **options)
                result.graph.verify()
            except SpikecError as err:
                raise PassError(f"while running '{name}' after {done}: {err}") from err
            if observe is not None:
                observe(name, result)
            graph = result.graph
            done.append(name)
        return graph
