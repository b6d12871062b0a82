"""The spiking-attention kinds against independent numpy references, their checks, the .sir round
trip, the stochastic kind's expectation, and the transformer blocks of spikec.blocks run for T=4."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spikec.blocks import BlockWeights, spike_driven_block, spikformer_block, stack
from spikec.errors import VerifyError
from spikec.interp import run
from spikec.ir import (
    Graph,
    HadamardColumnSum,
    Input,
    Node,
    Output,
    SpikingSelfAttention,
    StochasticSpikingAttention,
)
from spikec.text import parse_graph, to_text

N, D = 6, 8


def _three_input(node: Node, shapes: tuple[tuple[int, int], ...] = ((N, D),) * 3) -> Graph:
    names = ["q", "k", "v"][: len(shapes)]
    nodes: dict[str, Node] = {n: Input(shape=s) for n, s in zip(names, shapes, strict=True)}
    nodes |= {"att": node, "out": Output()}
    return Graph(nodes, [*[(n, "att") for n in names], ("att", "out")])


def _spikes(rng: np.random.Generator, shape: tuple[int, ...], p: float = 0.4) -> np.ndarray:
    return (rng.random(shape) < p).astype(np.float64)


def ssa_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, scale: float) -> np.ndarray:
    """Loop over samples and heads: Q_h K_hᵀ V_h · s, heads side by side (as Spikformer's reshape does)."""
    out = np.zeros_like(q)
    dh = q.shape[-1] // heads
    for index in np.ndindex(q.shape[:-2]):
        for h in range(heads):
            cols = slice(h * dh, (h + 1) * dh)
            out[(*index, slice(None), cols)] = (q[index][:, cols] @ k[index][:, cols].T @ v[index][:, cols]) * scale
    return out


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_spiking_self_attention_matches_reference(backend: str, heads: int) -> None:
    rng = np.random.default_rng(heads)
    q, k, v = (_spikes(rng, (3, 2, N, D)) for _ in range(3))
    graph = _three_input(SpikingSelfAttention(heads=heads, scale=0.125))
    got = run(graph, {"q": q, "k": k, "v": v}, backend=backend).outputs["out"]
    np.testing.assert_allclose(got, ssa_reference(q, k, v, heads, 0.125), rtol=0, atol=1e-12)
    assert np.all(got * 8 == np.round(got * 8))  # a count times 1/8: exact


def test_cross_attention_takes_other_query_tokens() -> None:
    rng = np.random.default_rng(7)
    q, k, v = _spikes(rng, (2, 1, 3, D)), _spikes(rng, (2, 1, N, D)), _spikes(rng, (2, 1, N, D))
    graph = _three_input(SpikingSelfAttention(heads=2, scale=1.0), ((3, D), (N, D), (N, D)))
    assert graph.types["att"] == (3, D)
    got = run(graph, {"q": q, "k": k, "v": v}).outputs["out"]
    np.testing.assert_array_equal(got, ssa_reference(q, k, v, 2, 1.0))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_hadamard_column_sum_counts_coincidences(backend: str) -> None:
    rng = np.random.default_rng(3)
    a, b = _spikes(rng, (4, 2, N, D)), _spikes(rng, (4, 2, N, D))
    graph = _three_input(HadamardColumnSum(), ((N, D), (N, D)))
    assert graph.types["att"] == (1, D)
    got = run(graph, {"q": a, "k": b}, backend=backend).outputs["out"]
    expected = np.array([[[[sum(a[t, s, n, d] * b[t, s, n, d] for n in range(N)) for d in range(D)]] for s in range(2)]
                         for t in range(4)])  # fmt: skip
    np.testing.assert_array_equal(got, expected)


def test_sdsa_block_is_column_sum_lif_and_mask() -> None:
    """SDSA = Q ⊗ SN(SUM_c(K ⊗ V)) with SN an LIF (τ = 2 steps, v_th 0.5) that keeps its membrane across steps."""
    rng = np.random.default_rng(11)
    w = BlockWeights.random(rng, D, 2 * D)
    block = spike_driven_block(w, tokens=N, heads=2, attention="sdsa")
    result = run(block, rng.normal(0.5, 1.0, size=(6, 2, N, D)), trace=["q_lif", "k_lif", "v_lif", "kv_lif", "sdsa"])
    q, k, v = (result.traces[n] for n in ("q_lif", "k_lif", "v_lif"))
    mem = np.zeros((2, 1, D))
    for t in range(6):
        mem = mem + ((k[t] * v[t]).sum(axis=1, keepdims=True) - mem) / 2.0
        fired = (mem > 0.5).astype(np.float64)
        mem = np.where(fired > 0, 0.0, mem)
        np.testing.assert_array_equal(result.traces["kv_lif"][t], fired)
        np.testing.assert_array_equal(result.traces["sdsa"][t], q[t] * fired)
    assert 0 < result.traces["kv_lif"].mean() < 1 and result.traces["sdsa"].any()


@pytest.mark.parametrize(
    ("node", "shapes", "message"),
    [
        (SpikingSelfAttention(heads=3), ((N, D),) * 3, "heads=3 does not divide the 8 channels"),
        (SpikingSelfAttention(), ((N, D), (N, D + 1), (N, D)), "same channels"),
        (SpikingSelfAttention(), ((N, D), (N, D), (N + 1, D)), "same tokens"),
        (StochasticSpikingAttention(heads=5), ((N, D),) * 3, "heads=5 does not divide"),
        (StochasticSpikingAttention(), ((N, D), (N + 1, D), (N, D)), "same shape"),
        (HadamardColumnSum(), ((N, D), (N, 2 * D)), "same shape"),
    ],
)
def test_shape_errors_name_the_node(node: Node, shapes: tuple[tuple[int, int], ...], message: str) -> None:
    with pytest.raises(VerifyError, match=message) as err:
        _three_input(node, shapes)
    assert "'att'" in str(err.value)


def test_wrong_operand_count_and_bad_fields() -> None:
    with pytest.raises(VerifyError, match=r"exactly 3 inputs \(Q, K, V\)"):
        _three_input(SpikingSelfAttention(), ((N, D), (N, D)))
    with pytest.raises(VerifyError, match="tokens, channels"):
        _three_input(HadamardColumnSum(), ((D,), (D,)))
    with pytest.raises(VerifyError, match="heads=0 must be >= 1"):
        SpikingSelfAttention(heads=0).verify("a")
    with pytest.raises(VerifyError, match="scale=inf must be finite"):
        SpikingSelfAttention(scale=math.inf).verify("a")
    with pytest.raises(VerifyError, match="seed=-1"):
        StochasticSpikingAttention(seed=-1).verify("a")


def test_sir_round_trip_of_every_attention_kind() -> None:
    rng = np.random.default_rng(0)
    w = BlockWeights.random(rng, D, 2 * D)
    for graph in [
        _three_input(SpikingSelfAttention(heads=4, scale=0.25, origin="blk.attn")),
        _three_input(StochasticSpikingAttention(heads=2, seed=42)),
        _three_input(HadamardColumnSum(), ((N, D), (N, D))),
        spike_driven_block(w, tokens=N, heads=2, attention="sdsa"),
    ]:
        text = to_text(graph)
        back = parse_graph(text)
        assert to_text(back) == text
        assert back.nodes == graph.nodes and back.edges == graph.edges


def _stochastic_run(q: np.ndarray, k: np.ndarray, v: np.ndarray, steps: int, heads: int, backend: str) -> np.ndarray:
    graph = _three_input(StochasticSpikingAttention(heads=heads, seed=2024))
    feeds = {n: np.broadcast_to(a, (steps, *a.shape)).copy() for n, a in zip("qkv", (q, k, v), strict=True)}
    return run(graph, feeds, backend=backend).outputs["out"]


def test_stochastic_attention_expectation_is_the_rate_product() -> None:
    """E[y] = Q_h K_hᵀ V_h / (N d_h): every element's mean over T steps lies within 4.5 binomial
    standard errors of it (the draws of different steps are independent)."""
    rng = np.random.default_rng(5)
    heads, steps = 2, 1500
    q, k, v = (rng.uniform(0.2, 1.0, size=(1, N, D)) for _ in range(3))
    y = _stochastic_run(q, k, v, steps, heads, "numpy")
    assert set(np.unique(y)) == {0.0, 1.0}
    expected = ssa_reference(q, k, v, heads, 1.0 / (N * (D // heads)))
    se = np.sqrt(expected * (1 - expected) / steps)
    z = np.abs(y.mean(axis=0) - expected) / se
    assert z.max() < 4.5, f"largest deviation {z.max():.2f} standard errors"
    assert np.abs(y.mean(axis=0) - expected).mean() < 0.01


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_stochastic_attention_is_deterministic_and_exact_on_spikes(backend: str) -> None:
    """Same seed, same bits on both backends; 0/1 inputs pass their Bernoulli draws unchanged."""
    rng = np.random.default_rng(9)
    q, k, v = (_spikes(rng, (2, N, D), 0.5) for _ in range(3))
    a = _stochastic_run(q, k, v, 16, 2, backend)
    np.testing.assert_array_equal(a, _stochastic_run(q, k, v, 16, 2, "numpy"))
    assert not np.array_equal(a[0], a[1])  # fresh draws every step
    # counts of AND-ed spikes decide the probabilities; with all-ones inputs every bit is 1
    ones = np.ones((1, N, D))
    np.testing.assert_array_equal(_stochastic_run(ones, ones, ones, 4, 2, backend), np.ones((4, 1, N, D)))


@pytest.mark.parametrize(
    "build",
    [
        lambda w: spikformer_block(w, tokens=16, heads=2),
        lambda w: spike_driven_block(w, tokens=16, heads=2, attention="ssa"),
        lambda w: spike_driven_block(w, tokens=16, heads=2, attention="sdsa"),
    ],
    ids=["spikformer", "spikingformer", "sdt"],
)
def test_blocks_run_for_four_steps_on_both_backends(build) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    block = build(BlockWeights.random(rng, 8, 16))
    x = rng.normal(0.5, 1.0, size=(4, 3, 16, 8))
    ref = run(block, x, trace=True)
    got = run(block, x, backend="torch", trace=True)
    assert ref.outputs["out"].shape == (4, 3, 16, 8)
    for name, node in block.nodes.items():
        if node.kind == "LIF":
            np.testing.assert_array_equal(got.traces[name], ref.traces[name], err_msg=name)
            assert 0 < ref.traces[name].mean() < 1, f"{name} never or always fires"
    np.testing.assert_allclose(got.outputs["out"], ref.outputs["out"], rtol=1e-9, atol=1e-12)


def test_spikformer_block_matches_an_independent_numpy_forward() -> None:
    """The SIR block against the Spikformer equations written out in numpy (SpikingJelly LIF, τ = 2)."""
    rng = np.random.default_rng(2)
    w = BlockWeights.random(rng, 8, 16)
    x = rng.normal(0.5, 1.0, size=(4, 2, 16, 8))
    got = run(spikformer_block(w, tokens=16, heads=2), x).outputs["out"]
    mem: dict[str, np.ndarray] = {}

    def lif(name: str, current: np.ndarray, threshold: float = 1.0) -> np.ndarray:
        v = mem.get(name, np.zeros_like(current))
        v = v + (current - v) / 2.0
        spikes = (v > threshold).astype(np.float64)
        mem[name] = np.where(spikes > 0, 0.0, v)
        return spikes

    def linear_bn(p: str, s: np.ndarray) -> np.ndarray:
        lb = getattr(w, p)
        y = s @ lb.weight.T + (0 if lb.bias is None else lb.bias)
        return (y - lb.bn_mean) / np.sqrt(lb.bn_var + lb.eps) * lb.bn_weight + lb.bn_bias

    for t in range(4):
        q, k, v = (lif(p, linear_bn(p, x[t])) for p in "qkv")
        attn = lif("attn", ssa_reference(q, k, v, 2, 0.125), 0.5)
        res1 = x[t] + lif("proj", linear_bn("proj", attn))
        res2 = res1 + lif("fc2", linear_bn("fc2", lif("fc1", linear_bn("fc1", res1))))
        np.testing.assert_allclose(got[t], res2, rtol=1e-10, atol=1e-12)


def test_stacked_blocks_run_as_subgraphs() -> None:
    rng = np.random.default_rng(4)
    blocks = [
        spike_driven_block(BlockWeights.random(rng, 8, 16), tokens=16, heads=2, attention=a) for a in ("ssa", "sdsa")
    ]
    model = stack(blocks)
    assert [n.kind for n in model.nodes.values()] == ["Input", "Subgraph", "Subgraph", "Output"]
    x = rng.normal(0.5, 1.0, size=(4, 2, 16, 8))
    first = run(blocks[0], x).outputs["out"]
    np.testing.assert_allclose(run(model, x).outputs["out"], run(blocks[1], first).outputs["out"], rtol=1e-12)


def test_block_builders_reject_bad_arguments() -> None:
    w = BlockWeights.random(np.random.default_rng(0), 8, 16)
    with pytest.raises(ValueError, match="heads dividing dim=8"):
        spikformer_block(w, tokens=4, heads=3)
    with pytest.raises(ValueError, match="attention='softmax'"):
        spike_driven_block(w, tokens=4, heads=2, attention="softmax")
