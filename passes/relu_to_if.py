"""``relu-to-if``: every ReLU becomes an integrate-and-fire neuron with reset by subtraction.

Rate coding: fed a constant current ``c ≥ 0`` per step, an ``IF(v_threshold=θ, reset=subtract)``
starting at ``v_init`` fires ``N_T`` times in ``T`` steps with ``N_T·θ = T·c + v_init − v_T`` and
``v_T`` in ``(−∞, θ]``, so its rate times θ approximates ``min(relu(c), θ)`` to within ``θ/T``
(``θ/(2T)`` with ``init-membrane``'s ``v_init = θ/2``). After ``threshold-balance`` the thresholds are
1 (``threshold=1``) and a neuron firing every step stands for its layer's activation scale λ.
Subtraction keeps the residue above threshold (reset to zero would lose it). Not exact: within the
bound above per layer for constant input; across layers the error compounds (docs/conversion.md).
Signed layers (an output layer without ReLU) are lowered by ``decode-output{mode=spikes}`` to bipolar IFs.
"""

from __future__ import annotations

import numpy as np

from spikec.errors import PassError
from spikec.ir import ann, snn
from spikec.ir.graph import Graph
from spikec.passes._graphedit import replace_nodes
from spikec.pipeline import PassResult


def relu_to_if(graph: Graph, *, threshold: float = 1.0, reset: str = "subtract") -> PassResult:
    """ReLU → IF(v_threshold=threshold, reset=subtract|value|none); rate·θ ≈ min(relu(x), θ) within θ/T."""
    if reset not in {r.value for r in snn.Reset}:
        raise PassError(f"reset={reset!r} is not one of {[r.value for r in snn.Reset]}")
    if not threshold > 0:
        raise PassError(f"threshold={threshold} must be > 0")
    neurons = {
        name: snn.IF(v_threshold=np.asarray(threshold), reset=reset, origin=node.origin)
        for name, node in graph.nodes.items()
        if isinstance(node, ann.ReLU)
    }
    return PassResult(replace_nodes(graph, dict(neurons)) if neurons else graph, bool(neurons))
