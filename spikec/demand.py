"""What a neuron layer asks of a neuromorphic core: neurons, state, synaptic memory, axons.

A *neuron layer* is a node whose kind is registered with :func:`neuron_layer` (IF, LIF, ...).
Its *connections* are the paths back from it, through nodes whose kinds are registered with
:func:`synapse_op` (Dense, Conv, SumPool, Flatten, ...), to the presynaptic neuron layers or graph
inputs. Slices of a layer are ranges ``[start, stop)`` of its neurons in C order (channel-major
for (C, H, W)), and every op maps a range of its output back to the range of its input that feeds
it (:meth:`SynapseOp.back`), so the demand of any slice follows:

- neurons: ``k = stop - start``; neuron state: ``k * state_bytes(kind)``;
- synaptic memory: per weighted op, the weights the slice needs stored on its core — for Dense the
  rows of W, ``min(rows * in * b, nnz * (b + index_bits))`` (dense or sparse encoding); for Conv
  and pools the kernels of the output channels touched, stored once per core (weight sharing):
  ``channels * (C_in / groups) * prod(kernel) * b``; a connection with no weighted op costs one
  synapse per neuron (``k * b``);
- input axons: the number of presynaptic neurons the slice reads, ``|back(slice)|`` per connection;
- output axons: ``k * fanout`` with ``fanout`` the destination cores per neuron (from the placement).

Both registries are keyed by kind, so a target dialect adds its kinds without touching this file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from spikec.errors import DoesNotFit, TargetError
from spikec.ir.graph import Graph
from spikec.ir.node import Node, Shape
from spikec.resources import ResourceModel

Interval = tuple[int, int]  # [start, stop) of a tensor's C-order flat index
MAX_PATHS = 10_000  # connections per layer before a graph is refused (a pathological fan of Adds)


@dataclasses.dataclass(frozen=True)
class DemandContext:
    """What an op factory may need besides its node: the graph's dt and the target's figures."""

    dt: float
    model: ResourceModel
    weight_bits: int
    index_bits: int


class SynapseOp(Protocol):
    """One op on a path into a neuron layer."""

    @property
    def weighted(self) -> bool:
        """Whether the op stores weights (a path with none costs one synapse per neuron)."""
        ...

    def back(self, region: Interval) -> Interval:
        """The range of this op's input that feeds output range ``region``."""
        ...

    def memory_bits(self, region: Interval) -> int:
        """Synaptic memory the weights for output range ``region`` take on one core."""
        ...


OpFactory = Callable[[str, Node, Sequence[Shape], Shape, int, DemandContext], SynapseOp]
SYNAPSE_OPS: dict[str, OpFactory] = {}


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
    """A neuron kind: its compartments per neuron and, for kinds that also pool, the op it applies."""

    compartments: int = 1
    own_op: OpFactory | None = None


NEURON_KINDS: dict[str, NeuronSpec] = {}


def synapse_op(*kinds: str) -> Callable[[OpFactory], OpFactory]:
    """Register ``factory(name, node, in_shapes, out_shape, input_index, ctx) -> SynapseOp`` for ``kinds``."""

    def register(factory: OpFactory) -> OpFactory:
        for kind in kinds:
            SYNAPSE_OPS[kind] = factory
        return factory

    return register


def neuron_layer(*kinds: str, spec: NeuronSpec | None = None) -> None:
    """Register ``kinds`` as neuron layers (placed on cores)."""
    for kind in kinds:
        NEURON_KINDS[kind] = spec or NeuronSpec()


# -- the ops ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PassThrough:
    """Reshape-like ops and elementwise scaling: the same range, no weights of their own."""

    weighted: bool = False

    def back(self, region: Interval) -> Interval:
        return region

    def memory_bits(self, region: Interval) -> int:
        return 0


@dataclasses.dataclass(frozen=True)
class Whole:
    """An op whose every output may read every input (Transpose, a non-channel Concat)."""

    size: int
    weighted: bool = False

    def back(self, region: Interval) -> Interval:
        return (0, self.size)

    def memory_bits(self, region: Interval) -> int:
        return 0


@dataclasses.dataclass(frozen=True)
class Offset:
    """Input ``i`` of a channel Concat: output range ∩ [offset, offset + size), shifted."""

    offset: int
    size: int
    weighted: bool = False

    def back(self, region: Interval) -> Interval:
        lo, hi = max(region[0], self.offset), min(region[1], self.offset + self.size)
        return (lo - self.offset, hi - self.offset) if lo < hi else (0, 0)

    def memory_bits(self, region: Interval) -> int:
        return 0


@dataclasses.dataclass(frozen=True)
class DenseOp:
    """``y = W x`` over the last axis (W: out × in), weights stored once per core."""

    n_out: int
    n_in: int
    nnz_cumsum: np.ndarray  # (out + 1,) cumulative non-zero count per row
    bits: int
    index_bits: int
    weighted: bool = True

    def _rows(self, region: Interval) -> tuple[int, int]:
        a, b = region
        if b - a >= self.n_out or a // self.n_out != (b - 1) // self.n_out:
            return 0, self.n_out
        return a % self.n_out, (b - 1) % self.n_out + 1

    def back(self, region: Interval) -> Interval:
        a, b = region
        return (a // self.n_out) * self.n_in, ((b - 1) // self.n_out + 1) * self.n_in

    def memory_bits(self, region: Interval) -> int:
        r0, r1 = self._rows(region)
        nnz = int(self.nnz_cumsum[r1] - self.nnz_cumsum[r0])
        return min((r1 - r0) * self.n_in * self.bits, nnz * (self.bits + self.index_bits))


@dataclasses.dataclass(frozen=True)
class WindowOp:
    """Convolution or pooling over (C, *spatial): kernels shared, stored once per core per channel."""

    c_in: int
    c_out: int
    groups: int
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    bits: int
    weighted: bool = True

    def _span(self, region: Interval) -> tuple[int, int, int, int]:
        """Output channels c0..c1 and rows r0..r1 (first spatial axis) that ``region`` touches."""
        plane = math.prod(self.out_spatial)
        row = math.prod(self.out_spatial[1:])
        a, b = region
        c0, c1 = a // plane, (b - 1) // plane
        if c0 != c1:
            return c0, c1, 0, self.out_spatial[0] - 1
        return c0, c1, (a % plane) // row, ((b - 1) % plane) // row

    def back(self, region: Interval) -> Interval:
        c0, c1, r0, r1 = self._span(region)
        per_group_out, per_group_in = self.c_out // self.groups, self.c_in // self.groups
        ch0, ch1 = (c0 // per_group_out) * per_group_in, (c1 // per_group_out + 1) * per_group_in
        k, s, p, d = self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]
        lo = max(0, r0 * s - p)
        hi = min(self.in_spatial[0] - 1, r1 * s - p + d * (k - 1))
        plane, row = math.prod(self.in_spatial), math.prod(self.in_spatial[1:])
        if ch1 - ch0 > 1:  # several input channels: every row of the middle ones is read
            return ch0 * plane + lo * row, (ch1 - 1) * plane + (hi + 1) * row
        return ch0 * plane + lo * row, ch0 * plane + (hi + 1) * row

    def memory_bits(self, region: Interval) -> int:
        c0, c1, _, _ = self._span(region)
        return (c1 - c0 + 1) * (self.c_in // self.groups) * math.prod(self.kernel) * self.bits


@synapse_op("Flatten", "Reshape", "Identity", "Scale", "Bias", "Add")
def _pass_through(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return PassThrough()


@synapse_op("Transpose")
def _whole(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return Whole(math.prod(in_shapes[index]))


@synapse_op("Concat")
def _concat(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    axis = int(node.axis) % len(out_shape)  # type: ignore[attr-defined]
    if axis != 0:
        return Whole(math.prod(in_shapes[index]))
    offset = sum(math.prod(s) for s in in_shapes[:index])
    return Offset(offset, math.prod(in_shapes[index]))


@synapse_op("Delay")
def _delay(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    delay: Any = node.delay  # type: ignore[attr-defined]
    steps = round(float(np.max(delay)) / ctx.dt)
    limit = ctx.model.synapses["max_delay_steps"]
    if steps > limit.value:
        raise DoesNotFit(
            f"resource max_delay_steps: {node.describe(name)} delays by {steps} steps; a {ctx.model.target} "
            f"synapse delays by at most {limit.value} ({limit.source}). Shorten the delay, or chain it through "
            f"relay neurons of at most {limit.value} steps each"
        )
    return PassThrough()


@synapse_op("Dense")
def _dense(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    weight = np.asarray(node.weight)  # type: ignore[attr-defined]
    nnz = np.concatenate([[0], np.cumsum(np.count_nonzero(weight, axis=1))])
    return DenseOp(weight.shape[0], weight.shape[1], nnz, ctx.weight_bits, ctx.index_bits)


@synapse_op("Conv")
def _conv(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    w = np.asarray(node.weight)  # type: ignore[attr-defined]
    return WindowOp(
        c_in=in_shapes[0][0],
        c_out=out_shape[0],
        groups=int(node.groups),  # type: ignore[attr-defined]
        in_spatial=tuple(in_shapes[0][1:]),
        out_spatial=tuple(out_shape[1:]),
        kernel=tuple(w.shape[2:]),
        stride=tuple(node.stride),  # type: ignore[attr-defined]
        padding=tuple(node.padding),  # type: ignore[attr-defined]
        dilation=tuple(node.dilation),  # type: ignore[attr-defined]
        bits=ctx.weight_bits,
    )


@synapse_op("SumPool", "AvgPool")
def _pool(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    kernel = tuple(node.kernel_size)  # type: ignore[attr-defined]
    channels = in_shapes[0][0]
    return WindowOp(
        c_in=channels,
        c_out=channels,
        groups=channels,
        in_spatial=tuple(in_shapes[0][1:]),
        out_spatial=tuple(out_shape[1:]),
        kernel=kernel,
        stride=tuple(node.stride),  # type: ignore[attr-defined]
        padding=tuple(node.padding),  # type: ignore[attr-defined]
        dilation=(1,) * len(kernel),
        bits=ctx.weight_bits,
    )


neuron_layer("IF", "LIF", "CubaLIF", "LI", "CubaLI", "I", "Threshold")
neuron_layer("RateMaxPool", spec=NeuronSpec(own_op=_pool))  # a max over windows, computed by neurons


# -- layers and their demand ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Connection:
    """A path from ``source`` (a neuron layer or graph input) into a layer; ``ops`` layer-side first."""

    source: str
    ops: tuple[SynapseOp, ...]
    bits: int

    def back(self, region: Interval) -> Interval:
        for op in self.ops:
            if region[1] <= region[0]:
                return (0, 0)
            region = op.back(region)
        return region

    def memory_bits(self, region: Interval) -> int:
        total, weighted = 0, False
        for op in self.ops:
            if region[1] <= region[0]:
                break
            if op.weighted:
                total += op.memory_bits(region)
                weighted = True
            region = op.back(region)
        return total if weighted else (region[1] - region[0]) * self.bits


@dataclasses.dataclass(frozen=True)
class LayerDemand:
    """A neuron layer and the resources any slice of it needs (CORE_RESOURCES order)."""

    name: str
    node: Node
    size: int
    state_bytes: int
    compartments: int
    connections: tuple[Connection, ...]

    def demand(self, start: int, stop: int, fanout: int) -> tuple[int, int, int, int, int]:
        k = stop - start
        memory = sum(c.memory_bits((start, stop)) for c in self.connections)
        axons = 0
        for c in self.connections:
            lo, hi = c.back((start, stop))
            axons += max(hi - lo, 0)
        return (k * self.compartments, k * self.state_bytes, memory, axons, k * fanout)


def layer_demands(
    graph: Graph, model: ResourceModel, *, weight_bits: int | None = None
) -> tuple[LayerDemand, ...]:
    """Every neuron layer of ``graph`` in topological order, with its connections."""
    bits = weight_bits or model.synapses["default_weight_bits"].value
    top = model.synapses["max_weight_bits"]
    if bits > top.value:
        raise TargetError(f"weight_bits={bits}: {model.target} weights hold at most {top.value} bits ({top.source})")
    ctx = DemandContext(graph.dt, model, bits, model.synapses["sparse_index_bits"].value)
    types = graph.types
    layers = []
    for name in graph.order:
        node = graph.nodes[name]
        spec = NEURON_KINDS.get(node.kind)
        if spec is None:
            _check_placeable(graph, name)
            continue
        paths = _paths(graph, name, spec.own_op, ctx)
        layers.append(
            LayerDemand(
                name=name,
                node=node,
                size=math.prod(types[name]),
                state_bytes=model.state_bytes(node.kind),
                compartments=spec.compartments,
                connections=tuple(Connection(src, ops, bits) for src, ops in paths),
            )
        )
    return tuple(layers)


def _is_source(graph: Graph, name: str) -> bool:
    node = graph.nodes[name]
    return node.graph_input or node.kind in NEURON_KINDS


def _check_placeable(graph: Graph, name: str) -> None:
    node = graph.nodes[name]
    if node.graph_input or node.sink or node.kind in SYNAPSE_OPS or node.kind == "Constant":
        return
    raise TargetError(
        f"{node.describe(name)}: kind {node.kind} has no mapping onto neuro-cores. Convert the model to an SNN "
        f"first (spikec compile / spikec.convert). Neuron kinds: {', '.join(sorted(NEURON_KINDS))}; "
        f"synapse kinds: {', '.join(sorted(SYNAPSE_OPS))}"
    )


def _paths(
    graph: Graph, layer: str, own_op: OpFactory | None, ctx: DemandContext
) -> list[tuple[str, tuple[SynapseOp, ...]]]:
    """(source, ops) for every path from a neuron layer or graph input into ``layer``.

    Expanding a node applies its own op (the layer's ``own_op``, or the synapse op of its kind) for
    each of its inputs, then follows the edge: a source ends the path, a synapse node continues it.
    """
    found: list[tuple[str, tuple[SynapseOp, ...]]] = []
    types = graph.types
    stack: list[tuple[str, tuple[SynapseOp, ...], frozenset[str]]] = [(layer, (), frozenset({layer}))]
    while stack:
        name, ops, seen = stack.pop()
        node = graph.nodes[name]
        factory = own_op if name == layer else SYNAPSE_OPS[node.kind]
        edges = graph.in_edges(name)
        in_shapes = [types[e.src] for e in edges]
        for i, edge in enumerate(edges):
            step = ops if factory is None else (*ops, factory(name, node, in_shapes, types[name], i, ctx))
            src, src_node = edge.src, graph.nodes[edge.src]
            if _is_source(graph, src):
                found.append((src, step))
            elif src_node.kind == "Constant":
                continue  # a constant input is a bias: no spikes, no axons
            elif src in seen:
                raise TargetError(
                    f"{graph.describe(src)}: a recurrent loop into {graph.describe(layer)} passes no neuron layer; "
                    "a loop must go through a neuron (e.g. IF) to be placed on cores"
                )
            elif src_node.kind in SYNAPSE_OPS:
                stack.append((src, step, seen | {src}))
            else:
                _check_placeable(graph, src)
        if len(found) > MAX_PATHS:
            raise TargetError(f"{graph.describe(layer)} is reached by more than {MAX_PATHS} synaptic paths")
    return found


def total_demand(layer: LayerDemand, fanout: int) -> tuple[int, ...]:
    """The demand of the whole layer (each resource at least what any split needs in total)."""
    return layer.demand(0, layer.size, fanout)


def describe_resource(model: ResourceModel, resource: str) -> str:
    limit = model.core[resource]
    return f"{limit.value:,} {limit.unit}"


RateMap = Mapping[str, float]
