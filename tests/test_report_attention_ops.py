"""The attention's synaptic operations (spikec.report.attention_ops) against hand counts: Spikformer's SSA (Q·Kᵀ
then ·V) and SDSA's column sum, measured by the interpreter on tiny graphs, and a Spikformer block's
attention priced by the 45 nm model."""

from __future__ import annotations

import numpy as np
import pytest

from spikec.blocks import BlockWeights, spikformer_block
from spikec.ir.attention import HadamardColumnSum, SpikingSelfAttention
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.ir.structure import Input, Output
from spikec.report.energy import E_AC_PJ, E_MAC_PJ, literature_45nm
from spikec.report.metrics import measure

Q = [[1, 0], [1, 1]]
K = [[1, 1], [0, 1]]
V = [[1, 0], [0, 1]]


def _graph(node: Node, operands: str) -> Graph:
    nodes: dict[str, Node] = {name: Input(shape=(2, 2)) for name in operands}
    nodes["att"], nodes["out"] = node, Output()
    return Graph(nodes, [*((name, "att") for name in operands), ("att", "out")])


def _trains(steps: int, samples: int, **values: list[list[float]]) -> dict[str, np.ndarray]:
    return {
        name: np.broadcast_to(np.asarray(v, np.float64), (steps, samples, 2, 2)).copy() for name, v in values.items()
    }


def _layer(graph: Graph, trains: dict[str, np.ndarray]) -> dict[str, float]:
    (layer,) = measure(graph, trains).to_json()["synapse_layers"]
    assert (layer["name"], layer["weights"], layer["connection_sparsity"]) == ("att", 0, None)
    return layer


@pytest.mark.parametrize("heads", [1, 2])
def test_ssa_counts_both_products_on_spikes_as_accumulates(heads: int) -> None:
    # Q·Kᵀ: pairs (i, j, c) with q_ic = k_jc = 1: (0,0,0), (1,0,0), (1,0,1), (1,1,1) -> 4 of N·N·D = 8.
    # One head: S = [[1, 0], [2, 1]]; its 3 nonzero scores times V's row nonzeros (1 each) -> 3 of 8.
    # Two heads (one channel each): S_0 = [[1, 0], [1, 0]] meets V_0 = [1, 0] twice, S_1 = [[0, 0], [1, 1]]
    # meets V_1 = [0, 1] once -> 3. V is spikes, so both products are ACs.
    layer = _layer(_graph(SpikingSelfAttention(heads=heads), "qkv"), _trains(3, 2, q=Q, k=K, v=V))
    assert layer["dense"] == 3 * (8 + 8)  # per sample, over 3 steps
    assert (layer["effective_macs"], layer["effective_acs"]) == (0, 3 * (4 + 3))


def test_ssa_product_of_two_non_spike_operands_is_a_mac() -> None:
    # Q and K graded: Q·Kᵀ is 4 MACs; S = [[1, 0], [1.5, 1]] times the spikes V is 3 ACs.
    q, k = [[2.0, 0.0], [1.0, 1.0]], [[0.5, 1.0], [0.0, 1.0]]
    layer = _layer(_graph(SpikingSelfAttention(heads=1), "qkv"), _trains(1, 1, q=q, k=k, v=V))
    assert (layer["dense"], layer["effective_macs"], layer["effective_acs"]) == (16, 4, 3)


def test_sdsa_column_sum_counts_the_positions_both_operands_fire() -> None:
    layer = _layer(_graph(HadamardColumnSum(), "ab"), _trains(2, 1, a=Q, b=K))  # both 1 at (0,0), (1,1)
    assert (layer["dense"], layer["effective_macs"], layer["effective_acs"]) == (2 * 4, 0, 2 * 2)


def test_spikformer_block_prices_its_attention() -> None:
    rng = np.random.default_rng(0)
    tokens, dim, steps = 3, 4, 2
    graph = spikformer_block(BlockWeights.random(rng, dim, 8), tokens=tokens, heads=2)
    spikes = (rng.random((steps, 2, tokens, dim)) < 0.5).astype(np.float64)
    metrics = measure(graph, {"x": spikes}).to_json()
    ssa = next(s for s in metrics["synapse_layers"] if s["name"] == "ssa")
    assert ssa["kind"] == "SpikingSelfAttention"
    assert ssa["dense"] == steps * 2 * tokens * tokens * dim  # Q·Kᵀ and ·V: N²D each, every step
    assert ssa["effective_macs"] == 0  # products of spikes
    lit = literature_45nm(metrics)
    priced = next(x for x in lit["layers"] if x["name"] == "ssa")
    assert priced["picojoules"] == pytest.approx(E_AC_PJ * ssa["effective_acs"] + E_MAC_PJ * 0)
    assert lit["picojoules"] == pytest.approx(sum(x["picojoules"] for x in lit["layers"]))
