"""Graph surgery shared by the passes (not a pass): bypass, insert and rescale, always returning new graphs.

Every helper keeps the edge order of the nodes it does not touch (``Concat`` joins its inputs in edge
order) and the names of the nodes that survive, so reports and traces can follow a node through the
pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import numpy as np

from spikec.errors import PassError
from spikec.ir import ann
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Node, Shape

State = TypeVar("State")
Handler = Callable[[State, str, Node], None]


def walk_by_kind(
    graph: Graph,
    handlers: Mapping[type[Node], Handler[State]],
    state: State,
    fail: Callable[[str, str], Exception],
    *,
    recurrent: str,
    unknown: str,
) -> None:
    """``handlers[kind](state, name, node)`` on every node in topological order, for passes that rebuild a
    feed-forward graph node by node; a recurrent input or a kind without a handler raises ``fail(name, why)``.

    ``handlers`` is keyed by kind class.
    """
    by_name = {key.kind: fn for key, fn in handlers.items()}
    for name in graph.order:
        node = graph.nodes[name]
        if any(e.recurrent for e in graph.in_edges(name)):
            raise fail(name, f"has a recurrent input; {recurrent}")
        handler = by_name.get(node.kind)  # kind names are unique: a class key matches only its own kind
        if handler is None:
            raise fail(name, f"is a {node.kind}, which {unknown}; supported: {', '.join(by_name)}")
        handler(state, name, node)


def fresh_name(graph: Graph, base: str) -> str:
    """``base`` if no node has that name, else ``base.1``, ``base.2``, ..."""
    if base not in graph.nodes:
        return base
    i = 1
    while f"{base}.{i}" in graph.nodes:
        i += 1
    return f"{base}.{i}"


def forward_inputs(graph: Graph, name: str) -> tuple[Edge, ...]:
    return tuple(e for e in graph.in_edges(name) if not e.recurrent)


def single_input(graph: Graph, name: str) -> str | None:
    """The one producer of ``name`` when it has exactly one incoming edge, which is not recurrent."""
    edges = graph.in_edges(name)
    return edges[0].src if len(edges) == 1 and not edges[0].recurrent else None


def single_consumer(graph: Graph, name: str) -> str | None:
    """The one consumer of ``name`` when it has exactly one outgoing edge, which is not recurrent."""
    edges = graph.out_edges(name)
    return edges[0].dst if len(edges) == 1 and not edges[0].recurrent else None


def untouched_by_recurrence(graph: Graph, name: str) -> bool:
    return not any(e.recurrent for e in (*graph.in_edges(name), *graph.out_edges(name)))


def bypass(graph: Graph, name: str, changes: dict[str, Node] | None = None) -> Graph:
    """Remove single-input node ``name``; its consumers take its producer in its place (same edge slots).
    ``changes`` replaces other nodes in the same step (one graph build instead of two)."""
    src = single_input(graph, name)
    if src is None or not untouched_by_recurrence(graph, name):
        raise PassError(f"cannot bypass {graph.describe(name)}: it needs exactly one forward input and no recurrence")
    edges = [Edge(src, e.dst) if e.src == name else e for e in graph.edges if e.dst != name]
    changes = changes or {}
    nodes = {k: changes.get(k, v) for k, v in graph.nodes.items() if k != name}
    return Graph(nodes, edges, dt=graph.dt)


def insert_after(graph: Graph, src: str, new: str, node: Node, *, only: Iterable[str] | None = None) -> Graph:
    """Put ``node`` (named ``new``) between ``src`` and its consumers (or only those named in ``only``)."""
    targets = None if only is None else set(only)
    edges: list[Edge] = []
    for e in graph.edges:
        moved = e.src == src and (targets is None or e.dst in targets)
        edges.append(Edge(new, e.dst, e.recurrent) if moved else e)
    edges.append(Edge(src, new))
    nodes = _with_node_after(graph, src, new, node)
    return Graph(nodes, edges, dt=graph.dt)


def insert_before(graph: Graph, dst: str, new: str, node: Node) -> Graph:
    """Put ``node`` (named ``new``) in front of summing node ``dst``: its incoming edges feed ``new``."""
    edges = [Edge(e.src, new, e.recurrent) if e.dst == dst else e for e in graph.edges]
    edges.append(Edge(new, dst))
    return Graph(_with_node_after(graph, dst, new, node, before=True), edges, dt=graph.dt)


def insert_on_edge(graph: Graph, edge: Edge, new: str, node: Node) -> Graph:
    """Put ``node`` on one edge ``src -> dst`` (keeping the edge's slot among ``dst``'s inputs)."""
    edges = [Edge(edge.src, new, edge.recurrent) if e == edge else e for e in graph.edges]
    edges.append(Edge(new, edge.dst))
    return Graph(_with_node_after(graph, edge.src, new, node), edges, dt=graph.dt)


def swap(graph: Graph, first: str, second: str, changes: dict[str, Node] | None = None) -> Graph:
    """``... -> first -> second -> ...`` becomes ``... -> second -> first -> ...`` (names kept; ``changes``
    replaces nodes in the same step, e.g. a parameter reshaped for its new place).

    ``second`` must be ``first``'s only consumer and take only ``first``; no recurrent edges around them.
    """
    if single_consumer(graph, first) != second or single_input(graph, second) != first:
        raise PassError(f"cannot swap {graph.describe(first)} and {graph.describe(second)}: they are not a chain")
    if not (untouched_by_recurrence(graph, first) and untouched_by_recurrence(graph, second)):
        raise PassError(f"cannot swap {graph.describe(first)} and {graph.describe(second)}: recurrent edges")
    edges: list[Edge] = []
    for e in graph.edges:
        if e.dst == first:
            edges.append(Edge(e.src, second))
        elif e.src == first:
            edges.append(Edge(second, first))
        elif e.src == second:
            edges.append(Edge(first, e.dst))
        else:
            edges.append(e)
    nodes = {k: (changes or {}).get(k, v) for k, v in graph.nodes.items()}
    return Graph(nodes, edges, dt=graph.dt)


def _with_node_after(graph: Graph, anchor: str, new: str, node: Node, *, before: bool = False) -> dict[str, Node]:
    """Node table with ``new`` placed right after (or before) ``anchor``, so printed graphs read in order."""
    nodes: dict[str, Node] = {}
    for k, v in graph.nodes.items():
        if k == anchor and before:
            nodes[new] = node
        nodes[k] = v
        if k == anchor and not before:
            nodes[new] = node
    return nodes


def replace_nodes(graph: Graph, changes: dict[str, Node]) -> Graph:
    nodes = {k: changes.get(k, v) for k, v in graph.nodes.items()}
    return Graph(nodes, graph.edges, dt=graph.dt)


# -- scales along an axis -------------------------------------------------------------------------
def along_axis(value: np.ndarray, shape: Shape, axis: int) -> np.ndarray | None:
    """``value`` (broadcastable to ``shape``) as one number per index of ``axis``, or None if it varies
    along any other axis. A scalar comes back as a (1,) vector."""
    full = np.broadcast_to(np.asarray(value, np.float64), shape)
    if not shape:
        return full.reshape(1)
    axis %= len(shape)
    moved = np.moveaxis(full, axis, 0).reshape(shape[axis], -1)
    if moved.shape[1] and not np.all(moved == moved[:, :1]):
        return None
    return moved[:, 0] if moved.shape[1] else np.ones(shape[axis])


def compact(value: np.ndarray) -> np.ndarray:
    """A scale array reduced to a 0-d array when all its entries are equal."""
    arr = np.asarray(value, np.float64)
    return np.asarray(arr.flat[0]) if arr.size and np.all(arr == arr.flat[0]) else arr


def channel_layout(vector: np.ndarray, shape: Shape, axis: int) -> np.ndarray:
    """A per-index vector of ``axis`` shaped to broadcast against ``shape`` (a scalar stays 0-d)."""
    vector = np.asarray(vector, np.float64)
    if vector.size == 1:
        return np.asarray(vector.reshape(()))
    axis %= len(shape)
    return vector.reshape((-1,) + (1,) * (len(shape) - axis - 1))


# -- rescaling affine layers ---------------------------------------------------------------------
def output_axis(node: Node, out_shape: Shape) -> int:
    """The axis of a Conv/Dense output that indexes its output channels (0 for Conv, last for Dense)."""
    return 0 if isinstance(node, ann.Conv) else len(out_shape) - 1


def scale_outputs(node: ann.Conv | ann.Dense, factor: np.ndarray) -> ann.Conv | ann.Dense:
    """``factor · layer(x)``: rows of the weight and the bias multiplied per output channel."""
    n_out = node.weight.shape[0]
    f = np.broadcast_to(np.asarray(factor, np.float64).reshape(-1), (n_out,))
    weight = node.weight * f.reshape((-1,) + (1,) * (node.weight.ndim - 1))
    bias = None if node.bias is None else node.bias * f
    return node.replace(weight=weight, bias=bias)  # type: ignore[return-value]


def scale_inputs(node: ann.Conv | ann.Dense, factor: np.ndarray) -> ann.Conv | ann.Dense:
    """``layer(factor · x)`` for a factor per input channel (Conv) or input feature (Dense)."""
    f = np.asarray(factor, np.float64).reshape(-1)
    if isinstance(node, ann.Dense):
        return node.replace(weight=node.weight * np.broadcast_to(f, (node.weight.shape[1],)))  # type: ignore[return-value]
    groups, per_group = node.groups, node.weight.shape[1]
    table = np.broadcast_to(f, (groups * per_group,)).reshape(groups, per_group)
    rows = table[np.arange(node.weight.shape[0]) // (node.weight.shape[0] // groups)]  # (out, in/groups)
    weight = node.weight * rows.reshape(rows.shape + (1,) * (node.weight.ndim - 2))
    return node.replace(weight=weight)  # type: ignore[return-value]
