r"""Shared parts: a linear value that several neuron layers read channel by channel is computed once.

A DenseNet part :math:`y = W \star s` (a 3×3 conv of a layer's spikes, or a transition's 1×1 conv + average
pool: no neuron between, so a linear value) is concatenated and read by every later layer of its block through
that layer's BatchNorm (a per-channel scale :math:`a_j`) and ReLU. Composed into each reader's synapses
(layer.py), every reader computes the conv again from the source's spikes: 128·3·3 = 1,152 input axons per
neuron and part, the axons that bound DenseNet-121's tiles. Reading on arrival, a value that two or more neuron
layers read through channel-by-channel nodes only (Concat, per-channel scales and biases) is computed once:

.. code-block:: text

    s ── part (LoihiConv, m = snap(k_c·W_c), e = 0) ── relay (LoihiGradedVec, vth 0) ─┬─ read_j (LoihiConv 1×1,
                                                                                       │  a_j/k_c, graded, e_j) ── N_j
                                                                                       └─ ...

The relay sends the conv's integer sums :math:`p_c = m_c \star s` as graded spikes (24-bit payload), and each
reader's synapse takes one relay channel per output channel at full mantissa width, shifted by its weight
exponent (``LoihiConv.weight_exp``: Lava's ``Sparse`` over the conv's connectivity). Per output channel c the
scale is :math:`k_c = \min(\mathrm{fits}(W_c),\ P / \sum |W_c|\,x_{max})`: the weight grid's full range, with the
largest payload at most :math:`P = 2^{17} - 1`, so that a reader's 8-bit mantissa times it, shifted by
:math:`2^{-8}`, stays within the :math:`2^{17}` a neuron's u takes per step (layer.py's bounds). The part's value is
then :math:`y_c = p_c / k_c` (+ its bias, which the readers add).

The relay adds one step to the part's latency. With ``align=exact`` parts stay composed into their readers: each
reader would need the relay's graded spikes delayed by a different number of steps, and Lava's ``DelaySparse``
takes binary spikes only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from spikec.ir import Graph, ann, spatial, tensor
from spikec.ir.node import Node
from spikec.targets.loihi2.dialect import LoihiConv
from spikec.targets.loihi2.layer import Lowering, realize, weight_grid
from spikec.targets.loihi2.linear import ConvMap
from spikec.targets.loihi2.neurons import NEURONS
from spikec.targets.loihi2.relay import GRADED_BITS, LoihiGradedVec
from spikec.targets.loihi2.signals import Affine, Signal, Term

PAYLOAD_MAX = (1 << 17) - 1  # the largest |p| a part's relay sends (module docstring)


def _per_channel_scale(node: Node, shape: tuple[int, ...]) -> bool:
    s = np.broadcast_to(np.asarray(node.scale, np.float64), shape).reshape(shape[0], -1)  # type: ignore[attr-defined]
    return bool(np.all(s == s[:, :1]))


def _depthwise_pointwise(node: Node, shape: tuple[int, ...]) -> bool:
    """A folded BatchNorm: a depthwise 1×1 conv, stride 1, no padding."""
    w = np.asarray(node.weight)  # type: ignore[attr-defined]
    pointwise = all(s == 1 for s in node.stride) and not any(node.padding)  # type: ignore[attr-defined]
    return w.shape[1:] == (1, 1, 1) and node.groups == w.shape[0] == shape[0] and pointwise  # type: ignore[attr-defined]


# kinds that map channel c of a (C, H, W) input to channel c of their output alone (a Concat moves it), when they do
CHANNELWISE: dict[type[Node], Callable[[Node, tuple[int, ...]], bool]] = {
    ann.Concat: lambda node, shape: node.axis in (0, -3),  # type: ignore[attr-defined]
    ann.Identity: lambda node, shape: True,
    tensor.Bias: lambda node, shape: True,
    ann.Scale: _per_channel_scale,
    ann.Conv: _depthwise_pointwise,
}


def _channelwise(node: Node, shape: tuple[int, ...]) -> bool:
    rule = CHANNELWISE.get(type(node))
    return rule is not None and rule(node, shape)


def _readers(graph: Graph, name: str) -> set[str] | None:
    """The neuron layers that read ``name``'s value through channel-by-channel nodes, or None when another node
    reads it (its channels mixed, pooled, reshaped or output)."""
    readers: set[str] = set()
    todo = [name]
    while todo:
        for edge in graph.out_edges(todo.pop()):
            node = graph.nodes[edge.dst]
            if type(node) in NEURONS:
                readers.add(edge.dst)
            elif len(graph.types[edge.dst]) == 3 and _channelwise(node, graph.types[edge.dst]):
                todo.append(edge.dst)
            else:
                return None
    return readers


def shared_parts(graph: Graph) -> dict[str, int]:
    """Convolutions and average pools (not themselves channel by channel) whose (C, H, W) value two or more neuron
    layers read channel by channel (DenseNet's concatenated parts), with how many layers read each."""
    shared = {}
    for name in graph.order:
        node, shape = graph.nodes[name], graph.types[name]
        wide = isinstance(node, ann.Conv | ann.SumPool | ann.AvgPool | spatial.Pool)
        if not wide or len(shape) != 3 or _channelwise(node, shape) or getattr(node, "mode", "") == "max":
            continue
        readers = _readers(graph, name)
        if readers is not None and len(readers) >= 2:
            shared[name] = len(readers)
    return shared


def _scales(weights: list[np.ndarray], sources: list[Signal], grid_fits: list[float]) -> np.ndarray:
    """k_c per output channel (module docstring); 0 for a channel no weight feeds."""
    channels = weights[0].shape[0]
    reach = sum(np.abs(w).reshape(channels, -1).sum(axis=1) * s.max_abs for w, s in zip(weights, sources, strict=True))
    fits = np.asarray(grid_fits)
    k = np.minimum(fits, PAYLOAD_MAX / np.where(reach > 0, reach, 1.0))
    return np.where(reach > 0, k, 0.0)


def relay_part(low: Lowering, name: str, value: Affine) -> Affine:
    """Lower the shared part ``name`` (value ``value``) to its conv + GradedVec relay; its value for the readers."""
    shape = low.graph.types[name]
    synapses = realize(Affine(value.shape, value.terms), shape, lambda why: low.fail(name, why))
    channels = shape[0]
    rows = np.concatenate([s.weight.reshape(channels, -1) for s in synapses], axis=1)
    grid, _ = weight_grid(low, name, rows)
    k = _scales([s.weight for s in synapses], [s.source for s in synapses], [grid.fits(r) for r in rows])
    origin = low.graph.nodes[name].origin
    names, reach = [], np.zeros(channels)
    for syn in synapses:
        assert syn.geometry is not None  # a (C, H, W) value: realize gave convolutions
        g = syn.geometry
        mantissa = grid.snap(syn.weight * k.reshape(-1, 1, 1, 1)).astype(np.int64)
        reach += np.abs(mantissa).reshape(channels, -1).sum(axis=1) * syn.source.max_abs
        conv = LoihiConv(weight=mantissa, stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups,
                         num_message_bits=syn.source.message_bits, origin=origin)  # fmt: skip
        label = f"{name}.part" if len(synapses) == 1 else f"{name}.part.{syn.source.name}"
        names.append(low.emit(label, conv, syn.source.name))
    if np.max(reach) > PAYLOAD_MAX * 1.01:  # pragma: no cover - rounding adds at most half a step per weight
        raise low.fail(name, f"relays sums up to {np.max(reach):.0f}, more than {PAYLOAD_MAX}")
    relay = low.emit(name, LoihiGradedVec(vth=np.asarray(0), origin=origin), None)
    low.edges += [(n, relay) for n in names]
    sources = [s.source for s in synapses]
    latency, early = max(s.latency for s in sources) + 1, any(s.early for s in sources)
    signal = Signal(relay, tuple(shape), float(max(np.max(reach), 1.0)), GRADED_BITS, latency, early, shared=True)
    low.shared_neurons += math.prod(shape)
    low.layers.append({
        "name": name, "kind": low.graph.nodes[name].kind, "shared_part": True,
        "readers": low.shared[name],
        "lowered": "shared part: conv + GradedVec relay (graded spikes), read channel by channel",
        "payload_max": int(np.max(reach)),
    })  # fmt: skip
    per_unit = np.where(k > 0, 1.0 / np.where(k > 0, k, 1.0), 0.0).reshape(channels, 1, 1, 1)
    read = ConvMap(per_unit, (channels, shape[1], shape[2]), groups=channels)
    return Affine(value.shape, (Term(signal, read),), value.bias)
