"""``compensate-attention``: each ``SpikingSelfAttention`` of an SNN → ``CompensatedSpikingSelfAttention``.

Same heads and scale; the per-step product of spike trains becomes the increment of the product of
spike counts, so the attention's mean output is exactly the attention of its inputs' mean rates
(spikec/ir/attention_rate.py). Run after rate conversion (``spikec.convert_binary``,
``attention="compensated"``); an ANN's SSA (one step, no counts to keep) is the same either way.
"""

from __future__ import annotations

from spikec.ir.attention import SpikingSelfAttention
from spikec.ir.attention_rate import CompensatedSpikingSelfAttention
from spikec.ir.graph import Graph
from spikec.passes._graphedit import replace_nodes
from spikec.pipeline import PassResult


def compensate_attention(graph: Graph) -> PassResult:
    """SpikingSelfAttention → CompensatedSpikingSelfAttention (products of counts, exact in the mean)."""
    changes = {
        name: CompensatedSpikingSelfAttention(heads=node.heads, scale=node.scale, origin=node.origin)
        for name, node in graph.nodes.items()
        if type(node) is SpikingSelfAttention
    }
    return PassResult(replace_nodes(graph, dict(changes)) if changes else graph, bool(changes))
