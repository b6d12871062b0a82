"""``fuse``: remove trivial nodes and fold scalings into the layers around them (exact).

Rewrite rules are data: ``RULES`` maps a node kind (class) to the rewrites tried on nodes of that kind, and
the pass applies them until none fires. Each rule either returns a new graph or ``None``.

- ``Identity`` / single-input ``Add``: removed (NIR's Identity, ONNX's Dropout at inference).
- ``Reshape``/``Flatten`` that keep the shape, ``Transpose`` by the identity, ``Clip(-inf, inf)``: removed.
- ``Clip(0, inf)`` → ``ReLU``; ``ReLU`` after ``ReLU``: removed.
- ``Scale`` of ones: removed. ``Scale``∘``Scale`` → one Scale. ``Scale`` after a Conv/Dense (per output
  channel) → the layer's rows; after an ``I`` → its ``r``. ``Scale`` before a Conv/Dense (per input
  channel) → the layer's columns; before an IF or I → its ``r``. A Scale in front of a pool, Flatten,
  Reshape, Transpose or Identity moves past it, so it can reach the next layer.
- ``Bias`` (the ONNX front end's ``y = x + b``) after a Conv/Dense, per output channel → the layer's bias.
- ``Reduce(mean)`` over every axis but the channels → ``AvgPool`` over the whole map (global average pooling).
- A zero ``Pad`` of values ≥ 0 (after a ReLU) before a max-pool → one max ``Pool`` with the pads added.
- A zero ``Pad`` before a ``Conv`` (TF-style "same" padding, ONNX's asymmetric pads) → the Conv's symmetric
  padding, its kernel widened by zero taps where one side was padded less.

Exact up to float rounding: every rule is an algebraic identity of the node equations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spikec.ir import ann, snn, spatial, tensor
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Node
from spikec.ir.traits import EmitsSpikes, Routing
from spikec.passes._graphedit import (
    along_axis,
    bypass,
    channel_layout,
    compact,
    fresh_name,
    output_axis,
    replace_nodes,
    scale_inputs,
    scale_outputs,
    single_consumer,
    single_input,
    swap,
    untouched_by_recurrence,
)
from spikec.pipeline import PassResult

Rule = Callable[[Graph, str], "Graph | None"]
MAX_REWRITES_PER_NODE = 8


def _removable(graph: Graph, name: str) -> bool:
    return single_input(graph, name) is not None and untouched_by_recurrence(graph, name)


def _drop_if(test: Callable[[Graph, str, Node], bool]) -> Rule:
    def rule(graph: Graph, name: str) -> Graph | None:
        return bypass(graph, name) if _removable(graph, name) and test(graph, name, graph.nodes[name]) else None

    return rule


def _same_shape(graph: Graph, name: str, node: Node) -> bool:
    src = single_input(graph, name)
    return src is not None and graph.types[src] == graph.types[name]


def _clip_is_relu(graph: Graph, name: str) -> Graph | None:
    node = graph.nodes[name]
    assert isinstance(node, ann.Clip)
    if node.min == 0.0 and node.max == np.inf:
        return replace_nodes(graph, {name: ann.ReLU(origin=node.origin)})
    return None


def _global_average_pool(graph: Graph, name: str) -> Graph | None:
    """``Reduce(mean)`` over every axis but the first of a (C, L) or (C, H, W) tensor → ``AvgPool`` over the whole
    map (+ ``Flatten`` without keepdims): the global average pool as exporters write it (``x.mean((2, 3))``)."""
    node = graph.nodes[name]
    assert isinstance(node, tensor.Reduce)
    src = single_input(graph, name)
    if node.op != "mean" or src is None:
        return None
    shape = graph.types[src]
    axes = {tensor.normalize_axis(a, len(shape)) for a in node.axes}
    if len(shape) not in (2, 3) or axes != set(range(1, len(shape))):
        return None
    pool = ann.AvgPool(kernel_size=tuple(shape[1:]), origin=node.origin)
    if node.keepdims:
        return replace_nodes(graph, {name: pool})
    pooled = fresh_name(graph, f"{name}.pool")
    edges = [e for e in graph.edges if e.dst != name] + [Edge(src, pooled), Edge(pooled, name)]
    nodes = {**graph.nodes, pooled: pool, name: ann.Flatten(origin=node.origin)}
    return Graph(nodes, edges, dt=graph.dt)


def _at_least_zero(graph: Graph, name: str) -> bool:
    """Whether ``name``'s output is ≥ 0 by construction: a ReLU or Clip(≥ 0, ·), or 0/1 spikes, through routing."""
    while True:
        node = graph.nodes[name]
        if isinstance(node, ann.ReLU) or (isinstance(node, ann.Clip) and node.min >= 0):
            return True
        spikes = node.get_trait(EmitsSpikes)
        if spikes is not None:
            return not spikes.signed(node)
        src = single_input(graph, name)
        if src is None or not node.has_trait(Routing) or isinstance(node, spatial.Pad):
            return False
        name = src


def _zero_pad_into_max_pool(graph: Graph, name: str) -> Graph | None:
    """A zero ``Pad`` of values ≥ 0 before a max-pool → one max ``Pool`` with those pads (zeros never win a max
    over values ≥ 0), as ``F.pad`` + ``MaxPool2d`` export; windows reaching wholly into padding keep the Pad."""
    pad = graph.nodes[name]
    assert isinstance(pad, spatial.Pad)
    dst, src = single_consumer(graph, name), single_input(graph, name)
    if pad.mode != "constant" or pad.value != 0.0 or dst is None or src is None or not _removable(graph, dst):
        return None
    pool, rank = graph.nodes[dst], len(pad.pads) // 2
    if isinstance(pool, ann.MaxPool):
        nd = len(pool.kernel_size)
        kernel, stride, dilation, pads, ceil = pool.kernel_size, pool.stride, (1,) * nd, (*pool.padding,) * 2, 0
    elif isinstance(pool, spatial.Pool) and pool.mode == "max":
        nd = len(pool.kernel_size)
        kernel, stride, dilation, pads, ceil = pool.kernel_size, pool.stride, pool.dilation, pool.pads, pool.ceil_mode
    else:
        return None
    if rank != nd + 1 or pad.pads[0] or pad.pads[rank] or not _at_least_zero(graph, src):
        return None
    begin = [pad.pads[1 + i] + pads[i] for i in range(nd)]
    end = [pad.pads[rank + 1 + i] + pads[nd + i] for i in range(nd)]
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if any(b >= k or e >= k for b, e, k in zip(begin, end, spans, strict=True)):
        return None
    merged = spatial.Pool(mode="max", kernel_size=tuple(kernel), stride=tuple(stride), dilation=tuple(dilation),
                          pads=(*begin, *end), ceil_mode=ceil, origin=pool.origin)  # fmt: skip
    return bypass(graph, name, {dst: merged})


def _zero_pad_into_conv(graph: Graph, name: str) -> Graph | None:
    """A zero spatial ``Pad`` (begin ``b``, end ``e`` per axis, the Conv's own ``p`` added) before a Conv → the
    Conv with symmetric padding ``P = max(b, e)`` and ``(P − b)/d`` zero taps before its kernel, ``(P − e)/d``
    after it: output ``o`` still reads ``x[o·s + k·d − b]`` and the output size is unchanged. Needs the
    widened sides to be multiples of the dilation ``d``."""
    pad = graph.nodes[name]
    assert isinstance(pad, spatial.Pad)
    dst = single_consumer(graph, name)
    if pad.mode != "constant" or pad.value != 0.0 or dst is None or not _removable(graph, dst):
        return None
    conv, rank = graph.nodes[dst], len(pad.pads) // 2
    if not isinstance(conv, ann.Conv) or rank != conv.spatial_dims + 1 or pad.pads[0] or pad.pads[rank]:
        return None
    begin = [pad.pads[1 + i] + p for i, p in enumerate(conv.padding)]
    end = [pad.pads[rank + 1 + i] + p for i, p in enumerate(conv.padding)]
    sym = [max(b, e) for b, e in zip(begin, end, strict=True)]
    widen = [(s - b, s - e) for s, b, e in zip(sym, begin, end, strict=True)]
    if any(w % d for (wb, we), d in zip(widen, conv.dilation, strict=True) for w in (wb, we)):
        return None
    taps = [(wb // d, we // d) for (wb, we), d in zip(widen, conv.dilation, strict=True)]
    weight = np.pad(np.asarray(conv.weight), [(0, 0), (0, 0), *taps])
    return bypass(graph, name, {dst: conv.replace(weight=weight, padding=tuple(sym))})


def _after_relu(graph: Graph, name: str, node: Node) -> bool:
    src = single_input(graph, name)
    return src is not None and isinstance(graph.nodes[src], ann.ReLU) and single_consumer(graph, src) == name


# -- Scale -----------------------------------------------------------------------------------------
def _scale_into_producer(graph: Graph, name: str) -> Graph | None:
    """Fold ``Scale`` into the node before it when that node feeds only the Scale."""
    src = single_input(graph, name)
    if src is None or single_consumer(graph, src) != name or not untouched_by_recurrence(graph, name):
        return None
    scale = graph.nodes[name]
    assert isinstance(scale, ann.Scale)
    producer = graph.nodes[src]
    folded: Node | None = None
    if isinstance(producer, ann.Scale):
        folded = producer.replace(scale=compact(producer.scale * scale.scale))
    elif isinstance(producer, ann.Conv | ann.Dense):
        vector = along_axis(scale.scale, graph.types[src], output_axis(producer, graph.types[src]))
        folded = None if vector is None else scale_outputs(producer, vector)
    elif isinstance(producer, snn.I):
        folded = producer.replace(r=compact(producer.r * scale.scale))
    return None if folded is None else bypass(replace_nodes(graph, {src: folded}), name)


def _scale_into_consumer(graph: Graph, name: str) -> Graph | None:
    """Fold ``Scale`` into the node after it when the Scale is that node's only input."""
    dst = single_consumer(graph, name)
    if dst is None or single_input(graph, dst) != name or not _removable(graph, name):
        return None
    scale = graph.nodes[name]
    assert isinstance(scale, ann.Scale)
    consumer = graph.nodes[dst]
    folded: Node | None = None
    in_shape = graph.types[name]
    if isinstance(consumer, ann.Conv | ann.Dense):
        axis = 0 if isinstance(consumer, ann.Conv) else len(in_shape) - 1
        vector = along_axis(scale.scale, in_shape, axis)
        folded = None if vector is None else scale_inputs(consumer, vector)
    elif isinstance(consumer, snn.IF | snn.I):
        folded = consumer.replace(r=compact(consumer.r * scale.scale))
    return None if folded is None else bypass(replace_nodes(graph, {dst: folded}), name)


def _per_channel(scale: np.ndarray, graph: Graph, name: str, dst: str) -> np.ndarray | None:
    vector = along_axis(scale, graph.types[name], 0)
    return None if vector is None else channel_layout(vector, graph.types[dst], 0)


def _reshaped(scale: np.ndarray, graph: Graph, name: str, dst: str) -> np.ndarray:
    return compact(np.broadcast_to(scale, graph.types[name]).reshape(graph.types[dst]))


def _transposed(scale: np.ndarray, graph: Graph, name: str, dst: str) -> np.ndarray:
    perm = graph.nodes[dst].perm  # type: ignore[attr-defined]
    return compact(np.transpose(np.broadcast_to(scale, graph.types[name]), perm))


def _positive_per_channel(scale: np.ndarray, graph: Graph, name: str, dst: str) -> np.ndarray | None:
    return _per_channel(scale, graph, name, dst) if np.all(scale > 0) else None


# How a Scale in front of a node of this kind looks once moved behind it (None: it cannot move). Every
# key has the ScalePassesThrough trait (tests/test_kind_traits.py).
COMMUTE: dict[type[Node], Callable[[np.ndarray, Graph, str, str], np.ndarray | None]] = {
    ann.SumPool: _per_channel,
    ann.AvgPool: _per_channel,
    ann.MaxPool: _positive_per_channel,
    ann.Flatten: _reshaped,
    ann.Reshape: _reshaped,
    ann.Transpose: _transposed,
    ann.Identity: lambda scale, graph, name, dst: compact(scale),
}


def _scale_past_consumer(graph: Graph, name: str) -> Graph | None:
    """Swap ``Scale -> op`` into ``op -> Scale`` for an op that commutes with it."""
    dst = single_consumer(graph, name)
    if dst is None or single_input(graph, dst) != name or not _removable(graph, name):
        return None
    if not untouched_by_recurrence(graph, dst):
        return None
    move = COMMUTE.get(type(graph.nodes[dst]))
    scale = graph.nodes[name]
    assert isinstance(scale, ann.Scale)
    moved = None if move is None else move(np.asarray(scale.scale, np.float64), graph, name, dst)
    if moved is None:
        return None
    return swap(graph, name, dst, {name: scale.replace(scale=moved)})


def _bias_into_producer(graph: Graph, name: str) -> Graph | None:
    """The ONNX front end's ``Bias`` (y = x + b) after a Conv/Dense, constant per output channel."""
    src = single_input(graph, name)
    if src is None or single_consumer(graph, src) != name or not untouched_by_recurrence(graph, name):
        return None
    producer = graph.nodes[src]
    if not isinstance(producer, ann.Conv | ann.Dense):
        return None
    shape = graph.types[src]
    vector = along_axis(np.asarray(graph.nodes[name].bias), shape, output_axis(producer, shape))  # type: ignore[attr-defined]
    if vector is None:
        return None
    n_out = producer.weight.shape[0]
    bias = np.broadcast_to(vector, (n_out,)) + (0.0 if producer.bias is None else producer.bias)
    return bypass(graph, name, {src: producer.replace(bias=bias)})


def _is_ones(graph: Graph, name: str, node: Node) -> bool:
    return bool(np.all(np.asarray(node.scale) == 1))  # type: ignore[attr-defined]


RULES: dict[type[Node], tuple[Rule, ...]] = {
    ann.Identity: (_drop_if(lambda g, n, node: True),),
    ann.Add: (_drop_if(lambda g, n, node: True),),
    ann.Reshape: (_drop_if(_same_shape),),
    ann.Flatten: (_drop_if(_same_shape),),
    ann.Transpose: (_drop_if(lambda g, n, node: tuple(node.perm) == tuple(range(len(node.perm)))),),  # type: ignore[attr-defined]
    ann.Clip: (_drop_if(lambda g, n, node: node.min == -np.inf and node.max == np.inf), _clip_is_relu),  # type: ignore[attr-defined]
    ann.ReLU: (_drop_if(_after_relu),),
    ann.Scale: (_drop_if(_is_ones), _scale_into_producer, _scale_into_consumer, _scale_past_consumer),
    tensor.Bias: (_bias_into_producer,),
    tensor.Reduce: (_global_average_pool,),
    spatial.Pad: (_zero_pad_into_max_pool, _zero_pad_into_conv),
}


def fold_scale(graph: Graph, name: str) -> Graph:
    """Apply the Scale rules to Scale node ``name`` alone until it is folded away or stuck."""
    for _ in range(MAX_REWRITES_PER_NODE * max(len(graph.nodes), 1)):
        if name not in graph.nodes:
            return graph
        rewritten = next((g for rule in RULES[ann.Scale] if (g := rule(graph, name)) is not None), None)
        if rewritten is None:
            return graph
        graph = rewritten
    return graph


def fuse_graph(graph: Graph) -> tuple[Graph, bool]:
    """Apply ``RULES`` until none fires (bounded), returning the graph and whether anything changed."""
    changed = False
    for _ in range(MAX_REWRITES_PER_NODE * max(len(graph.nodes), 1)):
        for name in graph.order:
            rewritten = next(
                (g for rule in RULES.get(type(graph.nodes[name]), ()) if (g := rule(graph, name)) is not None), None
            )
            if rewritten is not None:
                graph, changed = rewritten, True
                break
        else:
            return graph, changed
    return graph, changed


def fuse(graph: Graph) -> PassResult:
    """Remove identities and fold Scale/Bias into neighbouring layers and neurons; exact."""
    fused, changed = fuse_graph(graph)
    return PassResult(fused, changed)
