"""Whether every node kind brings what the registries keyed by kind need.

A node kind is one class with its traits (spikec.ir.traits) plus one interpreter kernel. The tables
that used to list kind names now derive from the traits (spike rules, neuron layers, the spikec ONNX
domain, flatten-tokens' neurons, NIR's spike bounds, the exact path's additive kinds); a few passes
keep a per-kind algorithm for the kinds with a trait (how threshold-balance lays a scale out past a
reshape), and those must cover every such kind. ``kind_problems`` lists what each kind lacks, one
line per problem naming the kind: the test suite runs it on every registered kind (a target's
included), and a target loader can run it on the kinds a target adds (``check_kinds``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from spikec.demand import SYNAPSE_OPS, neuron_spec
from spikec.errors import SpikecError
from spikec.interp.kernels import KERNELS
from spikec.ir.node import NODE_KINDS, FieldKind, Node
from spikec.ir.traits import ROLES, NonEvent, Product, ScalePassesThrough
from spikec.passes.fuse import COMMUTE
from spikec.passes.threshold_balance import PRODUCTS, TRANSFER
from spikec.spike_check import NON_EVENT_HINTS, rule_of


class IncompleteKind(SpikecError):
    """A node kind lacks a kernel, a role trait, or an entry a registry needs (every problem is named)."""


def _name(cls: type[Node]) -> str:
    return f"node kind '{cls.kind}' ({cls.__module__}.{cls.__qualname__})"


def _holds_graph(cls: type[Node]) -> bool:
    """Kinds holding a nested graph (Subgraph) are inlined before anything runs or classifies them."""
    return FieldKind.GRAPH in cls.field_kinds().values()


def _kernel(cls: type[Node]) -> Iterator[str]:
    if cls not in KERNELS and not _holds_graph(cls):
        yield f"{_name(cls)} has no interpreter kernel: register one with @spikec.interp.kernel({cls.__name__})"


def _role(cls: type[Node]) -> Iterator[str]:
    if cls.graph_input or _holds_graph(cls) or rule_of(cls) is not None:
        return
    roles = ", ".join(f"{r.__name__}()" for r in ROLES)
    yield f"{_name(cls)} declares no role: put one of {roles} in its traits (spikec.ir.traits)"


def _spike_check(cls: type[Node]) -> Iterator[str]:
    if cls in NON_EVENT_HINTS and not cls.has_trait(NonEvent):
        yield f"{_name(cls)} has a hint in spikec.spike_check.NON_EVENT_HINTS but not the NonEvent trait"


def _threshold_balance(cls: type[Node]) -> Iterator[str]:
    if cls.has_trait(ScalePassesThrough) and cls not in TRANSFER:
        yield (
            f"{_name(cls)} has the ScalePassesThrough trait but threshold-balance cannot lay a scale out past it: "
            "add it to spikec.passes.threshold_balance.TRANSFER"
        )
    if cls in TRANSFER and not cls.has_trait(ScalePassesThrough):
        yield f"{_name(cls)} is in threshold_balance.TRANSFER but lacks the ScalePassesThrough trait"
    if cls in PRODUCTS and not cls.has_trait(Product):
        yield f"{_name(cls)} is in threshold_balance.PRODUCTS but lacks the Product trait"


def _fuse(cls: type[Node]) -> Iterator[str]:
    if cls in COMMUTE and not cls.has_trait(ScalePassesThrough):
        yield f"{_name(cls)}: fuse moves a Scale past it (fuse.COMMUTE) but it lacks the ScalePassesThrough trait"


def _demand(cls: type[Node]) -> Iterator[str]:
    if cls in SYNAPSE_OPS and neuron_spec(cls) is not None:
        yield f"{_name(cls)} is both a neuron layer and a synapse op in spikec.demand; it is one or the other"


CHECKS: tuple[Callable[[type[Node]], Iterator[str]], ...] = (
    _kernel,
    _role,
    _spike_check,
    _threshold_balance,
    _fuse,
    _demand,
)


def kind_problems(kinds: Iterable[type[Node]] | None = None) -> list[str]:
    """What each kind (default: every registered kind) lacks, one message per problem naming the kind."""
    chosen = NODE_KINDS.values() if kinds is None else kinds
    return [problem for cls in chosen for check in CHECKS for problem in check(cls)]


def check_kinds(kinds: Iterable[type[Node]] | None = None) -> None:
    """Raise ``IncompleteKind`` listing every problem ``kind_problems`` finds."""
    problems = kind_problems(kinds)
    if problems:
        raise IncompleteKind("; ".join(problems))
