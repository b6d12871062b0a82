"""``output-softmax``: a ``Softmax``/``LogSoftmax`` at a graph output becomes decoding on the host.

A classifier's final (log-)softmax is monotone along its axis, so the argmax of the scores before it is
the argmax after it: the network that runs spiking ends at the scores (logits), and the host applies
the (log-)softmax to them when it wants probabilities. A (log-)softmax counts as "at an output" when
every path from it reaches a graph output through shape-only kinds (``Reshape``, ``Flatten``,
``Identity``); such a node is removed and listed in the result (``HostDecodingResult.decoded``: node,
kind, origin, axis, output), which conversion reports record as host-side decoding. A softmax anywhere
else is left in place (it is part of what the network computes). Exact in the argmax; the graph's
output values change from probabilities to scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spikec.ir import ann, tensor
from spikec.ir.graph import Graph
from spikec.passes._graphedit import bypass
from spikec.pipeline import PassResult

SOFTMAXES = (tensor.Softmax, tensor.LogSoftmax)
SHAPE_ONLY = (ann.Reshape, ann.Flatten, ann.Identity)


@dataclasses.dataclass(frozen=True)
class HostDecodingResult(PassResult):
    decoded: tuple[dict[str, Any], ...] = ()


def _output_reached(graph: Graph, name: str) -> str | None:
    """The graph output every path from ``name`` reaches through shape-only kinds, or None."""
    consumers = [e.dst for e in graph.out_edges(name)]
    if len(consumers) != 1 or any(e.recurrent for e in graph.out_edges(name)):
        return None
    (dst,) = consumers
    node = graph.nodes[dst]
    if node.sink:
        return dst
    return _output_reached(graph, dst) if isinstance(node, SHAPE_ONLY) else None


def output_softmax(graph: Graph) -> HostDecodingResult:
    """Drop each Softmax/LogSoftmax that only feeds a graph output (host-side decoding; argmax unchanged)."""
    decoded = []
    for name in [n for n, node in graph.nodes.items() if isinstance(node, SOFTMAXES)]:
        output = _output_reached(graph, name)
        if output is None or len(graph.in_edges(name)) != 1:
            continue
        node = graph.nodes[name]
        decoded.append({"node": name, "kind": node.kind, "origin": node.origin, "axis": node.axis, "output": output})  # type: ignore[attr-defined]
        graph = bypass(graph, name)
    return HostDecodingResult(graph, bool(decoded), tuple(decoded))
