"""``inline-subgraphs``: expand every Subgraph node into its parent (names become ``outer.inner``)."""

from __future__ import annotations

from spikec.ir.graph import Graph
from spikec.pipeline import PassResult


def inline_subgraphs(graph: Graph) -> PassResult:
    """Expand nested graphs in place; exact (the interpreter runs the inlined form anyway)."""
    inlined = graph.inline_subgraphs()
    return PassResult(inlined, inlined is not graph)
