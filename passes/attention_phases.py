r"""``attention-phases``: random initial membranes for the IF neurons that feed a ``SpikingSelfAttention``.

Rate conversion starts every IF at the same fraction of its threshold (``init-membrane``), so neurons
with similar inputs fire in lock-step. That is harmless for a layer (linear in each input's count)
but not for attention, which multiplies spike trains *per step*: for two trains of rate r in phase,
:math:`\overline{q_t k_t} = r` instead of :math:`r^2`, and the SNN's attention overshoots the
ANN's by about 1/r. With independent uniform phases, :math:`v_{init} = u\,v_{th}`,
:math:`u \sim U[0, 1)`, each regular train is shifted by a random fraction of its period, so
:math:`\mathbb{E}_u[\overline{q_t k_t v_t}] = \bar q\,\bar k\,\bar v` for distinct neurons (the
product of rates), at the price of variance. Seeded: ``seed`` and the node's name fix the draws.
benchmarks/vit/README.md measures both settings.
"""

from __future__ import annotations

import zlib

import numpy as np

from spikec.ir import snn
from spikec.ir.graph import Graph
from spikec.passes._graphedit import replace_nodes
from spikec.pipeline import PassResult


def attention_phases(graph: Graph, *, seed: int = 0) -> PassResult:
    """v_init = U[0, 1)·v_threshold (seeded per neuron) for every IF feeding a SpikingSelfAttention."""
    changes = {}
    for name, node in graph.nodes.items():
        if node.kind != "SpikingSelfAttention":
            continue
        for edge in graph.in_edges(name):
            src = graph.nodes[edge.src]
            if isinstance(src, snn.IF) and edge.src not in changes:
                rng = np.random.default_rng([seed, zlib.crc32(edge.src.encode())])
                u = rng.random(graph.types[edge.src])
                changes[edge.src] = src.replace(v_init=u * np.asarray(src.v_threshold, np.float64))
    return PassResult(replace_nodes(graph, changes) if changes else graph, bool(changes))
