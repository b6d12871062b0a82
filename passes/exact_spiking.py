"""``exact-spiking``: lower a QANN to the spike-equivalent SNN whose sum over steps equals it.

Every tensor of the SNN carries at step t the increment of the QANN's value, so that
:math:`\\sum_{\\tau \\le t} y_\\tau` converges to the QANN's tensor:

* ``Quantize(s, lo, hi)`` → ``STBIF(θ=s, lo, hi, max_spikes)``, the signed IF with count tracker;
* an additive node (``_exact_rules``: Dense/Conv without bias, Add, Reshape, Concat, ...) runs as
  it is; a bias is split off into a ``Constant`` added once;
* every ``Constant`` feeds its consumers through a ``Difference`` (the value at step 0, then 0),
  except where it is the constant operand of a product (its value, every step);
* every graph input goes through a ``Difference`` (fed the same sample every step, as ``direct``
  encoding does, the SNN sees it once);
* a ReLU feeding only non-negative quantizers is absorbed by them (becomes an Identity);
* every other node f becomes Σ → f → Δ: an ``Accumulate`` on its input (one per operand of an
  ordered kind), f, then a ``Difference``. Telescoping gives :math:`\\sum_t \\Delta_t = f(\\sum_t x_t)`
  exactly; for a product of two spiking operands this is :math:`A_tB_t - A_{t-1}B_{t-1}`.

The graph outputs carry increments too: sum them over steps (``spikes`` decoding). The names of the
wrapped nodes stay the same (so reports can name them); they are not event-driven.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from spikec.errors import PassError
from spikec.ir import ann, exact, structure, tensor
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Inputs, Node
from spikec.passes._exact_rules import OFFSETS, has_offset, is_additive, raw_constant_edges
from spikec.pipeline import PassResult


class _Builder:
    """Mutable node table and edge list while the pass rewrites (one Graph is built at the end).

    Linear in the graph size: edges are indexed by source and destination, and a node added
    "after" another is remembered beside it and placed only when :meth:`graph` lays the table out
    (a node added later after the same anchor comes first, as an insertion into an ordered table would).
    """

    def __init__(self, graph: Graph) -> None:
        self.nodes: dict[str, Node] = dict(graph.nodes)
        self.edges: list[Edge] = []
        self._by_src: dict[str, list[int]] = defaultdict(list)
        self._by_dst: dict[str, list[int]] = defaultdict(list)
        self._followers: dict[str, list[str]] = defaultdict(list)
        self._order = list(graph.nodes)
        for e in graph.edges:
            self.append(e)

    def append(self, edge: Edge) -> None:
        self._by_src[edge.src].append(len(self.edges))
        self._by_dst[edge.dst].append(len(self.edges))
        self.edges.append(edge)

    def set_edge(self, i: int, edge: Edge) -> None:
        old = self.edges[i]
        self._by_src[old.src].remove(i)
        self._by_dst[old.dst].remove(i)
        self._by_src[edge.src] = sorted([*self._by_src[edge.src], i])
        self._by_dst[edge.dst] = sorted([*self._by_dst[edge.dst], i])
        self.edges[i] = edge

    def out_positions(self, src: str) -> list[int]:
        return list(self._by_src[src])

    def in_positions(self, dst: str) -> list[int]:
        return list(self._by_dst[dst])

    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.nodes:
            i += 1
            name = f"{base}.{i}"
        return name

    def add(self, base: str, node: Node, *, after: str) -> str:
        name = self.fresh(base)
        self.nodes[name] = node
        self._followers[after].insert(0, name)
        return name

    def after(self, src: str, base: str, node: Node, *, only: set[int] | None = None) -> str:
        """Insert ``node`` between ``src`` and its consumers (only the edges at positions ``only``)."""
        name = self.add(base, node, after=src)
        out = self.out_positions(src)
        for i in out if only is None else [out[j] for j in sorted(only)]:
            e = self.edges[i]
            self.set_edge(i, Edge(name, e.dst, e.recurrent))
        self.append(Edge(src, name))
        return name

    def layout(self) -> list[str]:
        """Node names in table order: each original node, then what was added after it."""
        names: list[str] = []
        stack = list(reversed(self._order))
        while stack:
            names.append(stack.pop())
            stack.extend(reversed(self._followers.get(names[-1], ())))
        return names

    def graph(self, dt: float) -> Graph:
        return Graph({name: self.nodes[name] for name in self.layout()}, self.edges, dt=dt)


def _split_offset(b: _Builder, graph: Graph, name: str) -> None:
    node = graph.nodes[name]
    linear, offset = OFFSETS[type(node)](node, graph.types[name])
    b.nodes[name] = linear
    plus = b.after(name, f"{name}.plus_bias", ann.Add(origin=node.origin))
    const = b.add(f"{name}.bias", tensor.Constant(value=np.array(offset), origin=node.origin), after=plus)
    b.append(Edge(const, plus))


def _wrap(b: _Builder, graph: Graph, name: str, raw: set[int]) -> None:
    """Σ → f → Δ around ``name``; the edges at positions ``raw`` (Constant operands) stay as they are."""
    node = graph.nodes[name]
    b.after(name, f"{name}.delta", exact.Difference(origin=node.origin))
    into = b.in_positions(name)
    if node.inputs is Inputs.SUM:
        acc = b.add(f"{name}.sum", exact.Accumulate(origin=node.origin), after=name)
        moved = [i for k, i in enumerate(into) if k not in raw]
        for i in moved:
            b.set_edge(i, Edge(b.edges[i].src, acc, b.edges[i].recurrent))
        b.append(Edge(acc, name))
        return
    for k, i in enumerate(into):
        if k in raw:
            continue
        acc = b.add(f"{name}.sum{k}", exact.Accumulate(origin=node.origin), after=name)
        src = b.edges[i].src
        b.set_edge(i, Edge(acc, name))
        b.append(Edge(src, acc))


def absorbed(graph: Graph, name: str) -> bool:
    """A ReLU whose every consumer is a ``Quantize`` with ``lo >= 0``: the quantizer's clip at 0 is the
    ReLU (clip(floor(relu(x)/s + 1/2), 0, hi) = clip(floor(x/s + 1/2), 0, hi)), so the ST-BIFs it
    becomes do the ReLU on the accumulated input and the ReLU itself passes increments (Identity)."""
    out = graph.out_edges(name)
    return (
        isinstance(graph.nodes[name], ann.ReLU)
        and bool(out)
        and all(isinstance(q := graph.nodes[e.dst], exact.Quantize) and q.lo >= 0 for e in out)
    )


def lowering_plan(graph: Graph) -> dict[str, list[str]]:
    """What ``exact-spiking`` does to each node: ``neurons`` (Quantize → STBIF), ``wrapped`` (Σ → f → Δ,
    not event-driven), ``split_bias``, ``absorbed`` (a ReLU the ST-BIFs after it do: → Identity),
    ``additive``, ``constants`` (fed in once)."""
    plan: dict[str, list[str]] = {
        "neurons": [], "wrapped": [], "split_bias": [], "absorbed": [], "additive": [], "constants": []
    }  # fmt: skip
    for name, node in graph.nodes.items():
        if isinstance(node, exact.Quantize):
            plan["neurons"].append(name)
        elif isinstance(node, tensor.Constant):
            plan["constants"].append(name)
        elif isinstance(node, structure.Input):
            continue
        elif has_offset(node):
            plan["split_bias"].append(name)
        elif absorbed(graph, name):
            plan["absorbed"].append(name)
        elif is_additive(graph, name):
            plan["additive"].append(name)
        else:
            plan["wrapped"].append(name)
    return plan


def exact_spiking(graph: Graph, *, max_spikes: int = 1) -> PassResult:
    """QANN → spike-equivalent SNN: Quantize → STBIF(max_spikes), other kinds additive or Σ→f→Δ (exact)."""
    if max_spikes < 1:
        raise PassError(f"max_spikes={max_spikes} must be >= 1")
    stateful = [n for n, node in graph.nodes.items() if node.stateful or any(e.recurrent for e in graph.in_edges(n))]
    if stateful:
        raise PassError(f"exact-spiking takes a quantized ANN; {graph.describe(stateful[0])} is stateful or recurrent")
    plan = lowering_plan(graph)
    if not plan["neurons"]:
        raise PassError("exact-spiking found no Quantize node: run quantize-activations first (nothing would spike)")
    b = _Builder(graph)
    for name in plan["neurons"]:
        q = graph.nodes[name]
        assert isinstance(q, exact.Quantize)
        b.nodes[name] = exact.STBIF(v_threshold=q.step, lo=q.lo, hi=q.hi, max_spikes=max_spikes, origin=q.origin)
    raw: set[Edge] = set()
    for name in graph.nodes:
        into = graph.in_edges(name)
        slots = _constant_inputs(graph, name) if name in plan["wrapped"] else raw_constant_edges(graph, name)
        raw |= {into[k] for k in slots}
    for name in plan["split_bias"]:
        _split_offset(b, graph, name)
    for name in plan["absorbed"]:
        b.nodes[name] = ann.Identity(origin=graph.nodes[name].origin)
    for name in plan["wrapped"]:
        _wrap(b, graph, name, _constant_inputs(graph, name))
    for name in graph.inputs:
        b.after(name, f"{name}.delta", exact.Difference(origin=graph.nodes[name].origin))
    for name in [n for n in b.layout() if isinstance(b.nodes[n], tensor.Constant)]:
        out = [b.edges[i] for i in b.out_positions(name)]
        once = {k for k, e in enumerate(out) if e not in raw}
        if once:
            b.after(name, f"{name}.once", exact.Difference(origin=b.nodes[name].origin), only=once)
    return PassResult(b.graph(graph.dt), True)


def _constant_inputs(graph: Graph, name: str) -> set[int]:
    """Positions of the edges into ``name`` that come straight from a Constant."""
    return {k for k, e in enumerate(graph.in_edges(name)) if isinstance(graph.nodes[e.src], tensor.Constant)}
