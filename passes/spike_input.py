"""``spike-input``: a ReLU after each graph input, so rate conversion makes it an IF encoding layer.

For non-negative inputs (pixels in [0, 1]) ``ReLU(x) = x``: the ANN is unchanged. ``threshold-balance``
gives the ReLU the input's scale λ and ``relu-to-if`` an IF with threshold 1, so the input enters as a
constant current into IF neurons and the first layer reads their 0/1 spikes (rate x/λ, deterministic;
``encode-input{mode=poisson}`` draws random ones instead). Inputs that already feed only a ReLU are left alone.
"""

from __future__ import annotations

from spikec.ir import ann
from spikec.ir.graph import Graph
from spikec.passes._graphedit import fresh_name, insert_after
from spikec.pipeline import PassResult


def spike_input(graph: Graph) -> PassResult:
    """Insert ReLU after each graph input (identity on non-negative data; becomes the IF encoding layer)."""
    changed = False
    for name in graph.inputs:
        consumers = [e.dst for e in graph.out_edges(name)]
        if consumers and all(isinstance(graph.nodes[c], ann.ReLU) for c in consumers):
            continue
        node = ann.ReLU(origin=graph.nodes[name].origin)
        graph = insert_after(graph, name, fresh_name(graph, f"{name}.spikes"), node)
        changed = True
    return PassResult(graph, changed)
