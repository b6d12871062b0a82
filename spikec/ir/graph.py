"""The SIR graph: named nodes plus edges, immutable, verified on construction.

Edges carry values from ``src`` to ``dst`` within a time step. A ``recurrent`` edge carries the
value ``src`` had at the previous step (zero at step 0), so feedback loops are explicit and the
forward edges alone must form a DAG. Several edges into one ``SUM`` node are summed (NIR's rule).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from spikec.errors import ShapeError, VerifyError
from spikec.ir.node import Inputs, Node, Shape

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
DEFAULT_DT = 1e-4  # NIR leaves dt open; 1e-4 s is the convention of the NIR paper and snnTorch.


@dataclasses.dataclass(frozen=True)
class Edge:
    """A connection ``src -> dst``; ``recurrent`` edges deliver the previous step's value."""

    src: str
    dst: str
    recurrent: bool = False

    def __str__(self) -> str:
        return f"'{self.src}' {'~>' if self.recurrent else '->'} '{self.dst}'"


EdgeLike = Edge | tuple[str, str] | tuple[str, str, bool]


def _infer_shape(node: Node, shapes: tuple[Shape, ...]) -> Shape:
    """``node.infer_shape(shapes)``, remembered on the (immutable) node for the last input shapes: a pass
    that rebuilds the graph after each local rewrite re-infers only the nodes it changed."""
    memo = node.__dict__.get("_shape_memo")
    if memo is not None and memo[0] == shapes:
        return memo[1]
    shape = tuple(int(d) for d in node.infer_shape(list(shapes)))
    object.__setattr__(node, "_shape_memo", (shapes, shape))
    return shape


class Graph:
    """An immutable, verified graph of named nodes. Use ``replace``/``with_node`` to change it."""

    __slots__ = ("_cache", "_edges", "_nodes", "dt")

    def __init__(
        self,
        nodes: Mapping[str, Node],
        edges: Iterable[EdgeLike],
        *,
        dt: float = DEFAULT_DT,
        verify: bool = True,
    ) -> None:
        self._nodes: dict[str, Node] = dict(nodes)
        self._edges: tuple[Edge, ...] = tuple(e if isinstance(e, Edge) else Edge(*e) for e in edges)
        self.dt = float(dt)
        if not (math.isfinite(self.dt) and self.dt > 0):  # dt 0, < 0, nan or inf runs and never spikes
            raise VerifyError(f"the graph's dt must be a finite number of seconds per step > 0, got {dt}")
        self._cache: dict[str, Any] = {}
        if verify:
            self.verify()

    # -- views ---------------------------------------------------------------------------------
    @property
    def nodes(self) -> Mapping[str, Node]:
        return MappingProxyType(self._nodes)

    @property
    def edges(self) -> tuple[Edge, ...]:
        return self._edges

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the nodes fed from outside (Input), in node order."""
        return tuple(n for n, node in self._nodes.items() if node.graph_input)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of the sink nodes (Output), in node order."""
        return tuple(n for n, node in self._nodes.items() if node.sink)

    def in_edges(self, name: str) -> tuple[Edge, ...]:
        """Edges into ``name`` in edge order (the order Concat joins them)."""
        index = self._memo("in", lambda: _group(self._edges, lambda e: e.dst))
        return index.get(name, ())

    def out_edges(self, name: str) -> tuple[Edge, ...]:
        index = self._memo("out", lambda: _group(self._edges, lambda e: e.src))
        return index.get(name, ())

    @property
    def order(self) -> tuple[str, ...]:
        """Topological order of the forward edges; ties keep node order (so it is deterministic)."""
        return self._memo("order", self._topological_order)

    @property
    def types(self) -> Mapping[str, Shape]:
        """Per-sample output shape of every node."""
        return self._memo("types", self._infer_shapes)

    @property
    def is_spiking(self) -> bool:
        """True when any node carries state across time steps (the graph must be stepped)."""
        return any(node.stateful for node in self._nodes.values()) or any(e.recurrent for e in self._edges)

    def _memo(self, key: str, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    # -- immutable updates ---------------------------------------------------------------------
    def replace(
        self,
        *,
        nodes: Mapping[str, Node] | None = None,
        edges: Iterable[EdgeLike] | None = None,
        dt: float | None = None,
    ) -> Graph:
        return Graph(
            self._nodes if nodes is None else nodes,
            self._edges if edges is None else edges,
            dt=self.dt if dt is None else dt,
        )

    def with_node(self, name: str, node: Node) -> Graph:
        """Replace node ``name`` (or add it; add its edges with ``replace(edges=...)``)."""
        nodes = dict(self._nodes)
        nodes[name] = node
        return self.replace(nodes=nodes)

    # -- verification ----------------------------------------------------------------------------
    def describe(self, name: str) -> str:
        node = self._nodes.get(name)
        return node.describe(name) if node is not None else f"node '{name}'"

    def verify(self) -> None:
        """Check names, parameters, edge ends, acyclicity, dangling nodes and every edge's shape."""
        for name, node in self._nodes.items():
            if not NAME_RE.fullmatch(name):
                raise VerifyError(
                    f"node name {name!r} is not valid: use letters, digits, '_', '.', '-' "
                    "(not starting with '.' or '-')"
                )
            node.verify(name)
        for edge in self._edges:
            for end in (edge.src, edge.dst):
                if end not in self._nodes:
                    raise VerifyError(f"edge {edge}: there is no node named '{end}'")
            if edge.recurrent and self._nodes[edge.dst].inputs is Inputs.ORDERED:
                raise VerifyError(
                    f"recurrent edge {edge}: {self.describe(edge.dst)} joins its inputs in order and cannot "
                    "take a recurrent edge; route the feedback into a summing node (e.g. Identity) first"
                )
            if self._nodes[edge.dst].inputs is Inputs.NONE:
                raise VerifyError(f"edge {edge}: {self.describe(edge.dst)} is a graph input and takes no edges")
        if not self.outputs:
            raise VerifyError("the graph has no Output node: add one and connect the result to it")
        self._check_dangling()
        self.order  # noqa: B018 - raises on a cycle of forward edges
        self.types  # noqa: B018 - raises on a shape mismatch

    def _check_dangling(self) -> None:
        fed = {e.dst for e in self._edges}
        feeding = {e.src for e in self._edges}
        for name, node in self._nodes.items():
            if node.inputs is not Inputs.NONE and name not in fed:
                raise VerifyError(f"{self.describe(name)} has no incoming edge: connect it or remove it")
            if not node.sink and name not in feeding:
                raise VerifyError(f"{self.describe(name)} has no outgoing edge: connect it to an Output or remove it")

    def _topological_order(self) -> tuple[str, ...]:
        rank = {name: i for i, name in enumerate(self._nodes)}
        pending = {name: 0 for name in self._nodes}
        for e in self._edges:
            if not e.recurrent:
                pending[e.dst] += 1
        consumers: dict[str, list[str]] = {}
        for e in self._edges:
            if not e.recurrent:
                consumers.setdefault(e.src, []).append(e.dst)
        ready = [(rank[n], n) for n, k in pending.items() if k == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for dst in consumers.get(name, ()):
                pending[dst] -= 1
                if pending[dst] == 0:
                    heapq.heappush(ready, (rank[dst], dst))
        if len(order) != len(self._nodes):
            stuck = [n for n in self._nodes if n not in set(order)]
            raise VerifyError(
                f"the forward edges form a cycle through {stuck}: mark the feedback edge recurrent "
                "('~>' in .sir, Edge(..., recurrent=True)) so it carries the previous step's value"
            )
        return tuple(order)

    def _infer_shapes(self) -> dict[str, Shape]:
        types: dict[str, Shape] = {}
        into: dict[str, list[Edge]] = {}
        for e in self._edges:
            if not e.recurrent:
                into.setdefault(e.dst, []).append(e)
        for name in self.order:
            node = self._nodes[name]
            forward = into.get(name, [])
            shapes = [types[e.src] for e in forward]
            if node.inputs is Inputs.SUM:
                if not forward and node.inputs is not Inputs.NONE:
                    raise VerifyError(
                        f"{self.describe(name)} is fed only by recurrent edges, so its shape cannot be "
                        "inferred: give it a forward input"
                    )
                for e, shape in zip(forward[1:], shapes[1:], strict=True):
                    if shape != shapes[0]:
                        raise VerifyError(
                            f"edges into {self.describe(name)} disagree: '{forward[0].src}' gives "
                            f"{shapes[0]} but '{e.src}' gives {shape}; summed inputs must share one shape"
                        )
                shapes = shapes[:1]
            try:
                types[name] = _infer_shape(node, tuple(shapes))
            except ShapeError as err:
                srcs = ", ".join(f"'{e.src}' gives {types[e.src]}" for e in forward)
                raise VerifyError(f"edge into {self.describe(name)}: {srcs}; but the node {err}") from None
        for e in self._edges:
            if e.recurrent:
                forward = [f for f in self.in_edges(e.dst) if not f.recurrent]
                expected = types[forward[0].src] if forward else None
                if expected is not None and types[e.src] != expected:
                    raise VerifyError(
                        f"recurrent edge {e}: '{e.src}' gives {types[e.src]} but {self.describe(e.dst)} "
                        f"sums inputs of shape {expected}"
                    )
        return types

    # -- structure rewrites ------------------------------------------------------------------------
    def inline_subgraphs(self) -> Graph:
        """The same computation with every Subgraph node expanded in place (names ``outer.inner``)."""
        from spikec.ir.structure import Subgraph

        if not any(isinstance(n, Subgraph) for n in self._nodes.values()):
            return self
        nodes: dict[str, Node] = {}
        edges: list[Edge] = [e for e in self._edges]
        for name, node in self._nodes.items():
            if not isinstance(node, Subgraph):
                nodes[name] = node
                continue
            inner = node.graph.inline_subgraphs()
            (inner_in,) = inner.inputs
            (inner_out,) = inner.outputs
            for iname, inode in inner.nodes.items():
                if iname not in (inner_in, inner_out):
                    nodes[f"{name}.{iname}"] = inode
            edges = _splice(edges, name, inner, inner_in, inner_out)
        return Graph(nodes, edges, dt=self.dt)

    # -- equality ------------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (
            self.dt == other.dt
            and list(self._nodes) == list(other._nodes)
            and all(self._nodes[k] == other._nodes[k] for k in self._nodes)
            and self._edges == other._edges
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Graph {len(self._nodes)} nodes, {len(self._edges)} edges, dt={self.dt:g}>"

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)


def _group(edges: Iterable[Edge], key: Any) -> dict[str, tuple[Edge, ...]]:
    groups: dict[str, list[Edge]] = {}
    for e in edges:
        groups.setdefault(key(e), []).append(e)
    return {k: tuple(v) for k, v in groups.items()}


def _splice(edges: list[Edge], name: str, inner: Graph, inner_in: str, inner_out: str) -> list[Edge]:
    """Rewire outer edges through the inlined body of subgraph ``name``."""

    def renamed(n: str) -> str:
        return f"{name}.{n}"

    into = [e for e in edges if e.dst == name]
    out_of = [e for e in edges if e.src == name]
    kept = [e for e in edges if e.dst != name and e.src != name]
    new: list[Edge] = []
    for e in inner.edges:
        if e.src == inner_in and e.dst == inner_out:
            new += [Edge(a.src, b.dst, a.recurrent or b.recurrent or e.recurrent) for a in into for b in out_of]
        elif e.src == inner_in:
            new += [Edge(a.src, renamed(e.dst), a.recurrent or e.recurrent) for a in into]
        elif e.dst == inner_out:
            new += [Edge(renamed(e.src), b.dst, b.recurrent or e.recurrent) for b in out_of]
        else:
            new.append(Edge(renamed(e.src), renamed(e.dst), e.recurrent))
    return kept + new
