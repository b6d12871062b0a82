"""``init-membrane``: start every IF's membrane at a fraction of its threshold (QCFS's θ/2).

With ``v_init = 0`` a rate-coded IF truncates: a constant input ``c`` gives ``⌊T·c/θ⌋`` spikes in ``T``
steps, so every layer under-estimates by θ/(2T) on average and deep networks lose that bias layer
after layer. Starting at ``θ/2`` turns truncation into rounding, ``N_T = round(T·c/θ)``: the error
bound halves to θ/(2T) and its mean goes to zero (Bu et al., QCFS, ICLR 2022). Bipolar IFs keep
``v_init = 0`` unless ``bipolar=true`` (their truncation towards zero is already symmetric). Not exact:
it changes the spike counts by design, within the bound above for constant input.
"""

from __future__ import annotations

import numpy as np

from spikec.errors import PassError
from spikec.ir import snn
from spikec.ir.graph import Graph
from spikec.passes._graphedit import replace_nodes
from spikec.pipeline import PassResult


def init_membrane(graph: Graph, *, fraction: float = 0.5, bipolar: bool = False) -> PassResult:
    """Set each IF's v_init = fraction·v_threshold (QCFS: 0.5); rounding instead of truncating rates."""
    if not 0.0 <= fraction < 1.0:
        raise PassError(f"fraction={fraction} must be in [0, 1)")
    changes = {
        name: node.replace(v_init=fraction * np.asarray(node.v_threshold, np.float64))
        for name, node in graph.nodes.items()
        if isinstance(node, snn.IF) and (bipolar or node.polarity == snn.Polarity.UNIPOLAR)
    }
    return PassResult(replace_nodes(graph, changes) if changes else graph, bool(changes))
