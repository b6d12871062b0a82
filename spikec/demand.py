"""What a neuron layer asks of a neuromorphic core: neurons, state, synaptic memory, axons.

A *neuron layer* is a node whose kind has the ``Neuron`` trait (IF, LIF, ...; spikec.ir.traits) or is
registered with :func:`neuron_layer` (a kind computed by neurons, such as RateMaxPool). Its
*connections* are the paths back from it, through nodes whose kinds are registered with
:func:`synapse_op` (Dense, Conv, SumPool, Flatten, ...), to the presynaptic neuron layers or graph
inputs. A slice of a layer is a box of its tensor (spikec.regions), and every op maps a box of its
output back to the box of its input that feeds it (:meth:`SynapseOp.back`), so the demand of any
slice of ``k`` neurons follows:

- neurons: ``k * compartments``; neuron state: ``k * state_bytes(kind)``;
- synaptic memory: per weighted op, the weights the slice needs stored on its core — for Dense the
  rows of W, ``min(rows * in * b, nnz * (b + index_bits))`` (dense or sparse encoding); for Conv
  and pools the kernels of the output channels touched, stored once per core (weight sharing):
  ``channels * (C_in / groups) * prod(kernel) * b``; a connection with no weighted op costs one
  synapse per neuron (``k * b``);
- input axons: the number of presynaptic neurons the slice reads, ``|back(slice)|`` per connection;
- output axons: ``⌈k * fanout⌉`` with ``fanout`` the destination cores per neuron (estimated, then
  counted exactly from the placement).

Both registries are keyed by kind class, so a target's dialect adds its kinds (and their demand) without
touching this file.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from spikec.errors import DoesNotFit, TargetError
from spikec.ir import ann, snn, tensor
from spikec.ir.graph import Graph
from spikec.ir.node import NODE_KINDS, Node, Shape
from spikec.ir.traits import Neuron
from spikec.regions import Box, box_flat_bounds, flat_box, full, volume
from spikec.registry import Registry
from spikec.resources import ResourceModel

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

    def back(self, box: Box) -> Box | None:
        """The box of this op's input that feeds output box ``box`` (None: nothing)."""
        ...

    def memory_bits(self, box: Box) -> int:
        """Synaptic memory the weights for output box ``box`` take on one core."""
        ...


OpFactory = Callable[[str, Node, Sequence[Shape], Shape, int, DemandContext], SynapseOp]
SYNAPSE_OPS: Registry[type[Node], OpFactory] = Registry("synapse op")


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
    """A neuron kind: its compartments per neuron and, for kinds that also pool, the op it applies."""

    compartments: int = 1
    own_op: OpFactory | None = None


# Neuron layers beyond the kinds with the Neuron trait (which need no entry): kinds computed by neurons.
NEURON_LAYERS: dict[type[Node], NeuronSpec] = {}


def synapse_op(*kinds: type[Node]) -> Callable[[OpFactory], OpFactory]:
    """Register ``factory(name, node, in_shapes, out_shape, input_index, ctx) -> SynapseOp`` for ``kinds``."""
    return SYNAPSE_OPS.register(*kinds)


def neuron_layer(*kinds: type[Node], spec: NeuronSpec | None = None) -> None:
    """Register ``kinds`` as neuron layers (placed on cores); a kind with the ``Neuron`` trait needs no entry."""
    for kind in kinds:
        NEURON_LAYERS[kind] = spec or NeuronSpec()


def neuron_spec(kind: type[Node]) -> NeuronSpec | None:
    """How a kind is placed as a neuron layer: its registration, else from its ``Neuron`` trait (None: not one)."""
    spec = NEURON_LAYERS.get(kind)
    if spec is not None:
        return spec
    neuron = kind.get_trait(Neuron)
    return None if neuron is None else NeuronSpec(compartments=neuron.compartments)


def neuron_kinds() -> list[str]:
    """Names of every registered kind placed as a neuron layer (derived from the traits and ``NEURON_LAYERS``)."""
    return sorted(name for name, cls in NODE_KINDS.items() if neuron_spec(cls) is not None)


# -- the ops ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PassThrough:
    """Elementwise ops (scaling, sums, delays): the same box, no weights of their own."""

    weighted: bool = False

    def back(self, box: Box) -> Box | None:
        return box

    def memory_bits(self, box: Box) -> int:
        return 0


@dataclasses.dataclass(frozen=True)
class Regroup:
    """Reshape/Flatten: the C-order range spanning the box, as a box of the input's shape."""

    in_shape: Shape
    out_shape: Shape
    weighted: bool = False

    def back(self, box: Box) -> Box | None:
        return flat_box(self.in_shape, *box_flat_bounds(self.out_shape, box))

    def memory_bits(self, box: Box) -> int:
        return 0


@dataclasses.dataclass(frozen=True)
class Permute:
    """Transpose: output axis i is input axis perm[i]."""

    perm: tuple[int, ...]
    weighted: bool = False

    def back(self, box: Box) -> Box | None:
        natural: list[tuple[int, int]] = [(0, 0)] * len(self.perm)
        for i, axis in enumerate(self.perm):
            natural[axis] = box[i]
        return tuple(natural)

    def memory_bits(self, box: Box) -> int:
        return 0


@dataclasses.dataclass(frozen=True)
class Offset:
    """Input ``i`` of a Concat: the box ∩ [offset, offset + size) along ``axis``, shifted."""

    axis: int
    offset: int
    size: int
    weighted: bool = False

    def back(self, box: Box) -> Box | None:
        lo, hi = box[self.axis]
        lo, hi = max(lo, self.offset), min(hi, self.offset + self.size)
        if lo >= hi:
            return None
        return (*box[: self.axis], (lo - self.offset, hi - self.offset), *box[self.axis + 1 :])

    def memory_bits(self, box: Box) -> int:
        return 0


@dataclasses.dataclass(frozen=True)
class DenseOp:
    """``y = W x`` over the last axis (W: out × in); the rows a core needs are stored once on it.

    Rows ``[r0, r1)`` read inputs ``[min col_lo, max col_hi)``: the span of their non-zero columns (all of
    them for a dense W; one token's block for a block-diagonal W, a few for a selection matrix)."""

    n_out: int
    n_in: int
    nnz_cumsum: np.ndarray  # (out + 1,) cumulative non-zero count per row
    bits: int
    index_bits: int
    col_lo: np.ndarray  # (out,) first non-zero column per row (n_in for an all-zero row)
    col_hi: np.ndarray  # (out,) last non-zero column + 1 per row (0 for an all-zero row)
    weighted: bool = True

    def back(self, box: Box) -> Box | None:
        r0, r1 = box[-1]
        lo, hi = int(self.col_lo[r0:r1].min()), int(self.col_hi[r0:r1].max())
        return None if lo >= hi else (*box[:-1], (lo, hi))

    def memory_bits(self, box: Box) -> int:
        r0, r1 = box[-1]
        nnz = int(self.nnz_cumsum[r1] - self.nnz_cumsum[r0])
        return min((r1 - r0) * self.n_in * self.bits, nnz * (self.bits + self.index_bits))


@dataclasses.dataclass(frozen=True)
class WindowOp:
    """Convolution or pooling over (C, *spatial): each channel's kernel is stored once per core.

    Output channels ``[c0, c1)`` read input channels ``[c0 / per_out · per_in, ⌈c1 / per_out⌉ · per_in)``;
    an ungrouped conv reads only ``channels_read``, the span of the input channels with a non-zero weight
    (a channel shuffle or split folded into its weights selects part of its source: its neurons need the axons of
    that part), and feeds only ``channels_written``, the span of output channels with a non-zero weight (a
    convolution composed into one part of a concatenation: DenseNet's layers each write their slice of the
    next layer's input). Neurons outside that span read nothing through it and store none of its kernels."""

    c_in: int
    c_out: int
    groups: int
    in_spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    bits: int
    weighted: bool = True
    channels_read: tuple[int, int] | None = None  # ungrouped: the span of channels with a non-zero weight
    channels_written: tuple[int, int] | None = None  # ungrouped: the span of output channels with one

    def written(self, c0: int, c1: int) -> int:
        """How many of output channels ``[c0, c1)`` the op feeds."""
        if self.channels_written is None:
            return c1 - c0
        return max(0, min(c1, self.channels_written[1]) - max(c0, self.channels_written[0]))

    def channels(self, c0: int, c1: int) -> tuple[int, int]:
        """The input channels output channels ``[c0, c1)`` read (``lo >= hi``: none)."""
        if self.written(c0, c1) == 0:
            return 0, 0
        if self.channels_read is not None:
            return self.channels_read
        per_out, per_in = self.c_out // self.groups, self.c_in // self.groups
        return (c0 // per_out) * per_in, ((c1 - 1) // per_out + 1) * per_in

    def channels_per_neuron(self) -> int:
        """The input channels one output neuron reads."""
        if self.channels_read is None:
            return self.c_in // self.groups
        return max(0, self.channels_read[1] - self.channels_read[0])

    def back(self, box: Box) -> Box | None:
        (c0, c1), *spatial = box
        channels = self.channels(c0, c1)
        if channels[0] >= channels[1]:
            return None
        out = [channels]
        for (lo, hi), n, k, s, p, d in zip(
            spatial, self.in_spatial, self.kernel, self.stride, self.padding, self.dilation, strict=True
        ):
            a, b = max(0, lo * s - p), min(n, (hi - 1) * s - p + d * (k - 1) + 1)
            if a >= b:
                return None
            out.append((a, b))
        return tuple(out)

    def memory_bits(self, box: Box) -> int:
        c0, c1 = box[0]
        return self.written(c0, c1) * (self.c_in // self.groups) * math.prod(self.kernel) * self.bits


@synapse_op(ann.Identity, ann.Scale, tensor.Bias, ann.Add)
def _pass_through(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return PassThrough()


@synapse_op(ann.Flatten, ann.Reshape)
def _regroup(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return Regroup(tuple(in_shapes[0]), tuple(out_shape))


@synapse_op(ann.Transpose)
def _permute(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return Permute(tuple(node.perm))  # type: ignore[attr-defined]


@synapse_op(ann.Concat)
def _concat(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    axis = int(node.axis) % len(out_shape)  # type: ignore[attr-defined]
    offset = sum(s[axis] for s in in_shapes[:index])
    return Offset(axis, offset, in_shapes[index][axis])


@synapse_op(snn.Delay)
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


def dense_op(weight: np.ndarray, bits: int, ctx: DemandContext) -> DenseOp:
    """The DenseOp of an (out, in) weight matrix stored at ``bits`` per weight."""
    nonzero = weight != 0
    nnz = np.concatenate([[0], np.cumsum(np.count_nonzero(nonzero, axis=1))])
    col_lo, col_hi = _spans(nonzero)
    return DenseOp(weight.shape[0], weight.shape[1], nnz, bits, ctx.index_bits, col_lo, col_hi)


def conv_op(node: Node, in_shapes: Sequence[Shape], out_shape: Shape, bits: int) -> WindowOp:
    """The WindowOp of a convolution node (weight (O, I/groups, *kernel), stride, padding, dilation, groups)."""
    w = np.asarray(node.weight)  # type: ignore[attr-defined]
    read = written = None
    if int(node.groups) == 1:  # type: ignore[attr-defined]
        used = np.asarray(np.moveaxis(w != 0, 1, 0).reshape(w.shape[1], -1).any(axis=1))  # (I,): channel i weighs
        lo, hi = _spans(used[None])
        read = (int(lo[0]), int(hi[0]))
        fed = np.asarray(np.asarray(w != 0).reshape(w.shape[0], -1).any(axis=1))  # (O,): channel o is fed
        lo, hi = _spans(fed[None])
        written = (int(lo[0]), int(hi[0]))
    return WindowOp(
        c_in=in_shapes[0][0],
        c_out=out_shape[0],
        groups=int(node.groups),  # type: ignore[attr-defined]
        in_spatial=tuple(in_shapes[0][1:]),
        kernel=tuple(w.shape[2:]),
        stride=tuple(node.stride),  # type: ignore[attr-defined]
        padding=tuple(node.padding),  # type: ignore[attr-defined]
        dilation=tuple(node.dilation),  # type: ignore[attr-defined]
        bits=bits,
        channels_read=read,
        channels_written=written,
    )


def _spans(nonzero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a boolean (rows, cols) matrix: its first true column and its last + 1 (cols, 0 for none)."""
    cols = nonzero.shape[1]
    any_in_row = nonzero.any(axis=1)
    lo = np.where(any_in_row, np.argmax(nonzero, axis=1), cols)
    hi = np.where(any_in_row, cols - np.argmax(nonzero[:, ::-1], axis=1), 0)
    return lo, hi


@synapse_op(ann.Dense)
def _dense(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return dense_op(np.asarray(node.weight), ctx.weight_bits, ctx)  # type: ignore[attr-defined]


@synapse_op(ann.Conv)
def _conv(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return conv_op(node, in_shapes, out_shape, ctx.weight_bits)


@synapse_op(ann.SumPool, ann.AvgPool)
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
        kernel=kernel,
        stride=tuple(node.stride),  # type: ignore[attr-defined]
        padding=tuple(node.padding),  # type: ignore[attr-defined]
        dilation=(1,) * len(kernel),
        bits=ctx.weight_bits,
    )


neuron_layer(snn.RateMaxPool, spec=NeuronSpec(own_op=_pool))  # a max over windows, computed by neurons


# -- layers and their demand ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Connection:
    """A path from ``source`` (a neuron layer or graph input) into a layer; ``ops`` layer-side first."""

    source: str
    ops: tuple[SynapseOp, ...]
    bits: int

    def back(self, box: Box | None) -> Box | None:
        """The box of ``source`` read by the layer's neurons in ``box``."""
        for op in self.ops:
            if box is None:
                return None
            box = op.back(box)
        return box

    def memory_bits(self, box: Box | None, neurons: int) -> int:
        total, weighted = 0, False
        for op in self.ops:
            if box is None:
                break
            if op.weighted:
                total += op.memory_bits(box)
                weighted = True
            box = op.back(box)
        return total if weighted else neurons * self.bits


Demand = tuple[int, int, int, int, int]  # CORE_RESOURCES order


@dataclasses.dataclass(frozen=True)
class LayerDemand:
    """A neuron layer and the resources any box of it needs (CORE_RESOURCES order)."""

    name: str
    node: Node
    shape: Shape
    state_bytes: int
    compartments: int
    connections: tuple[Connection, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def box(self) -> Box:
        """The whole layer."""
        return full(self.shape)

    def input_axons(self, box: Box) -> int:
        return sum(volume(c.back(box)) for c in self.connections)

    @functools.cached_property
    def part_starts(self) -> frozenset[int]:
        """The first channel each convolution feeds where it feeds only some (the parts of a concatenation,
        which read different sources)."""
        starts = set()
        for connection in self.connections:  # the first op past sums and scalings sees the layer's channels
            op = next((op for op in connection.ops if not isinstance(op, PassThrough)), None)
            if isinstance(op, WindowOp) and op.channels_written is not None and op.channels_written[0] < self.shape[0]:
                starts.add(op.channels_written[0])
        return frozenset(starts)

    def probe_channels(self, first: int = 1) -> list[int]:
        """Channels whose neurons stand for the layer's: ``first`` (away from the low edge, as the partitioner
        probes) and the ``part_starts``."""
        return sorted({min(first, self.shape[0] - 1), *self.part_starts})

    def one_neuron(self, box: Box, fanout: float | np.ndarray) -> Demand:
        """The most one neuron at ``box``'s position needs of each resource, over ``box``'s channel and the
        ``probe_channels`` (neurons of a concatenation's parts read different sources)."""
        (first, _), *rest = box
        needs = [self.demand(((c, c + 1), *rest), fanout) for c in self.probe_channels(first)]
        return tuple(max(column) for column in zip(*needs, strict=True))

    def demand(self, box: Box, fanout: float | np.ndarray) -> Demand:
        """What neurons ``box`` need; ``fanout`` is destination cores per neuron, or an array of the
        layer's shape counting them per neuron (output axons: its sum over the box)."""
        k = volume(box)
        memory = sum(c.memory_bits(box, k) for c in self.connections)
        if isinstance(fanout, np.ndarray):
            out = int(fanout[tuple(slice(lo, hi) for lo, hi in box)].sum())
        else:
            out = math.ceil(k * fanout)
        return (k * self.compartments, k * self.state_bytes, memory, self.input_axons(box), out)


def layer_demands(graph: Graph, model: ResourceModel, *, weight_bits: int | None = None) -> tuple[LayerDemand, ...]:
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
        spec = neuron_spec(type(node))
        if spec is None:
            _check_placeable(graph, name)
            continue
        paths = _paths(graph, name, spec.own_op, ctx)
        layers.append(
            LayerDemand(
                name=name,
                node=node,
                shape=tuple(types[name]) or (1,),
                state_bytes=model.state_bytes(node.kind),
                compartments=spec.compartments,
                connections=tuple(Connection(src, ops, bits) for src, ops in paths),
            )
        )
    return tuple(layers)


def _is_source(graph: Graph, name: str) -> bool:
    node = graph.nodes[name]
    return node.graph_input or neuron_spec(type(node)) is not None


def _check_placeable(graph: Graph, name: str) -> None:
    node = graph.nodes[name]
    if node.graph_input or node.sink or type(node) in SYNAPSE_OPS or isinstance(node, tensor.Constant):
        return
    raise TargetError(
        f"{node.describe(name)}: kind {node.kind} has no mapping onto neuro-cores. Convert the model to an SNN "
        f"first (spikec compile / spikec.convert). Neuron kinds: {', '.join(neuron_kinds())}; "
        f"synapse kinds: {', '.join(sorted(k.kind for k in SYNAPSE_OPS))}"
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
        factory = own_op if name == layer else SYNAPSE_OPS[type(node)]
        edges = graph.in_edges(name)
        in_shapes = [types[e.src] for e in edges]
        for i, edge in enumerate(edges):
            step = ops if factory is None else (*ops, factory(name, node, in_shapes, types[name], i, ctx))
            src, src_node = edge.src, graph.nodes[edge.src]
            if _is_source(graph, src):
                found.append((src, step))
            elif isinstance(src_node, tensor.Constant):
                continue  # a constant input is a bias: no spikes, no axons
            elif src in seen:
                raise TargetError(
                    f"{graph.describe(src)}: a recurrent loop into {graph.describe(layer)} passes no neuron layer; "
                    "a loop must go through a neuron (e.g. IF) to be placed on cores"
                )
            elif type(src_node) in SYNAPSE_OPS:
                stack.append((src, step, seen | {src}))
            else:
                _check_placeable(graph, src)
        if len(found) > MAX_PATHS:
            raise TargetError(f"{graph.describe(layer)} is reached by more than {MAX_PATHS} synaptic paths")
    return found
