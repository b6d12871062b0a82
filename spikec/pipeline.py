"""Passes: a registry of named graph transformations and the manager that runs them.

A pass is a pure function ``(graph, *, option=...) -> PassResult`` registered under a kebab-case
name; its keyword-only, annotated options become ``name{option=value}`` on the command line.
Options of other types (a calibration array, a progress callback) are given from Python as
``(name, {option: value})`` steps.
"""

from __future__ import annotations

import dataclasses
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


PASSES: dict[str, PassInfo] = {}
_SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9-]*)(?:\{(?P<opts>.*)\})?$")
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


def register_pass(name: str) -> Callable[[Callable[..., PassResult]], Callable[..., PassResult]]:
    """Register ``fn`` as pass ``name``; a name claimed twice is an error naming both owners."""

    def register(fn: Callable[..., PassResult]) -> Callable[..., PassResult]:
        if name in PASSES:
            raise TypeError(f"pass '{name}' registered by {PASSES[name].fn.__module__} and {fn.__module__}")
        params = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
        options = {p.name: (p.annotation, p.default) for p in params if p.kind is p.KEYWORD_ONLY}
        summary = (inspect.getdoc(fn) or "").split("\n")[0]
        PASSES[name] = PassInfo(name, fn, summary, options)
        return fn

    return register


def all_passes() -> dict[str, PassInfo]:
    """Every registered pass (importing the built-in pass modules first)."""
    import spikec.passes  # noqa: F401 - registers the built-ins

    return dict(sorted(PASSES.items()))


def parse_pass_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'threshold-balance{percentile=99.9}'`` -> ``('threshold-balance', {'percentile': 99.9})``."""
    match = _SPEC.match(spec.strip())
    passes = all_passes()
    if not match or match["name"] not in passes:
        raise SpikecError(f"unknown pass {spec!r}; passes: {', '.join(passes)}")
    info = passes[match["name"]]
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
    passes = all_passes()
    if name not in passes:
        raise SpikecError(f"unknown pass {name!r}; passes: {', '.join(passes)}")
    known = passes[name].options
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
                result = PASSES[name].fn(graph, **options)
                result.graph.verify()
            except SpikecError as err:
                raise PassError(f"while running '{name}' after {done}: {err}") from err
            if observe is not None:
                observe(name, result)
            graph = result.graph
            done.append(name)
        return graph
