"""``fold-batchnorm``: merge inference BatchNorm into the Conv or Dense before it (exact).

``BN(x) = a·x + c`` per channel with ``a = γ/√(σ² + ε)`` and ``c = β − μ·a``. After a Conv (or a Dense
with a 1-D output) that feeds only the BatchNorm, the layer's rows are scaled by ``a`` and its bias
becomes ``a·b + c``. The same holds for PyTorch's BatchNorm1d over the channels of tokens,
``Dense → Transpose(p) → BatchNorm → Transpose(p⁻¹)`` with ``p[0]`` the Dense's channel (last) axis:
the three nodes go and the Dense takes the affine map. Any other BatchNorm becomes the same affine map
as a layer of its own: a depthwise 1×1 Conv (groups = channels) on (C, *spatial) inputs, a diagonal
Dense on (C,) inputs, so no BatchNorm is left for the spiking passes. Exact up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spikec.ir import ann, norm
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Node, Shape
from spikec.passes._graphedit import (
    bypass,
    replace_nodes,
    scale_outputs,
    single_consumer,
    single_input,
    untouched_by_recurrence,
)
from spikec.pipeline import PassResult


def _affine(bn: norm.BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(bn.weight, np.float64) / np.sqrt(np.asarray(bn.var, np.float64) + bn.eps)
    return a, np.asarray(bn.bias, np.float64) - np.asarray(bn.mean, np.float64) * a


def _into_layer(graph: Graph, name: str, bn: norm.BatchNorm) -> Graph | None:
    src = single_input(graph, name)
    if src is None or single_consumer(graph, src) != name:
        return None
    layer = graph.nodes[src]
    if not (isinstance(layer, ann.Conv) or (isinstance(layer, ann.Dense) and len(graph.types[src]) == 1)):
        return None
    a, c = _affine(bn)
    scaled = scale_outputs(layer, a)
    bias = c if scaled.bias is None else scaled.bias + c
    folded = scaled.replace(bias=bias, origin=layer.origin or bn.origin)
    return bypass(replace_nodes(graph, {src: folded}), name)


def _between_transposes(graph: Graph, name: str, bn: norm.BatchNorm) -> Graph | None:
    """Dense → Transpose(p) → BN → Transpose(p⁻¹): the BN normalises the Dense's output channels."""
    before, after = single_input(graph, name), single_consumer(graph, name)
    if before is None or after is None or single_consumer(graph, before) != name:
        return None
    t1, t2 = graph.nodes[before], graph.nodes[after]
    if not (isinstance(t1, ann.Transpose) and isinstance(t2, ann.Transpose)):
        return None
    if not all(untouched_by_recurrence(graph, n) for n in (before, name, after)):
        return None
    perm = t1.perm
    if perm[0] != len(perm) - 1 or tuple(perm[i] for i in t2.perm) != tuple(range(len(perm))):
        return None
    src = single_input(graph, before)
    if src is None or single_consumer(graph, src) != before or not isinstance(graph.nodes[src], ann.Dense):
        return None
    layer = graph.nodes[src]
    assert isinstance(layer, ann.Dense)
    a, c = _affine(bn)
    scaled = scale_outputs(layer, a)
    folded = scaled.replace(bias=c if scaled.bias is None else scaled.bias + c, origin=layer.origin or bn.origin)
    gone = {before, name, after}
    edges = [Edge(src, e.dst, e.recurrent) if e.src == after else e for e in graph.edges if e.dst not in gone]
    nodes = {k: folded if k == src else v for k, v in graph.nodes.items() if k not in gone}
    return Graph(nodes, edges, dt=graph.dt)


def _depthwise(bn: norm.BatchNorm, shape: Shape) -> Node | None:
    a, c = _affine(bn)
    channels = shape[0]
    if len(shape) == 1:
        return ann.Dense(weight=np.diag(a), bias=c, origin=bn.origin)
    if len(shape) in (2, 3):
        weight = a.reshape((channels, 1) + (1,) * (len(shape) - 1))
        return ann.Conv(weight=weight, bias=c, groups=channels, origin=bn.origin)
    return None


def _standalone(graph: Graph, name: str, bn: norm.BatchNorm) -> Graph | None:
    layer = _depthwise(bn, graph.types[name])
    return None if layer is None else replace_nodes(graph, {name: layer})


STRATEGIES: tuple[Callable[[Graph, str, norm.BatchNorm], Graph | None], ...] = (
    _into_layer,
    _between_transposes,
    _standalone,
)


def fold_batchnorm(graph: Graph) -> PassResult:
    """Fold BatchNorm into the preceding Conv/Dense (else into a depthwise layer of its own); exact."""
    changed = False
    for name in [n for n, node in graph.nodes.items() if isinstance(node, norm.BatchNorm)]:
        bn = graph.nodes[name]
        assert isinstance(bn, norm.BatchNorm)
        for strategy in STRATEGIES:
            rewritten = strategy(graph, name, bn)
            if rewritten is not None:
                graph, changed = rewritten, True
                break
    return PassResult(graph, changed)
