"""``threshold-balance``: data-based normalisation of an ANN so that every ReLU's calibration scale is 1.

After this pass, a ReLU's output of 1 stands for λ, the scale of its activations on the calibration
set (the ``percentile`` of its positive values, or the maximum), so ``relu-to-if`` can put every IF
threshold at 1: a neuron firing every step carries λ. The ANN itself is unchanged up to rounding:
weights and biases are divided by the scale of their output and multiplied by that of their input
(ReLU, pools, Flatten, ... are positively homogeneous), and the graph's outputs come back at scale 1.

**Shared scales.** A node with several inputs (a residual ``Add``, a ``Concat``, any summing node)
must see them at one common scale, so scales are grouped: the nodes whose outputs meet are merged
(union-find), and a group holding several ReLUs uses the largest of their λ (elementwise per
channel; one number when their channel counts differ). A ReLU whose input arrives at another scale
than its own (e.g. ``relu(conv(x) + x)`` in a residual block) gets a ``Scale`` in front, which
``fuse`` folds into the IF's ``r`` after ``relu-to-if``. With ``outputs=true`` the graph outputs are
balanced too (to the percentile of ``|y|``) behind a ``Scale`` that restores them, for a spiking readout.

Scales pass through the kinds with the ``ScalePassesThrough`` trait (``TRANSFER`` lays them out): pools,
reshapes, a zero (or edge, reflect, wrap) ``Pad``, ``Slice`` and ``Gather`` by constant indices route values,
so each output entry keeps the scale of the input entry it copies.

**Clipped ReLU** ``Clip(0, c)`` (ReLU6) is balanced like a ReLU, its λ measured on its clipped output (so
λ ≤ c) and one number per layer: ``clip(x, 0, c)/λ = clip(x/λ, 0, c/λ)`` with ``c/λ ≥ 1``. ``relu-to-if``
makes it an IF of threshold 1, whose rate saturates at one spike per step (= λ ≤ c): the clip is the
IF's own ceiling.

A graph with kinds no scale passes through (Softmax, LayerNorm, products of activations, ...) is refused
with every such node named by kind (``ScaleBlocked``), not just the first.

**Products of activations** (``PRODUCTS``: ``SpikingSelfAttention``, Y = Q Kᵀ V s) start
a group like a layer, without joining their inputs: with Q, K, V at scales σ_q, σ_k, σ_v and the
output wanted at σ_y (that of the ReLU it feeds), s' = s·σ_q·σ_k·σ_v / σ_y (one scale per
operand: ``granularity=layer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from spikec.errors import PassError
from spikec.ir import ann, attention, norm, spatial, structure, tensor
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Node, Shape
from spikec.ir.traits import ScalePassesThrough
from spikec.passes._calibration import Progress, activation_scales, check_options
from spikec.passes._graphedit import (
    along_axis,
    channel_layout,
    compact,
    fresh_name,
    insert_before,
    insert_on_edge,
    output_axis,
    replace_nodes,
    scale_inputs,
    scale_outputs,
)
from spikec.pipeline import PassResult


@dataclasses.dataclass(frozen=True)
class LayerScale:
    """What balancing chose for one ReLU (or, with ``outputs=true``, one graph output)."""

    name: str
    origin: str
    kind: str
    activation_scale: np.ndarray  # λ measured on the calibration set (0-d, or one per channel)
    scale: np.ndarray  # the scale its group uses (≥ λ): the ANN value one spike per step stands for
    shared_with: tuple[str, ...]  # other nodes of its group


@dataclasses.dataclass(frozen=True)
class BalanceResult(PassResult):
    layers: tuple[LayerScale, ...] = ()


Transfer = Callable[[list[np.ndarray], Graph, str], np.ndarray]  # input scales -> output scale


def _same(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    return sigmas[0]  # summed inputs share one scale (_balance makes sure)


def _reshaped(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    (edge,) = graph.in_edges(name)
    return compact(np.broadcast_to(sigmas[0], graph.types[edge.src]).reshape(graph.types[name]))


def _transposed(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    (edge,) = graph.in_edges(name)
    perm = graph.nodes[name].perm  # type: ignore[attr-defined]
    return compact(np.transpose(np.broadcast_to(sigmas[0], graph.types[edge.src]), perm))


def _full_input_scale(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    (edge,) = graph.in_edges(name)
    return np.broadcast_to(sigmas[0], graph.types[edge.src])


def _padded(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    """Padding keeps every entry's scale; a constant (zero) border takes its neighbour's, edge/reflect/wrap copy it."""
    node: spatial.Pad = graph.nodes[name]  # type: ignore[assignment]
    rank = len(node.pads) // 2
    widths = list(zip(node.pads[:rank], node.pads[rank:], strict=True))
    full = _full_input_scale(sigmas, graph, name)
    mode = {"constant": "edge", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}[node.mode]
    return compact(np.pad(full, widths, mode=mode))  # type: ignore[call-overload]


def _sliced(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    node: tensor.Slice = graph.nodes[name]  # type: ignore[assignment]
    picked = _full_input_scale(sigmas, graph, name)
    for axis, kept in node.ranges(picked.shape).items():  # axes are independent: one at a time
        picked = np.take(picked, np.asarray(kept, np.int64), axis=axis)
    return compact(picked)


def _gathered(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    node: tensor.Gather = graph.nodes[name]  # type: ignore[assignment]
    full = _full_input_scale(sigmas, graph, name)
    return compact(np.take(full, node.indices, axis=tensor.normalize_axis(node.axis, full.ndim)))


def _concatenated(sigmas: list[np.ndarray], graph: Graph, name: str) -> np.ndarray:
    shape = graph.types[name]
    axis = graph.nodes[name].axis % len(shape)  # type: ignore[attr-defined]
    parts = [np.broadcast_to(s, graph.types[e.src]) for s, e in zip(sigmas, graph.in_edges(name), strict=True)]
    return compact(np.concatenate(parts, axis=axis))


# How the scale is laid out past each kind a scale passes through (its ScalePassesThrough trait): one entry
# per such kind (tests/test_kind_traits.py checks both ways).
TRANSFER: dict[type[Node], Transfer] = {
    ann.Identity: _same,
    ann.Add: _same,
    structure.Output: _same,
    ann.Scale: _same,
    ann.SumPool: _same,
    ann.AvgPool: _same,
    ann.MaxPool: _same,
    spatial.Pool: _same,
    spatial.Pad: _padded,
    tensor.Slice: _sliced,
    tensor.Gather: _gathered,
    ann.Flatten: _reshaped,
    ann.Reshape: _reshaped,
    ann.Transpose: _transposed,
    ann.Concat: _concatenated,
}
LINEAR = (ann.Conv, ann.Dense)  # the layers whose weights this pass rescales


def _rescale_attention(node: Node, sigmas: list[np.ndarray], sigma_out: np.ndarray, where: str) -> Node:
    """``SpikingSelfAttention`` on operands at scales σ_q, σ_k, σ_v, output at σ_y: s' = s σ_q σ_k σ_v / σ_y."""
    values = [np.unique(np.asarray(s)) for s in (*sigmas, sigma_out)]
    if any(v.size != 1 for v in values):
        raise PassError(f"{where}: an attention product needs one scale per operand; use granularity=layer")
    q, k, v, y = (float(v[0]) for v in values)
    return dataclasses.replace(node, scale=node.scale * q * k * v / y)  # type: ignore[attr-defined,call-arg]


# Products of activations (their Product trait) this pass rescales: how, per kind.
PRODUCTS: dict[type[Node], Callable[[Node, list[np.ndarray], np.ndarray, str], Node]] = {
    attention.SpikingSelfAttention: _rescale_attention,
}
HINTS: dict[type[Node], str] = {
    norm.BatchNorm: "run fold-batchnorm first",
    ann.Clip: "only Clip(0, c), a clipped ReLU, becomes a neuron",
}
TAKES = "Conv, Dense, ReLU and clipped ReLU (Clip(0, c)), pools, zero pads, slices, gathers and reshapes"


def is_activation(node: Node) -> bool:
    """A ReLU or a clipped ReLU ``Clip(0, c)`` (ReLU6): the nodes balanced to scale 1 that become IF neurons."""
    return isinstance(node, ann.ReLU) or (isinstance(node, ann.Clip) and node.min == 0.0 and node.max > 0.0)


class ScaleBlocked(PassError):
    """Nodes no activation scale can pass through; ``blocked`` names them in graph order, in ``graph``."""

    def __init__(self, message: str, graph: Graph, blocked: tuple[str, ...]) -> None:
        super().__init__(message)
        self.graph, self.blocked = graph, blocked


def _passes_scale(node: Node) -> bool:
    trait = node.get_trait(ScalePassesThrough)
    return trait is not None and trait.holds(node)


def blocked_kinds(graph: Graph, blocked: Sequence[str], hint: Callable[[Node], str | None]) -> str:
    """Every blocking node by kind: ``Kind xN (the first three with their origin; hint(node))``, joined by ``; ``."""
    by_kind: dict[str, list[str]] = {}
    for name in blocked:
        by_kind.setdefault(graph.nodes[name].kind, []).append(name)
    parts = []
    for kind, names in by_kind.items():
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        shown = ", ".join(graph.describe(n) for n in names[:3]) + more
        note = hint(graph.nodes[names[0]])
        parts.append(f"{kind} x{len(names)} ({shown}{'; ' + note if note else ''})")
    return "; ".join(parts)


def blocked_message(graph: Graph, blocked: Sequence[str]) -> str:
    """One line naming every blocking node by kind (the first three of each kind with their origin)."""
    kinds = blocked_kinds(graph, blocked, lambda node: HINTS.get(type(node)))
    return f"cannot carry an activation scale through {kinds}: threshold-balance takes ANN graphs of {TAKES}"


class _Groups:
    """Union-find over the nodes whose outputs must share one scale."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, name: str) -> str:
        self.parent[name] = name
        return name

    def find(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, names: list[str]) -> str:
        roots = [self.find(n) for n in names]
        for r in roots[1:]:
            self.parent[r] = roots[0]
        return roots[0]


def _group(graph: Graph) -> tuple[_Groups, dict[str, str], dict[str, str]]:
    """Group of each node's output, and (for ReLUs and Outputs) the group of their summed input."""
    groups = _Groups()
    out_group: dict[str, str] = {}
    in_group: dict[str, str] = {}
    blocked: list[str] = []
    for name in graph.order:
        node = graph.nodes[name]
        srcs = [e.src for e in graph.in_edges(name)]
        if any(e.recurrent for e in graph.in_edges(name)):
            raise PassError(f"{graph.describe(name)} has a recurrent input: threshold-balance takes feed-forward ANNs")
        joined = groups.union([out_group[s] for s in srcs]) if srcs and type(node) not in PRODUCTS else None
        if is_activation(node) or isinstance(node, LINEAR) or type(node) in PRODUCTS or node.graph_input or not srcs:
            out_group[name] = groups.add(name)
            if joined is not None:
                in_group[name] = joined
        elif _passes_scale(node):
            assert joined is not None
            out_group[name] = in_group[name] = joined
        else:  # carry on as if it passed the scale, to name every blocking node at once
            blocked.append(name)
            out_group[name] = in_group[name] = joined if joined is not None else groups.add(name)
    if blocked:
        raise ScaleBlocked(blocked_message(graph, blocked), graph, tuple(blocked))
    return groups, out_group, in_group


def _combine(scales: list[np.ndarray]) -> np.ndarray:
    shapes = {s.shape for s in scales}
    if len(shapes) == 1:
        return compact(np.max(np.stack(scales), axis=0))
    return np.asarray(max(float(np.max(s)) for s in scales))


def _channels_ok(graph: Graph, members: list[str], sigma: np.ndarray) -> bool:
    """Whether a per-channel scale (axis 0) fits every member's output channels."""
    if sigma.ndim == 0:
        return True
    for m in members:
        node, shape = graph.nodes[m], graph.types[m]
        if not shape or shape[0] != sigma.shape[0]:
            return False
        if isinstance(node, LINEAR) and output_axis(node, shape) != 0:
            return False
    return True


def _group_scales(
    graph: Graph, groups: _Groups, out_group: dict[str, str], in_group: dict[str, str], lam: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    members: dict[str, list[str]] = {}
    for name in out_group:
        node = graph.nodes[name]
        if is_activation(node) or isinstance(node, LINEAR) or type(node) in PRODUCTS or node.graph_input:
            members.setdefault(groups.find(name), []).append(name)
    sigma: dict[str, np.ndarray] = {}
    for root, names in members.items():
        relus = [n for n in names if is_activation(graph.nodes[n])]
        sources = [n for n in names if graph.nodes[n].graph_input]
        if sources and relus:
            raise PassError(
                f"graph input '{sources[0]}' meets the output of ReLU '{relus[0]}' at one node: a spiking layer "
                "and an analog input cannot share a scale; put a layer between them"
            )
        if sources:
            sigma[root] = np.asarray(1.0)  # graph inputs are fixed at the ANN's own scale
        elif relus:
            sigma[root] = _combine([lam[r] for r in relus])
            clipped = any(isinstance(graph.nodes[r], ann.Clip) for r in relus)  # Clip's bound is one number
            if clipped or not _channels_ok(graph, names, sigma[root]):
                sigma[root] = np.asarray(float(np.max(sigma[root])))
    # Groups of pre-activations take the scale of the ReLU they feed (so its threshold is 1), or that
    # of the output they feed (1, or the output's λ when balancing outputs).
    for name in graph.order:
        target = groups.find(in_group[name]) if name in in_group else None
        if target is None or target in sigma or not (is_activation(graph.nodes[name]) or name in lam):
            continue
        wanted = sigma[groups.find(name)] if is_activation(graph.nodes[name]) else lam[name]
        sigma[target] = wanted if _channels_ok(graph, members.get(target, []), wanted) else np.asarray(wanted.max())
    return {root: sigma.get(root, np.asarray(1.0)) for root in members}


def _layout(sigma: np.ndarray, graph: Graph, name: str) -> np.ndarray:
    node, shape = graph.nodes[name], graph.types[name]
    axis = output_axis(node, shape) if isinstance(node, LINEAR) else 0
    return channel_layout(sigma, shape, axis)


def _balance(
    graph: Graph, lam: dict[str, np.ndarray], grouping: tuple[_Groups, dict[str, str], dict[str, str]]
) -> tuple[Graph, dict[str, np.ndarray], dict[str, str]]:
    """The balanced graph, the scale of each node in ``lam`` and its group (root name)."""
    groups, out_group, in_group = grouping
    group_sigma = _group_scales(graph, groups, out_group, in_group, lam)
    sigma: dict[str, np.ndarray] = {}  # scale of every node's output, broadcastable to its shape
    changes: dict[str, Node] = {}
    inserts: list[tuple[str, Edge | None, np.ndarray]] = []  # (node, edge or None for 'before node', factor)
    for name in graph.order:
        node, edges = graph.nodes[name], graph.in_edges(name)
        ins = [sigma[e.src] for e in edges]
        for e, s in zip(edges[1:], ins[1:], strict=True):  # summed inputs must share one scale
            if isinstance(node, ann.Concat) or type(node) in PRODUCTS:
                break  # joined or multiplied, not summed: each part keeps its own scale
            factor = np.broadcast_to(s, graph.types[e.src]) / np.broadcast_to(ins[0], graph.types[e.src])
            if not np.allclose(factor, 1.0, rtol=1e-12, atol=0.0):
                inserts.append((name, e, compact(factor)))
        if node.graph_input or not edges:
            sigma[name] = np.asarray(1.0)
        elif type(node) in PRODUCTS:
            sigma[name] = _layout(group_sigma[groups.find(name)], graph, name)
            changes[name] = PRODUCTS[type(node)](node, ins, sigma[name], graph.describe(name))
        elif is_activation(node) or isinstance(node, LINEAR):
            sigma[name] = _layout(group_sigma[groups.find(name)], graph, name)
            changes.update(_rescale(graph, name, ins[0], sigma[name]))
            if isinstance(node, ann.Clip):  # clip(x, 0, c)/σ = clip(x/σ, 0, c/σ): σ is one number here
                changes[name] = node.replace(max=node.max / float(np.max(sigma[name])))
            if is_activation(node) and not np.allclose(ins[0], sigma[name], rtol=1e-12, atol=0.0):
                inserts.append((name, None, compact(ins[0] / sigma[name])))
        else:
            sigma[name] = TRANSFER[type(node)](ins, graph, name)
            if node.sink and not np.allclose(sigma[name], 1.0, rtol=1e-12, atol=0.0):
                inserts.append((name, None, sigma[name]))
    graph = replace_nodes(graph, changes)
    for name, edge, factor in inserts:
        scale = ann.Scale(scale=factor, origin=graph.nodes[name].origin)
        new = fresh_name(graph, f"{name}.rescale")
        graph = insert_before(graph, name, new, scale) if edge is None else insert_on_edge(graph, edge, new, scale)
    roots = {n: groups.find(out_group[n]) for n in lam}
    return graph, {n: group_sigma[r] for n, r in roots.items()}, roots


def _rescale(graph: Graph, name: str, sigma_in: np.ndarray, sigma_out: np.ndarray) -> dict[str, Node]:
    node = graph.nodes[name]
    if not isinstance(node, LINEAR):
        return {}
    src = graph.in_edges(name)[0].src
    in_shape: Shape = graph.types[src]
    axis = 0 if isinstance(node, ann.Conv) else len(in_shape) - 1
    vector_in = along_axis(sigma_in, in_shape, axis)
    vector_out = along_axis(sigma_out, graph.types[name], output_axis(node, graph.types[name]))
    if vector_in is None or vector_out is None:
        raise PassError(f"{graph.describe(name)}: its input scale varies within a channel; cannot fold it into weights")
    return {name: scale_outputs(scale_inputs(node, vector_in), 1.0 / vector_out)}


def threshold_balance(
    graph: Graph,
    *,
    calib: np.ndarray | None = None,
    method: str = "percentile",
    percentile: float = 99.9,
    granularity: str = "layer",
    outputs: bool = False,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> BalanceResult:
    """Normalise each ReLU to its calibration scale (method=max|percentile, granularity=layer|channel); exact ANN."""
    check_options(method, percentile, granularity)
    if calib is None:
        raise PassError(
            "threshold-balance needs a calibration set: run spikec compile --calib X.npy, or give calib=array "
            "from Python (spikec.convert.convert)"
        )
    grouping = _group(graph)  # rejects graphs it cannot balance before any calibration work
    relus = [n for n, node in graph.nodes.items() if is_activation(node)]
    sinks = list(graph.outputs) if outputs else []
    lam = activation_scales(
        graph,
        calib,
        relus + sinks,
        method=method,
        percentile=percentile,
        granularity=granularity,
        signed=sinks,
        batch_size=batch_size,
        progress=progress,
    )
    balanced, used, roots = _balance(graph, lam, grouping)
    layers = []
    for name in relus + sinks:
        node = graph.nodes[name]
        shared = tuple(r for r in relus if r != name and roots[r] == roots[name])
        layers.append(LayerScale(name, node.origin, node.kind, lam[name], used[name], shared))
    return BalanceResult(balanced, True, tuple(layers))
