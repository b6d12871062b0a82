"""``decode-output``: give each graph output a neuron to read the SNN's answer from.

The last layer of a classifier has no ReLU: its values are signed. Two readouts:

- ``mode=membrane`` (default): a non-spiking integrator ``I`` (``v ← v + x``) accumulates the last
  layer's current; the answer after ``T`` steps is ``v/T``, the mean of the last layer's input over
  time. Exact for what reaches it: no quantisation at the output.
- ``mode=spikes``: a bipolar IF (``+1`` above θ, ``−1`` below −θ, reset by subtraction) turns the
  signed value into spikes; the answer is ``Σ z · θ / T`` (the spike count's rate), quantised to θ/T.
  Balance the outputs first (``threshold-balance{outputs=true}``) so ``threshold=1`` fits.

The neuron goes after the last layer and in front of any trailing ``Scale`` (a scale restoring the
outputs after balancing keeps its meaning). An output already fed by a neuron is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spikec.errors import PassError
from spikec.ir import ann, snn
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.passes._graphedit import fresh_name, insert_before, single_input
from spikec.pipeline import PassResult

READOUTS: dict[str, Callable[[float, str], Node]] = {
    "membrane": lambda threshold, origin: snn.I(origin=origin),
    "spikes": lambda threshold, origin: snn.IF(
        v_threshold=np.asarray(threshold), reset="subtract", polarity="bipolar", origin=origin
    ),
}


def _anchor(graph: Graph, output: str) -> str:
    """The node to put the readout in front of: the output, or the first of its trailing Scales."""
    name = output
    while (src := single_input(graph, name)) is not None and isinstance(graph.nodes[src], ann.Scale):
        name = src
    return name


def decode_output(graph: Graph, *, mode: str = "membrane", threshold: float = 1.0) -> PassResult:
    """Readout neuron per output: mode=membrane (integrator I, answer v/T) or spikes (bipolar IF, answer Σz·θ/T)."""
    if mode not in READOUTS:
        raise PassError(f"mode={mode!r} is not one of {list(READOUTS)}")
    if not threshold > 0:
        raise PassError(f"threshold={threshold} must be > 0")
    changed = False
    for output in graph.outputs:
        anchor = _anchor(graph, output)
        srcs = [e.src for e in graph.in_edges(anchor)]
        if len(srcs) == 1 and graph.nodes[srcs[0]].stateful:
            continue  # already a neuron
        node = READOUTS[mode](threshold, graph.nodes[output].origin)
        graph = insert_before(graph, anchor, fresh_name(graph, f"{output}.readout"), node)
        changed = True
    return PassResult(graph, changed)
