"""``rate-maxpool``: MaxPool → RateMaxPool, max-pooling of accumulated spike counts (exact in count).

Max-pooling spikes step by step passes a spike whenever any neuron of the window fires, so the
output rate approaches the rate of "any of them" rather than that of the fastest (Rueckauer et al.
2017 measured large losses). ``RateMaxPool`` instead emits the growth of the largest running count
in each window: after ``t`` steps its output has fired exactly ``max_k N_k(t)`` times, the count of
the window's most active neuron, and each step's output is still 0 or 1. So pooling adds no error
of its own in rate: the output stands for ``max_k rate_k · θ``, the quantised ANN max.

Run it on the spiking graph (after ``relu-to-if``): it makes the graph stateful. docs/conversion.md
compares it with max-pooling the spikes and with pooling the currents (``maxpool-before-relu``).
"""

from __future__ import annotations

from spikec.ir import ann, snn
from spikec.ir.graph import Graph
from spikec.passes._graphedit import replace_nodes
from spikec.pipeline import PassResult


def rate_maxpool(graph: Graph) -> PassResult:
    """MaxPool → RateMaxPool (output count = max count in the window); exact in spike count."""
    changes = {
        name: snn.RateMaxPool(
            kernel_size=node.kernel_size, stride=node.stride, padding=node.padding, origin=node.origin
        )
        for name, node in graph.nodes.items()
        if isinstance(node, ann.MaxPool)
    }
    return PassResult(replace_nodes(graph, dict(changes)) if changes else graph, bool(changes))
