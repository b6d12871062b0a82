"""The structure of a NIR file: node names, edges and nested graphs, resolved before any node is converted.

NIR node names are opaque strings: exporters write dots (nirtorch flattens snnTorch's recurrent layers
into ``lif1.lif`` and ``lif1.w_rec``), slashes and spaces. An edge end names a node of the graph that
holds the edge: the NIR library (``NIRGraph.validate_structure``) and nirtorch (``nir_to_torch``)
match it against the node names as a whole string, and an edge into a nested ``NIRGraph`` names the
nested graph itself. spikec does the same, and accepts a dotted path only where no node has the whole
name:

1. a node whose name is exactly the edge end wins (``lif1.lif`` is that node, even beside a ``lif1``);
2. otherwise ``head.rest`` with ``head`` a nested graph resolves ``rest`` inside it (by these same
   rules, so paths nest); heads are tried shortest first;
3. otherwise the edge names no node: a ``FrontendError`` naming the edge.

A nested graph that edges name only as a whole, with one Input and one Output, stays a ``Subgraph``.
One that an edge reaches into (``sub.lif``), or with several Inputs or Outputs, is spliced into its
parent: its nodes join the parent under ``sub.<name>``, and its Input and Output nodes become
pass-through ``Identity`` nodes that the outer edges feed and read.

SIR names are ``[A-Za-z0-9_][A-Za-z0-9_.-]*``: ``sir_names`` keeps a NIR name that already fits, and
otherwise replaces every other character by ``_`` (adding a suffix where two names would meet); the
node's ``origin`` keeps the NIR name, so errors and reports point back to it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from spikec.errors import FrontendError
from spikec.ir.graph import NAME_RE
from spikec.safe_read.limits import MAX_NESTING, shown

Key = tuple[str, ...]  # a node's path of NIR names from the graph being built


@dataclasses.dataclass
class RawGraph:
    """A NIR graph group as read from the file: its nodes' fields (or nested graphs) and edges."""

    path: str  # "" for the file's graph, "outer/inner/" below it (for messages and origins)
    nodes: dict[str, dict[str, Any] | RawGraph]
    edges: list[tuple[str, str]]
    fields: dict[str, Any]

    def describe(self) -> str:
        return f"graph '{self.path.rstrip('/')}'" if self.path else "the top-level graph"

    def ports(self, kind: str) -> list[str]:
        """Names of this graph's own Input (or Output) nodes, in node order."""
        return [n for n, item in self.nodes.items() if not isinstance(item, RawGraph) and item.get("type") == kind]


def raw_graph(data: dict[str, Any], file: str, path: str = "", depth: int = 0) -> RawGraph:
    """The nested dictionaries of a NIR ``node`` group as a ``RawGraph`` tree (at most ``MAX_NESTING`` deep)."""
    if depth >= MAX_NESTING:
        raise FrontendError(
            f"{file}: NIR graphs nested more than {MAX_NESTING} deep (at '{path}'): spikec reads at most {MAX_NESTING}"
        )
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict):
        raise FrontendError(f"{file}: graph '{path or '/'}' has no 'nodes' group: not a NIR graph")
    nodes: dict[str, dict[str, Any] | RawGraph] = {}
    for name, fields in _slashed(raw_nodes):
        if not isinstance(fields, dict) or "type" not in fields:
            raise FrontendError(f"{file}: NIR node '{path}{name}' has no 'type' field")
        if not isinstance(fields["type"], str):
            raise FrontendError(f"{file}: NIR node '{path}{name}' has type {shown(fields['type'])}, not a type name")
        nested = fields["type"] == "NIRGraph"
        nodes[name] = raw_graph(fields, file, f"{path}{name}/", depth + 1) if nested else fields
    return RawGraph(path, nodes, _edges(data.get("edges"), file, path), data)


def _edges(value: Any, file: str, path: str) -> list[tuple[str, str]]:
    """A graph's ``edges`` dataset: (source, target) name pairs."""
    if value is None:
        return []
    raw = np.asarray(value, dtype=object)
    if raw.size % 2 or (raw.ndim == 2 and raw.shape[1] != 2) or raw.ndim > 2:
        raise FrontendError(
            f"{file}: graph '{path or '/'}' has edges of shape {list(raw.shape)}; NIR stores (source, target) "
            "pairs, shape (N, 2)"
        )
    pairs = raw.reshape(-1, 2)
    if not all(isinstance(v, str) for v in pairs.reshape(-1)):
        raise FrontendError(f"{file}: graph '{path or '/'}' has edges that are not node names (strings)")
    return [(a, b) for a, b in pairs]


def _slashed(groups: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Node groups by name. HDF5 reads a '/' in a name as a path, so ``nir.write`` stores node 'conv/0' as
    group 'conv' holding group '0': a group with no 'type' whose members are all groups is such a prefix."""
    out: list[tuple[str, Any]] = []
    for name, fields in groups.items():
        if (
            isinstance(fields, dict)
            and "type" not in fields
            and fields
            and all(isinstance(v, dict) for v in fields.values())
        ):
            out.extend(_slashed(fields, f"{prefix}{name}/"))
        else:
            out.append((f"{prefix}{name}", fields))
    return out


def resolve(graph: RawGraph, end: str) -> Key | None:
    """The path of the node an edge end names: the whole name first, then ``head.rest`` into nested graphs."""
    if end in graph.nodes:
        return (end,)
    for i, ch in enumerate(end):
        if ch != ".":
            continue
        inner = graph.nodes.get(end[:i])
        if isinstance(inner, RawGraph):
            rest = resolve(inner, end[i + 1 :])
            if rest is not None:
                return (end[:i], *rest)
    return None


@dataclasses.dataclass
class FlatGraph:
    """A graph after name resolution: nodes keyed by NIR name paths, edges between those keys.

    ``nodes`` values are a node's fields, or a ``RawGraph`` kept whole (a Subgraph). ``ports`` are the
    Input/Output nodes of spliced graphs, which become pass-through Identity nodes.
    """

    nodes: dict[Key, dict[str, Any] | RawGraph]
    edges: list[tuple[Key, Key]]
    ports: set[Key]


def flatten(graph: RawGraph, file: str, force: frozenset[str] = frozenset()) -> FlatGraph:
    """Resolve every edge of ``graph`` and splice the nested graphs that cannot stay whole.

    ``force`` names nested graphs an outer edge reaches into, which must be spliced too.
    """
    pairs: list[tuple[Key, Key]] = []
    reach: dict[str, set[str]] = {}  # nested graph -> names inside it that edges reach into deeper
    for src, dst in graph.edges:
        keys = []
        for end, port in ((src, "Output"), (dst, "Input")):
            key = resolve(graph, end)
            if key is None:
                raise FrontendError(_missing(file, graph, src, dst, end))
            keys.append(_through_port(graph, key, port))
        for key in keys:
            if len(key) > 1:
                reach.setdefault(key[0], set())
                if len(key) > 2:
                    reach[key[0]].add(key[1])
        pairs.append((keys[0], keys[1]))
    nodes: dict[Key, dict[str, Any] | RawGraph] = {}
    edges: list[tuple[Key, Key]] = []
    ports: set[Key] = set()
    spliced: dict[str, RawGraph] = {}
    for name, item in graph.nodes.items():
        whole = isinstance(item, RawGraph) and name not in reach and name not in force and _single_io(item)
        if not isinstance(item, RawGraph) or whole:
            nodes[(name,)] = item
            continue
        assert isinstance(item, RawGraph)
        spliced[name] = item
        inner = flatten(item, file, frozenset(reach.get(name, ())))
        nodes.update({(name, *k): v for k, v in inner.nodes.items()})
        edges.extend(((name, *a), (name, *b)) for a, b in inner.edges)
        ports.update((name, *k) for k in inner.ports)
        ports.update((name, port) for port in item.ports("Input") + item.ports("Output"))
    for pair in pairs:
        ends = (
            _into_spliced(spliced, pair[0], "Output", file, pair),
            _into_spliced(spliced, pair[1], "Input", file, pair),
        )
        edges.append(ends)
    return FlatGraph(nodes, edges, ports)


def prune_ports(graph: FlatGraph) -> FlatGraph:
    """Drop spliced Input/Output nodes that nothing feeds or reads (an outer edge went past them).

    An unfed NIR Input carries nothing, so removing it and its edges changes no value. Call it on the
    graph being built (not inside ``flatten``, where a spliced graph's ports still wait for outer edges).
    """
    while True:
        fed = {b for _, b in graph.edges}
        read = {a for a, _ in graph.edges}
        idle = {k for k in graph.ports if k not in fed or k not in read}
        if not idle:
            return graph
        graph = FlatGraph(
            {k: v for k, v in graph.nodes.items() if k not in idle},
            [(a, b) for a, b in graph.edges if a not in idle and b not in idle],
            graph.ports - idle,
        )


def _through_port(graph: RawGraph, key: Key, port: str) -> Key:
    """``sub.<its only Input>`` as an edge's target (``sub.<its only Output>`` as a source) is ``sub`` itself."""
    if len(key) != 2:
        return key
    inner = graph.nodes[key[0]]
    assert isinstance(inner, RawGraph)
    names = inner.ports(port)
    return key[:1] if names == [key[1]] and _single_io(inner) else key


def _into_spliced(spliced: dict[str, RawGraph], key: Key, port: str, file: str, edge: tuple[Key, Key]) -> Key:
    """An edge naming a spliced graph as a whole goes to (comes from) its only Input (Output) node."""
    if len(key) != 1 or key[0] not in spliced:
        return key
    inner = spliced[key[0]]
    names = inner.ports(port)
    if len(names) != 1:
        side = "into" if port == "Input" else "out of"
        raise FrontendError(
            f"{file}: edge '{'.'.join(edge[0])}' -> '{'.'.join(edge[1])}' goes {side} nested {inner.describe()}, "
            f"which has {len(names)} {port} nodes {names}: name one as '{key[0]}.<{port.lower()}>'"
        )
    return (key[0], names[0])


def _single_io(graph: RawGraph) -> bool:
    return len(graph.ports("Input")) == 1 and len(graph.ports("Output")) == 1


def _missing(file: str, graph: RawGraph, src: str, dst: str, end: str) -> str:
    names = sorted(graph.nodes)
    shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
    return (
        f"{file}: edge '{src}' -> '{dst}' in {graph.describe()} names no node '{end}' "
        f"(nodes: {shown}); fix the exporter's edge list or re-export the model"
    )


_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def sir_names(keys: list[Key], reserved: frozenset[str] | set[str] = frozenset()) -> dict[Key, str]:
    """A valid, unique SIR name per key: the dotted path if it fits ``NAME_RE``, else a cleaned one.

    ``reserved`` names are taken by others (the inlined nodes of a Subgraph) and are never given out.
    """
    wanted = {key: ".".join(key) for key in keys}
    taken = {name for name in wanted.values() if NAME_RE.fullmatch(name)}
    out: dict[Key, str] = {}
    used: set[str] = set(reserved)
    for key in keys:
        name = wanted[key]
        if not NAME_RE.fullmatch(name) or name in used:
            base = _BAD_CHARS.sub("_", name)
            if not base or base[0] in ".-":
                base = f"n{base}"
            name, i = base, 1
            while name in used or (name in taken and name != wanted[key]):
                name, i = f"{base}_{i}", i + 1
        used.add(name)
        out[key] = name
    return out
