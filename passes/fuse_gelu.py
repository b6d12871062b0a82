"""``fuse-gelu``: rebuild the erf GELU that exporters write out op by op into one ``GELU`` node (exact).

ONNX before opset 20 has no Gelu, so torch exports ``F.gelu`` as

    x → Div(√2) → Erf → Add(1) → Mul(x) → Mul(0.5)      (the 0.5 may come first, on either operand)

which the front end imports as Scale(1/√2) → Unary(erf) → Bias(1) → Binary(mul) with Scales of
0.5 somewhere on the way. The pass finds each ``Unary(erf)`` whose input is ``c·x`` with
``c = 1/√2``, follows it through ``+1`` and scalar Scales to a ``Binary(mul)`` whose other operand
is ``x`` (possibly scaled), checks that the scalars multiply to ½, and replaces the product by
``GELU(x)`` = ``x/2 · (1 + erf(x/√2))``. The intermediate nodes go when nothing else reads them.

Why it matters: the exact path quantizes the output of every non-additive op, so the decomposed
form costs four quantizers (x/√2, erf, the product, and x) where ``GELU`` costs two, and the
product of two activations is a Σ→f→Δ host node instead of one elementwise map.
"""

from __future__ import annotations

import math

import numpy as np

from spikec.ir import tensor
from spikec.ir.ann import Scale
from spikec.ir.graph import Edge, Graph
from spikec.passes._graphedit import single_consumer, single_input
from spikec.pipeline import PassResult

RTOL = 1e-6


def _scalar(value: object) -> float | None:
    a = np.asarray(value)
    return float(a.reshape(-1)[0]) if a.size == 1 else None


def _strip_scales(graph: Graph, name: str) -> tuple[str, float, list[str]]:
    """Walk up from ``name`` through scalar Scales: the node reached, the product of the scales, the Scales."""
    factor, passed = 1.0, list[str]()
    node = graph.nodes[name]
    while isinstance(node, Scale) and (c := _scalar(node.scale)) is not None:
        src = single_input(graph, name)
        if src is None:
            break
        factor, passed, name = factor * c, [*passed, name], src
        node = graph.nodes[name]
    return name, factor, passed


def _follow_scales(graph: Graph, name: str) -> tuple[str | None, float, list[str]]:
    """Walk down from ``name`` through single-consumer scalar Scales to the next node."""
    factor, passed = 1.0, list[str]()
    nxt = single_consumer(graph, name)
    while nxt is not None and isinstance(scale := graph.nodes[nxt], Scale) and (c := _scalar(scale.scale)) is not None:
        factor, passed, name = factor * c, [*passed, nxt], nxt
        nxt = single_consumer(graph, name)
    return nxt, factor, passed


def _match(graph: Graph, erf: str) -> tuple[str, str, list[str]] | None:
    """(x, the product node, nodes to drop) when ``erf`` is the core of an erf GELU, else None."""
    if not (isinstance(graph.nodes[erf], tensor.Unary) and graph.nodes[erf].op == "erf"):  # type: ignore[attr-defined]
        return None
    src = single_input(graph, erf)
    if src is None:
        return None
    x, inner, inner_scales = _strip_scales(graph, src)
    if not inner_scales or not math.isclose(inner, 1 / math.sqrt(2), rel_tol=RTOL):
        return None
    one = single_consumer(graph, erf)
    if one is None or not isinstance(graph.nodes[one], tensor.Bias) or _scalar(graph.nodes[one].bias) != 1.0:  # type: ignore[attr-defined]
        return None
    product, outer, outer_scales = _follow_scales(graph, one)
    node = graph.nodes.get(product) if product is not None else None
    if product is None or not (isinstance(node, tensor.Binary) and node.op == "mul"):
        return None
    operands = [e.src for e in graph.in_edges(product)]
    chain = outer_scales[-1] if outer_scales else one
    if len(operands) != 2 or operands.count(chain) != 1:
        return None
    other = operands[1 - operands.index(chain)]
    base, half, half_scales = _strip_scales(graph, other)
    if base != x or not math.isclose(outer * half, 0.5, rel_tol=RTOL):
        return None
    if any(len(graph.out_edges(s)) != 1 for s in half_scales):
        return None
    return x, product, [*inner_scales, erf, one, *outer_scales, *half_scales]


def fuse_gelu_graph(graph: Graph) -> tuple[Graph, int]:
    """Every erf GELU pattern → one ``GELU``; returns the graph and how many were fused."""
    matches = [m for name in graph.order if (m := _match(graph, name)) is not None]
    if not matches:
        return graph, 0
    nodes = dict(graph.nodes)
    drop: set[str] = set()
    rewired: dict[str, str] = {}
    for x, product, chain in matches:
        nodes[product] = tensor.GELU(approximate="none", origin=graph.nodes[product].origin)
        rewired[product] = x
        drop |= {n for n in chain if all(e.dst in chain or e.dst == product for e in graph.out_edges(n))}
    edges = [e for e in graph.edges if e.dst not in rewired and e.src not in drop and e.dst not in drop]
    edges += [Edge(x, product) for product, x in rewired.items()]
    fused = Graph({k: v for k, v in nodes.items() if k not in drop}, edges, dt=graph.dt)
    return fused, len(matches)


def fuse_gelu(graph: Graph) -> PassResult:
    """Replace exported ``x·½·(1 + erf(x/√2))`` chains by ``GELU(x)``; exact up to float rounding."""
    fused, count = fuse_gelu_graph(graph)
    return PassResult(fused, count > 0)
