"""``relu-to-if``: every ReLU becomes an integrate-and-fire neuron with reset by subtraction.

Rate coding: fed a constant current ``c ≥ 0`` per step, an ``IF(v_threshold=θ, reset=subtract)``
starting at ``v_init`` fires ``N_T`` times in ``T`` steps with ``N_T·θ = T·c + v_init − v_T`` and
``v_T`` in ``(−∞, θ]``, so its rate times θ approximates ``min(relu(c), θ)`` to within ``θ/T``
(``θ/(2T)`` with ``init-membrane``'s ``v_init = θ/2``). After ``threshold-balance`` the thresholds are
1 (``threshold=1``) and a neuron firing every step stands for its layer's activation scale λ.
Subtraction keeps the residue above threshold (reset to zero would lose it). Not exact: within the
bound above per layer for constant input; across layers the error compounds (docs/conversion.md).
Signed layers (an output layer without ReLU) are lowered by ``decode-output{mode=spikes}`` to bipolar IFs.
A clipped ReLU ``Clip(0, c)`` with ``c ≥ threshold`` (ReLU6 after ``threshold-balance``: ``c/λ ≥ 1``) becomes
the same IF: its rate never exceeds one spike per step, so it clips at θ ≤ c by itself.

``reset=value`` (reset to zero, as some chips do) drops the residue ``v − θ`` at each spike: fed
``c`` per step from ``v = 0`` the neuron fires every ``⌊θ/c⌋ + 1`` steps, so its rate is
``1/(⌊θ/c⌋ + 1) ≤ c/θ`` (about ``c/(θ + c/2)``); docs/conversion.md measures it and the threshold correction
(``residue-threshold``) that compensates it.
"""

from __future__ import annotations

import numpy as np

from spikec.errors import PassError
from spikec.ir import ann, snn
from spikec.ir.graph import Graph
from spikec.passes._graphedit import replace_nodes
from spikec.passes.threshold_balance import is_activation
from spikec.pipeline import PassResult


def relu_to_if(graph: Graph, *, threshold: float = 1.0, reset: str = "subtract") -> PassResult:
    """ReLU, Clip(0, c ≥ θ) → IF(v_threshold=threshold, reset=subtract|value|none); rate·θ ≈ min(relu(x), θ)."""
    if reset not in {r.value for r in snn.Reset}:
        raise PassError(f"reset={reset!r} is not one of {[r.value for r in snn.Reset]}")
    if not threshold > 0:
        raise PassError(f"threshold={threshold} must be > 0")
    neurons = {
        name: snn.IF(v_threshold=np.asarray(threshold), reset=reset, origin=node.origin)
        for name, node in graph.nodes.items()
        if is_activation(node)
    }
    for name in neurons:
        node = graph.nodes[name]
        if isinstance(node, ann.Clip) and node.max < threshold:
            raise PassError(
                f"{graph.describe(name)} clips at {node.max:g}, below the IF threshold {threshold:g}: an IF cannot "
                "clip lower than its threshold; run threshold-balance first (it scales the clip to c/λ ≥ 1)"
            )
    return PassResult(replace_nodes(graph, dict(neurons)) if neurons else graph, bool(neurons))
