r"""``fuse-spiking-attention``: the import's MatMul·MatMul of spike tensors → one ``SpikingSelfAttention``.

A Spikformer-style attention written in PyTorch (``(q @ k.transpose(-2, -1)) @ v * s`` per head,
no softmax) reaches spikec from ONNX as plumbing and two activation products::

    q (N, D) -> Reshape (N, h, d_h) -> Transpose (h, N, d_h) ─┐
    k (N, D) -> Reshape -> Transpose (h, d_h, N) ─────────────┴─ MatMul (h, N, N) ─┐
    v (N, D) -> Reshape -> Transpose (h, N, d_h) ──────────────────────────────────┴─ MatMul (h, N, d_h)
          -> Scale s -> Transpose (N, h, d_h) -> Reshape (N, D)

This pass recognises that subgraph by what it computes, not by its exact op sequence: each operand's
chain of Reshape/Flatten/Transpose is replayed on an index array and must move entries exactly as the
head split :math:`Q_h = Q[:, h d_h:(h+1) d_h]` (for K: its transpose), and the output chain exactly as
the head merge; scalar ``Scale`` nodes anywhere on the chains multiply into s. One head needs no
plumbing: ``q (N, D) @ Transpose(k) @ v``. The whole subgraph becomes

.. math:: Y = \mathrm{Concat}_h\big(Q_h K_h^\top V_h\big) \cdot s

(``SpikingSelfAttention(heads=h, scale=s)``, named after the node whose output it replaces, origin of
the second MatMul). Exact up to float rounding (the same sums in another order). Intermediate nodes
must feed only the pattern; a product whose chains do not match is left alone. Non-negativity of Q, K,
V is not required here; ``check-spikes`` decides whether the result reads spikes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from spikec.ir import ann
from spikec.ir.attention import SpikingSelfAttention
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Node
from spikec.ir.tensor import MatMul
from spikec.passes._graphedit import single_consumer, single_input, untouched_by_recurrence
from spikec.pipeline import PassResult

PLUMBING: tuple[type[Node], ...] = (ann.Reshape, ann.Flatten, ann.Transpose)  # the moves _replay replays


@dataclasses.dataclass(frozen=True)
class _Chain:
    """A run of single-input plumbing/Scale nodes: ``nodes`` in data-flow order, their scalar product."""

    nodes: tuple[str, ...]
    scale: float


def _scalar_scale(graph: Graph, name: str) -> float | None:
    node = graph.nodes[name]
    if isinstance(node, ann.Scale) and np.asarray(node.scale).size == 1:
        return float(np.asarray(node.scale).reshape(()))
    return None


def _movable(graph: Graph, name: str) -> bool:
    """A node the fusion may absorb: plumbing or a scalar Scale, one input, no recurrence."""
    kind_ok = type(graph.nodes[name]) in PLUMBING or _scalar_scale(graph, name) is not None
    return kind_ok and single_input(graph, name) is not None and untouched_by_recurrence(graph, name)


def _upstream(graph: Graph, name: str) -> tuple[str, _Chain]:
    """From the operand ``name`` of a product, walk up through absorbable nodes each feeding only the next."""
    nodes: list[str] = []
    scale = 1.0
    while _movable(graph, name) and single_consumer(graph, name) is not None:
        nodes.append(name)
        scale *= _scalar_scale(graph, name) or 1.0
        src = single_input(graph, name)
        assert src is not None
        name = src
    return name, _Chain(tuple(reversed(nodes)), scale)


def _operand(graph: Graph, tip: str, expected: np.ndarray) -> tuple[str, _Chain] | None:
    """The nearest (N, D) producer above ``tip`` whose chain down to the product moves entries as ``expected``."""
    _, chain = _upstream(graph, tip)
    for start in range(len(chain.nodes), -1, -1):  # shortest chain first
        nodes = chain.nodes[start:]
        src = single_input(graph, nodes[0]) if nodes else tip
        assert src is not None
        if _operand_ok(graph, src, nodes, expected):
            scale = float(np.prod([_scalar_scale(graph, n) or 1.0 for n in nodes]))
            return src, _Chain(nodes, scale)
    return None


def _replay(graph: Graph, chain: tuple[str, ...], index: np.ndarray) -> np.ndarray:
    """Apply the chain's reshapes and transposes to ``index`` (a per-sample array of entry numbers)."""
    for name in chain:
        node = graph.nodes[name]
        if isinstance(node, ann.Transpose):
            index = np.transpose(index, node.perm)
        elif type(node) in PLUMBING:
            index = index.reshape(graph.types[name])
    return index


def _split(n: int, heads: int, dh: int) -> np.ndarray:
    """Entry numbers of an (N, D) tensor laid out per head: (h, N, d_h), or (N, D) for one unsplit head."""
    index = np.arange(n * heads * dh).reshape(n, heads * dh)
    return index.reshape(n, heads, dh).transpose(1, 0, 2)


def _operand_ok(graph: Graph, src: str, chain: tuple[str, ...], expected: np.ndarray) -> bool:
    shape = graph.types[src]
    if len(shape) != 2 or shape[0] * shape[1] != expected.size:
        return False
    got = _replay(graph, chain, np.arange(expected.size).reshape(shape))
    return got.shape == expected.shape and bool(np.array_equal(got, expected))


def _downstream(graph: Graph, name: str, n: int, heads: int, dh: int) -> tuple[str, _Chain] | None:
    """From the second product, walk down absorbable nodes to the first whose output is the head merge."""
    index = np.arange(heads * n * dh).reshape(heads, n, dh)  # entries of the (h, N, d_h) product
    expected = index.transpose(1, 0, 2).reshape(n, heads * dh)  # Y[n, h d_h + c] = product[h, n, c]
    nodes: list[str] = []
    scale = 1.0
    last = name
    while True:
        current = index if not nodes else _replay(graph, tuple(nodes), index)
        merged = current.shape == expected.shape and bool(np.array_equal(current, expected))
        if heads == 1 and graph.types[last] == (n, dh) and not nodes:
            merged = True  # one head without plumbing: the product already is (N, D)
        if merged:  # trailing scalar Scales multiply into s too
            while (nxt := single_consumer(graph, last)) is not None and _scalar_scale(graph, nxt) is not None:
                if not _movable(graph, nxt):
                    break
                nodes.append(nxt)
                scale *= _scalar_scale(graph, nxt) or 1.0
                last = nxt
            return last, _Chain(tuple(nodes), scale)
        nxt = single_consumer(graph, last)
        if nxt is None or not _movable(graph, nxt):
            return None
        nodes.append(nxt)
        scale *= _scalar_scale(graph, nxt) or 1.0
        last = nxt


def _match(graph: Graph, second: str) -> tuple[dict[str, str], set[str], SpikingSelfAttention, str] | None:
    """For a MatMul ``second`` = (Q Kᵀ) V: (q, k, v sources, absorbed nodes, the SSA node, replaced node)."""
    in_edges = graph.in_edges(second)
    if len(in_edges) != 2 or any(e.recurrent for e in in_edges):
        return None
    scores_src, v_tip = in_edges[0].src, in_edges[1].src
    first, between = _upstream(graph, scores_src)
    if not isinstance(graph.nodes[first], MatMul) or single_consumer(graph, first) is None:
        return None
    first_edges = graph.in_edges(first)
    if len(first_edges) != 2 or any(e.recurrent for e in first_edges):
        return None
    out_shape = graph.types[second]
    if len(out_shape) == 3:
        heads, n, dh = out_shape
    elif len(out_shape) == 2:
        heads, (n, dh) = 1, out_shape
    else:
        return None
    split = _split(n, heads, dh)
    if len(out_shape) == 2:
        split = split[0]
    k_expected = np.swapaxes(split, -1, -2)
    sources: dict[str, str] = {}
    absorbed = {first, second, *between.nodes}
    scale = between.scale
    for role, tip, expected in (("q", first_edges[0].src, split), ("k", first_edges[1].src, k_expected),
                                ("v", v_tip, split)):  # fmt: skip
        found = _operand(graph, tip, expected)
        if found is None:
            return None
        src, chain = found
        sources[role], scale = src, scale * chain.scale
        absorbed.update(chain.nodes)
    if graph.types[sources["k"]] != graph.types[sources["v"]]:
        return None
    tail = _downstream(graph, second, n, heads, dh)
    if tail is None:
        return None
    replaced, out_chain = tail
    absorbed.update(out_chain.nodes)
    scale *= out_chain.scale
    if any(graph.nodes[a].sink or graph.nodes[a].graph_input for a in absorbed - {replaced}):
        return None
    ssa = SpikingSelfAttention(heads=heads, scale=scale, origin=graph.nodes[second].origin)
    return sources, absorbed - {replaced}, ssa, replaced


def _rewrite(graph: Graph, sources: dict[str, str], removed: set[str], ssa: SpikingSelfAttention, name: str) -> Graph:
    nodes = {k: (ssa if k == name else v) for k, v in graph.nodes.items() if k not in removed}
    edges = [e for e in graph.edges if e.dst not in removed and e.dst != name and e.src not in removed]
    edges += [Edge(sources[r], name) for r in ("q", "k", "v")]
    return Graph(nodes, edges, dt=graph.dt)


@dataclasses.dataclass(frozen=True)
class FusionResult(PassResult):
    fused: tuple[str, ...] = ()  # names of the SpikingSelfAttention nodes made


Matcher = Callable[[Graph, str], "tuple[dict[str, str], set[str], SpikingSelfAttention, str] | None"]


def fuse_spiking_attention(graph: Graph) -> FusionResult:
    """Q·Kᵀ·V·s products of (N, D) tensors, with head split/merge plumbing and scalar scales → SpikingSelfAttention."""
    fused: list[str] = []
    changed = True
    while changed:
        changed = False
        for name in graph.order:
            if not isinstance(graph.nodes[name], MatMul):
                continue
            match = _match(graph, name)
            if match is not None:
                graph = _rewrite(graph, *match)
                fused.append(match[3])
                changed = True
                break
    return FusionResult(graph, bool(fused), tuple(fused))
