r"""Which tensors are binary spikes: a dataflow analysis, and the check that binary-event targets need.

Every value of a graph gets a class in the chain :math:`binary \subset ternary \subset integer
\subset real` ({0,1}; {−1,0,1} from bipolar IFs; whole numbers such as spike counts and sums of
spikes; anything). Each kind has a rule (``rule_of``), derived from its traits (spikec.ir.traits): a
*role*, its role trait, and a *transfer* from its input classes to its output class (``EmitsSpikes``:
spikes; ``Routing``: the input's class, real when it ``rescales``; otherwise real), or its own in
``TRANSFERS`` where the class depends on the node's fields:

- ``synaptic``: weights or products applied to its inputs (Dense, Conv, MatMul, SumPool, the
  attention kinds, the AND of ``Binary(mul)``): event-driven only when every input is binary;
- ``neuron``: integrates any current and emits spikes (IF, LIF, ...) or a membrane (LI, I);
- ``routing``: moves, sums or rescales values without multiplying two of them (Reshape, Concat,
  MaxPool, Delay, Add, Scale, BatchNorm, ...): legal on any class, and passes the class on;
- ``non-event``: no event-driven form at all (Softmax, LayerNorm, GELU, ReLU, ...).

The analysis iterates the transfers to a fixpoint (recurrent edges included) from "everything
binary"; several edges into a node are summed, so two binaries give an integer. Graph inputs are
real unless declared spikes (``encode-input{mode=poisson}`` feeds ternary spikes, binary for
non-negative data such as images). ``check_spikes`` then lists every *offender*: each synaptic op
with a non-binary input and each non-event node, with the node upstream that made the value
non-binary and the pass or block design that makes it legal.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from spikec.errors import SpikecError, TargetError
from spikec.ir import ann, attention, exact, norm, snn, spatial, structure, tensor
from spikec.ir.graph import Graph
from spikec.ir.node import NODE_KINDS, Node
from spikec.ir.traits import EmitsCounts, EmitsSpikes, Neuron, NonEvent, Routing, Synaptic, Trait


class SpikeClass(enum.IntEnum):
    """The values a tensor may hold; ordered, so the class of a mix is the ``max``."""

    BINARY = 0  # {0, 1}
    TERNARY = 1  # {-1, 0, 1}
    INTEGER = 2  # whole numbers: spike counts, sums of spike trains
    REAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: SpikeClass | str) -> SpikeClass:
        if isinstance(value, SpikeClass):
            return value
        try:
            return cls[value.upper()]
        except KeyError:
            raise SpikecError(f"spike class {value!r} is not one of {[c.label for c in cls]}") from None


class Role(enum.StrEnum):
    SYNAPTIC = "synaptic"
    NEURON = "neuron"
    ROUTING = "routing"
    NON_EVENT = "non-event"


Transfer = Callable[[Any, Sequence[SpikeClass]], SpikeClass]


@dataclasses.dataclass(frozen=True)
class SpikeRule:
    role: Role
    transfer: Transfer
    hint: str = ""  # for non-event kinds: what replaces them


def join(classes: Iterable[SpikeClass]) -> SpikeClass:
    return max(classes, default=SpikeClass.BINARY)


def summed(classes: Sequence[SpikeClass]) -> SpikeClass:
    """The class of a sum of edges: a single edge keeps its class, several add up to counts."""
    top = join(classes)
    if len(classes) <= 1 or top is SpikeClass.REAL:
        return top
    return SpikeClass.INTEGER


def class_of_values(values: np.ndarray) -> SpikeClass:
    """The smallest class holding every entry of ``values``."""
    v = np.asarray(values, np.float64)
    if np.all((v == 0) | (v == 1)):
        return SpikeClass.BINARY
    if np.all((v == 0) | (v == 1) | (v == -1)):
        return SpikeClass.TERNARY
    if np.all(np.isfinite(v) & (v == np.round(v))):
        return SpikeClass.INTEGER
    return SpikeClass.REAL


# -- the transfers --------------------------------------------------------------------------------
def _real(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    return SpikeClass.REAL


def _keep(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    return join(xs)


def _binary(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    return SpikeClass.BINARY


def _spikes(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    """``EmitsSpikes``: 0/1, or −1/0/1 from a bipolar node."""
    trait = node.get_trait(EmitsSpikes)
    return SpikeClass.TERNARY if trait is not None and trait.signed(node) else SpikeClass.BINARY


def _count(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    """A sum of its inputs' entries: counts from spikes, real otherwise."""
    return SpikeClass.INTEGER if join(xs) <= SpikeClass.INTEGER else SpikeClass.REAL


def _rate_max_pool(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    """Fed 0/1 spikes it emits 0/1 spikes (docs/semantics.md); fed currents, differences of maxima."""
    return SpikeClass.BINARY if join(xs) is SpikeClass.BINARY else SpikeClass.REAL


def _constant(node: Any, xs: Sequence[SpikeClass]) -> SpikeClass:
    return class_of_values(node.value)


def _pad(node: Any, xs: Sequence[SpikeClass]) -> SpikeClass:
    return join([*xs, class_of_values(np.asarray(node.value))])


def _where(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    return join(xs[1:])  # the condition only selects


def _pool(node: Any, xs: Sequence[SpikeClass]) -> SpikeClass:
    return {"max": join(xs), "sum": _count(node, xs)}.get(node.mode, SpikeClass.REAL)


def _reduce(node: Any, xs: Sequence[SpikeClass]) -> SpikeClass:
    return {"max": join(xs), "min": join(xs), "sum": _count(node, xs)}.get(node.op, SpikeClass.REAL)


def _binary_op(node: Any, xs: Sequence[SpikeClass]) -> SpikeClass:
    """mul/max/min of spikes are AND/OR/AND; sums count; comparisons give 0/1; the rest is real."""
    if node.op in ("mul", "max", "min"):
        return join(xs) if join(xs) <= SpikeClass.TERNARY else SpikeClass.REAL
    if node.op in ("add", "sub"):
        return summed(xs) if node.op == "add" else max(summed(xs), SpikeClass.TERNARY)
    if node.op in ("gt", "ge", "lt", "le", "eq"):
        return SpikeClass.BINARY
    return SpikeClass.REAL


def _relu(node: Node, xs: Sequence[SpikeClass]) -> SpikeClass:
    return SpikeClass.BINARY if join(xs) <= SpikeClass.TERNARY else join(xs)


def _clip(node: Any, xs: Sequence[SpikeClass]) -> SpikeClass:
    keeps = join(xs) is SpikeClass.BINARY and node.min <= 0 and node.max >= 1
    return SpikeClass.BINARY if keeps else SpikeClass.REAL


def _st_bif(node: Any, xs: Sequence[SpikeClass]) -> SpikeClass:
    """Exact conversion's ST-BIF (spikec/ir/exact.py): signed spikes, k per step when graded."""
    return SpikeClass.TERNARY if node.max_spikes == 1 else SpikeClass.INTEGER


ROLE_OF_TRAIT: dict[type[Trait], Role] = {
    Neuron: Role.NEURON,
    Synaptic: Role.SYNAPTIC,
    Routing: Role.ROUTING,
    NonEvent: Role.NON_EVENT,
}

# Transfers of the kinds whose output class depends on their fields or inputs beyond what their traits
# say (the analysis's own per-kind rules; every other kind's transfer follows from its traits, _by_traits).
TRANSFERS: dict[type[Node], Transfer] = {
    ann.SumPool: _count,
    attention.HadamardColumnSum: _count,
    snn.RateMaxPool: _rate_max_pool,
    tensor.Constant: _constant,
    spatial.Pad: _pad,
    tensor.Where: _where,
    spatial.Pool: _pool,
    tensor.Reduce: _reduce,
    tensor.Binary: _binary_op,
    ann.ReLU: _relu,
    ann.Clip: _clip,
    exact.STBIF: _st_bif,
}

BINARY_PATH = (
    "then compile with --method binary (passes fuse-spiking-attention, spike-input, threshold-balance, relu-to-if)"
)
# What replaces a non-event kind (DEFAULT_NON_EVENT_HINT for the others).
NON_EVENT_HINTS: dict[type[Node], str] = {
    ann.ReLU: "relu-to-if (spikec convert) turns ReLU layers into IF neurons",
    ann.Clip: "relu-to-if (spikec convert) turns a clipped ReLU into an IF neuron",
    tensor.Softmax: "no pass makes softmax binary: retrain with Spikformer attention ReLU(Q Kᵀ V·s) on ReLU'd Q, K, "
    f"V (benchmarks/vit/train.py --arch binary), {BINARY_PATH}; or build SpikingSelfAttention / spike-driven "
    "attention directly (spikec.blocks)",
    tensor.LayerNorm: "no pass removes LayerNorm (per-token statistics): retrain with BatchNorm (Spikformer; "
    f"benchmarks/vit/train.py --arch binary), which folds into the Linear layers, {BINARY_PATH}",
    norm.LRN: "no event-driven form (a power of a channel-window sum): retrain without LocalResponseNorm "
    "(BatchNorm, which folds into the convolutions) or compute it off-chip",
    tensor.GELU: f"retrain with ReLU (benchmarks/vit/train.py --arch binary), {BINARY_PATH}: relu-to-if makes each "
    "ReLU an IF neuron (or use an LIF as the MLP's nonlinearity, Spikformer)",
    tensor.Unary: "no event-driven form: compute it off-chip or retrain without it (GELU exported as erf/tanh "
    f"arrives as Unary: retrain with ReLU, benchmarks/vit/train.py --arch binary, {BINARY_PATH})",
    exact.Quantize: "exact-spiking turns each Quantize into an ST-BIF neuron",
    exact.Accumulate: "host-side accumulate→f→difference of the exact path",
    exact.Difference: "host-side accumulate→f→difference of the exact path",
}
DEFAULT_NON_EVENT_HINT = "no event-driven form: compute it off-chip or retrain without it"


def _by_traits(kind: type[Node]) -> Transfer:
    """The transfer a kind's traits imply: spikes from ``EmitsSpikes``; a membrane, a weighted sum, a
    rescaled value or a non-event result is real; routing passes its input's class on."""
    if kind.has_trait(EmitsSpikes):
        return _spikes
    if kind.has_trait(EmitsCounts):
        return _count
    routing = kind.get_trait(Routing)
    if routing is not None and not routing.rescales:
        return _keep
    return _real


def rule_of(kind: type[Node]) -> SpikeRule | None:
    """The binary-spike rule of a kind, from its role trait (None: the kind declares no role)."""
    role = next((r for trait, r in ROLE_OF_TRAIT.items() if kind.has_trait(trait)), None)
    if role is None:
        return None
    transfer = TRANSFERS.get(kind) or _by_traits(kind)
    hint = NON_EVENT_HINTS.get(kind, DEFAULT_NON_EVENT_HINT) if role is Role.NON_EVENT else ""
    return SpikeRule(role, transfer, hint)


def spike_rules() -> dict[str, SpikeRule]:
    """Kind name -> rule, for every registered kind that has one (derived from the traits)."""
    return {name: rule for name, cls in sorted(NODE_KINDS.items()) if (rule := rule_of(cls)) is not None}


# Why a synaptic op's input is not binary, by the kind of the node that made it so.
SOURCE_HINTS: dict[type[Node], str] = {
    structure.Input: "the graph input carries analog values: encode it as spikes (encode-input{mode=poisson}) and "
    "declare the input binary (or ternary for signed data)",
    ann.Add: "spike addition: the residual sums spike trains into counts; use membrane shortcuts with the "
    "neuron before each layer (Spikingformer / Spike-driven Transformer, spikec.blocks.spike_driven_block)",
    snn.IF: "a bipolar IF emits -1 spikes; a binary-only target needs unipolar IFs (or allow ternary spikes)",
    ann.Scale: "fuse folds the Scale into the next layer's weights",
    norm.BatchNorm: "fold-batchnorm / fuse fold it into a neighbouring layer, or put a neuron after it",
    ann.SumPool: "the next layer reads spike counts: put an IF after the pool, or compose the pooling into that "
    "layer's weights (a SumPool is linear, so layer∘SumPool is one layer on spikes; no pass does this yet)",
    ann.AvgPool: "avgpool-to-sumpool then fuse fold the pooling into the next layer's weights",
    ann.ReLU: "relu-to-if (spikec convert) makes the ReLU an IF neuron, so the next layer reads its spikes",
    ann.Clip: "relu-to-if (spikec convert) makes the clipped ReLU an IF neuron",
    snn.LI: "an LI outputs its membrane (analog); use an LIF to emit spikes",
    snn.I: "an integrator outputs its membrane (analog); use an IF to emit spikes",
    tensor.Softmax: "softmax attention weights are real: retrain with Spikformer attention (no softmax) and "
    "compile with --method binary, whose fuse-spiking-attention makes the product a SpikingSelfAttention on spikes",
}
DEFAULT_SOURCE_HINT = (
    "put a spiking neuron (IF/LIF) before this op so it reads spikes (Spikingformer's neuron-first order; "
    "relu-to-if for converted ANNs)"
)


@dataclasses.dataclass(frozen=True)
class Offender:
    """A node a binary-event target cannot run as it is."""

    node: str
    kind: str
    origin: str
    reason: str
    hint: str
    source: str = ""  # the upstream node that made the input non-binary

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        where = f" from {self.origin}" if self.origin else ""
        return f"node '{self.node}' ({self.kind}){where}: {self.reason}; fix: {self.hint}"


@dataclasses.dataclass(frozen=True)
class SpikeReport:
    """Every value's class (by node name, after inlining subgraphs) and every offender."""

    classes: dict[str, SpikeClass]
    offenders: tuple[Offender, ...]
    allow_ternary: bool = False

    @property
    def ok(self) -> bool:
        return not self.offenders

    def to_dict(self) -> dict[str, Any]:
        return {
            "binary_spikes": self.ok,
            "allow_ternary": self.allow_ternary,
            "classes": {name: c.label for name, c in self.classes.items()},
            "offenders": [o.to_dict() for o in self.offenders],
        }

    def summary(self) -> str:
        if self.ok:
            return "every synaptic op reads spikes"
        lines = [f"{len(self.offenders)} non-spiking op(s):"]
        return "\n".join([*lines, *(f"  {o.describe()}" for o in self.offenders)])


def _rule(node: Node) -> SpikeRule | None:
    return rule_of(type(node))


def classify(
    graph: Graph, inputs: Mapping[str, SpikeClass | str] | SpikeClass | str = SpikeClass.REAL
) -> dict[str, SpikeClass]:
    """The class of every node's output: a fixpoint of the transfers, from "all binary" upwards.

    ``inputs``: one class for every graph input, or a class per input name (others are real).
    Kinds without a rule are real.
    """
    graph = graph.inline_subgraphs()
    if isinstance(inputs, Mapping):
        unknown = set(inputs) - set(graph.inputs)
        if unknown:
            raise SpikecError(f"inputs {sorted(unknown)} are not graph inputs; graph inputs: {list(graph.inputs)}")
        given = {name: SpikeClass.parse(c) for name, c in inputs.items()}
    else:
        given = dict.fromkeys(graph.inputs, SpikeClass.parse(inputs))
    classes = dict.fromkeys(graph.order, SpikeClass.BINARY)
    changed = True
    while changed:  # monotone on a chain of height 4: at most 4 rounds per node
        changed = False
        for name in graph.order:
            new = max(_transfer(graph, name, classes, given), classes[name])
            if new != classes[name]:
                classes[name], changed = new, True
    return classes


def _input_classes(graph: Graph, name: str, classes: Mapping[str, SpikeClass]) -> list[SpikeClass]:
    """What the kernel receives: each edge for ORDERED kinds, else the class of their sum."""
    node = graph.nodes[name]
    edges = [classes[e.src] for e in graph.in_edges(name)]
    return edges if node.inputs.value == "ordered" else [summed(edges)] if edges else []


def _transfer(
    graph: Graph, name: str, classes: Mapping[str, SpikeClass], given: Mapping[str, SpikeClass]
) -> SpikeClass:
    node = graph.nodes[name]
    if node.graph_input:
        return given.get(name, SpikeClass.REAL)
    rule = _rule(node)
    return SpikeClass.REAL if rule is None else rule.transfer(node, _input_classes(graph, name, classes))


def _source(graph: Graph, name: str, classes: Mapping[str, SpikeClass]) -> str:
    """Walk up through routing nodes that merely pass a non-binary value on, to the node that made it."""
    seen = {name}
    while True:
        node = graph.nodes[name]
        rule = _rule(node)
        if rule is None or rule.role is not Role.ROUTING or type(node) in SOURCE_HINTS:
            return name
        ups = [e.src for e in graph.in_edges(name) if classes[e.src] >= classes[name] and e.src not in seen]
        if not ups or (len(graph.in_edges(name)) > 1 and node.inputs.value != "ordered"):
            return name  # a sum of several edges made the value itself (an Add of spikes)
        name = ups[0]
        seen.add(name)


def check_spikes(
    graph: Graph,
    *,
    inputs: Mapping[str, SpikeClass | str] | SpikeClass | str = SpikeClass.REAL,
    allow_ternary: bool = False,
) -> SpikeReport:
    """Classify every value and list each synaptic op with a non-binary input and each non-event node."""
    graph = graph.inline_subgraphs()
    classes = classify(graph, inputs)
    accepted = SpikeClass.TERNARY if allow_ternary else SpikeClass.BINARY
    offenders: list[Offender] = []
    for name in graph.order:
        node = graph.nodes[name]
        rule = _rule(node)
        if node.graph_input:
            continue
        if rule is None:
            offenders.append(
                Offender(name, node.kind, node.origin, "no binary-spike rule for this kind",
                         f"declare the role of {type(node).__name__} in its traits: one of "
                         f"{', '.join(t.__name__ + '()' for t in ROLE_OF_TRAIT)} (spikec.ir.traits)")
            )  # fmt: skip
        elif rule.role is Role.NON_EVENT:
            offenders.append(Offender(name, node.kind, node.origin, "not an event-driven operation", rule.hint))
        elif rule.role is Role.SYNAPTIC:
            bad = [e.src for e in graph.in_edges(name) if classes[e.src] > accepted]
            summed_bad = (
                not bad and node.inputs.value != "ordered" and _input_classes(graph, name, classes)[0] > accepted
            )
            if bad:
                culprit = _source(graph, bad[0], classes)
                got = ", ".join(f"'{s}' is {classes[s].label}" for s in bad)
                hint = SOURCE_HINTS.get(type(graph.nodes[culprit]), DEFAULT_SOURCE_HINT)
                offenders.append(
                    Offender(name, node.kind, node.origin, f"synaptic op on non-spike input ({got})", hint, culprit)
                )
            elif summed_bad:  # several spike edges into one node add up to counts, as an Add would
                reason = "synaptic op on non-spike input (its edges' spikes are summed into counts)"
                offenders.append(Offender(name, node.kind, node.origin, reason, SOURCE_HINTS[ann.Add], name))
    return SpikeReport(classes, tuple(offenders), allow_ternary)


class NotBinarySpikes(TargetError):
    """The graph has non-spiking ops; ``details`` holds the report as a dict (the CLI prints it)."""

    def __init__(self, message: str, report: SpikeReport) -> None:
        super().__init__(message)
        self.report = report
        self.details = report.to_dict()


def require_binary_spikes(
    graph: Graph,
    target_name: str,
    *,
    inputs: Mapping[str, SpikeClass | str] | SpikeClass | str = SpikeClass.BINARY,
    allow_ternary: bool = False,
) -> SpikeReport:
    """For a target whose ``Capabilities.binary_spikes_only`` is set: the report, or ``NotBinarySpikes``
    naming every offender and the pass that makes it legal. Graph inputs count as spikes by default:
    the host encodes them (``encode-input{mode=poisson}``) before they reach the chip."""
    report = check_spikes(graph, inputs=inputs, allow_ternary=allow_ternary)
    if not report.ok:
        raise NotBinarySpikes(f"target '{target_name}' takes only binary spike events; {report.summary()}", report)
    return report
