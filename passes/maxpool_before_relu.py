"""``maxpool-before-relu``: ``ReLU -> MaxPool`` becomes ``MaxPool -> ReLU`` (exact), so after ``relu-to-if``
the max is taken over the neurons' input currents instead of over their spikes.

``max(relu(x)) = relu(max(x))`` because ReLU is non-decreasing, so the ANN is unchanged bit for bit (also
for a max ``Pool`` of any pads, dilation and ceil mode: its padding never wins).
In the SNN the IF then integrates, per step, the largest input current of its window. With direct
(analog) input the first layer's currents are constant and its pooling is exact; deeper, where
currents fluctuate from step to step, the max of the currents over-estimates the max of their means
a little. Max-pooling the spikes instead (leaving MaxPool after the IF) passes a spike whenever any
neuron of the window fires, which over-estimates far more: docs/conversion.md gives both errors.
"""

from __future__ import annotations

from spikec.ir import ann, spatial
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.passes._graphedit import single_consumer, single_input, swap, untouched_by_recurrence
from spikec.pipeline import PassResult


def _relu_before(graph: Graph, name: str) -> str | None:
    src = single_input(graph, name)
    if src is None or not isinstance(graph.nodes[src], ann.ReLU) or single_consumer(graph, src) != name:
        return None
    return src if untouched_by_recurrence(graph, src) and untouched_by_recurrence(graph, name) else None


def _is_max_pool(node: Node) -> bool:
    """MaxPool, or a max ``Pool`` of any pads, dilation and ceil mode (its padding never wins either way)."""
    return isinstance(node, ann.MaxPool) or (isinstance(node, spatial.Pool) and node.mode == "max")


def maxpool_before_relu(graph: Graph) -> PassResult:
    """Move each MaxPool that follows a ReLU in front of it (pool the currents, not the spikes); exact."""
    changed = False
    for name in [n for n, node in graph.nodes.items() if _is_max_pool(node)]:
        relu = _relu_before(graph, name)
        if relu is not None:
            graph, changed = swap(graph, relu, name), True
    return PassResult(graph, changed)
