"""A Spikformer block on Loihi 2: flatten-tokens (attention as coincidence neurons), quantize with aligned
residuals, emit (Sparse/DelaySparse), and the issue's check: Lava (fixed_pt) equals the interpreter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikec.blocks import BlockWeights, spike_driven_block, spikformer_block
from spikec.cli import main
from spikec.errors import PassError
from spikec.interp import run
from spikec.ir import Graph
from spikec.passes.flatten_tokens import coincidence_indices
from spikec.pipeline import PassManager
from spikec.targets.loihi2.dialect import LoihiDense
from spikec.text import save_sir

TOKENS, DIM, HEADS, HIDDEN = 4, 8, 2, 16
# Loihi latency of each layer: one step per synapse; the coincidence layer adds one the float graph lacks
LATENCY = {"q_lif": 1, "attn_lif": 3, "proj_lif": 4, "fc1_lif": 5, "fc2_lif": 6}


def _block() -> Graph:
    return spikformer_block(BlockWeights.random(np.random.default_rng(1), DIM, HIDDEN), tokens=TOKENS, heads=HEADS,
                            scale=0.5)  # fmt: skip


def _spikes(steps: int, samples: int, seed: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, samples, TOKENS, DIM)) < 0.3).astype(np.int64)


def test_coincidence_indices_give_the_attention_product() -> None:
    """Summing q*k*v over the coincidence neurons' index lists is Concat_h(Q_h K_h^T V_h)."""
    rng = np.random.default_rng(0)
    q, k, v = ((rng.random((TOKENS, DIM)) < 0.5).astype(int) for _ in range(3))
    iq, ik, iv, out = coincidence_indices(TOKENS, DIM, HEADS)
    assert iq.size == HEADS * TOKENS**2 * (DIM // HEADS) ** 2
    got = np.zeros(TOKENS * DIM, int)
    np.add.at(got, out, q.ravel()[iq] * k.ravel()[ik] * v.ravel()[iv])
    dh = DIM // HEADS
    want = np.concatenate([q[:, h * dh:(h + 1) * dh] @ k[:, h * dh:(h + 1) * dh].T @ v[:, h * dh:(h + 1) * dh]
                           for h in range(HEADS)], axis=1)  # fmt: skip
    np.testing.assert_array_equal(got, want.ravel())


def test_flatten_tokens_keeps_every_spike_of_the_block() -> None:
    block = _block()
    flat = PassManager(["fuse", "flatten-tokens"]).run(block)
    assert "SpikingSelfAttention" not in {n.kind for n in flat.nodes.values()}
    assert flat.types["ssa_coincide"] == (HEADS * TOKENS**2 * (DIM // HEADS) ** 2,)
    assert flat.inputs == ("x",) and flat.types["x"] == (TOKENS, DIM)  # the input keeps its name and shape
    x = _spikes(12, 3).astype(np.float64)
    want, got = run(block, x, trace=True), run(flat, x, trace=True)
    for name in LATENCY:
        assert 0 < want.traces[name].mean() < 1, name
        np.testing.assert_array_equal(got.traces[name], want.traces[name].reshape(12, 3, -1), err_msg=name)
    np.testing.assert_array_equal(got.outputs["out"], want.outputs["out"].reshape(12, 3, -1))


def test_flatten_tokens_keeps_the_spike_driven_attention_exact() -> None:
    """SDSA: the column sum and the mask become coincidence neurons; the float block's output is unchanged."""
    block = _spike_driven("sdsa")
    flat = PassManager(["fuse", "flatten-tokens"]).run(block)
    assert {"HadamardColumnSum", "Binary"}.isdisjoint(n.kind for n in flat.nodes.values())
    x = np.random.default_rng(3).integers(0, 4, size=(16, 2, TOKENS, DIM)).astype(np.float64)
    want, got = run(block, x, trace=True), run(flat, x, trace=True)
    assert 0 < want.traces["kv_lif"].mean() < 1 and want.traces["sdsa"].mean() > 0
    np.testing.assert_array_equal(got.traces["sdsa_coincide"], want.traces["sdsa"].reshape(16, 2, -1))
    np.testing.assert_allclose(got.outputs["out"], want.outputs["out"].reshape(16, 2, -1), atol=1e-12)


def test_flatten_tokens_refuses_a_product_of_non_spikes() -> None:
    from spikec.ir import Binary, Input, Output

    graph = Graph({"x": Input(shape=(TOKENS, DIM)), "sq": Binary(op="mul"), "out": Output()},
                  [("x", "sq"), ("x", "sq"), ("sq", "out")])  # fmt: skip
    with pytest.raises(PassError, match=r"'sq'.*multiplies node 'x' \(Input\).*not a spike layer"):
        PassManager(["flatten-tokens"]).run(graph)
    sdt = _spike_driven("sdsa")
    with pytest.raises(PassError, match=r"'kv_sum'.*Binary\(op='add'\); only a product of spikes"):
        PassManager(["flatten-tokens"]).run(sdt.replace(nodes={**sdt.nodes, "kv_sum": Binary(op="add")}))


def test_image_graphs_pass_flatten_tokens_unchanged() -> None:
    from spikec.ir import Input, Output

    graph = Graph({"x": Input(shape=(1, 4, 4)), "out": Output()}, [("x", "out")])
    assert PassManager(["flatten-tokens"]).run(graph) is graph


def test_quantize_aligns_the_residual_with_a_synaptic_delay_and_outputs_each_term() -> None:
    reports: list[dict] = []
    flat = PassManager(["fuse", "flatten-tokens"]).run(_block())
    low = PassManager(["quantize{target=loihi2}"]).run(flat, observe=lambda _, result: reports.append(result.report))
    # fc1 reads x + proj: one synapse per term, x held back 4 steps so both arrive with proj's spikes
    x_term, proj_term = low.nodes["fc1_linear.x_flat"], low.nodes["fc1_linear.proj_lif"]
    assert isinstance(x_term, LoihiDense) and isinstance(proj_term, LoihiDense)
    assert int(x_term.delay) == LATENCY["proj_lif"] and proj_term.delay is None
    assert x_term.weight_exp == proj_term.weight_exp  # one layer, one scale
    np.testing.assert_array_equal(x_term.weight != 0, proj_term.weight != 0)  # the same Dense, read twice
    # the coincidence layer reads q, k and v through three synapses
    assert {e.src for e in low.in_edges("ssa_coincide")} == {"ssa_select.q_lif", "ssa_select.k_lif", "ssa_select.v_lif"}
    (report,) = reports
    assert report["outputs"]["out"] == [
        {"host_input": "x_flat", "latency": 0},
        {"node": "out.proj_lif", "latency": LATENCY["proj_lif"]},
        {"node": "out.fc2_lif", "latency": LATENCY["fc2_lif"]},
    ]
    assert report["latency_steps"] == LATENCY["fc2_lif"]


def test_the_fixed_point_block_follows_the_float_block() -> None:
    """Loihi's arithmetic (8-bit weights, floor decays) shifted by its latency against the float SNN."""
    steps = 40
    x = _spikes(steps, 4, seed=5)
    block = _block()
    low = PassManager(["fuse", "flatten-tokens", "quantize{target=loihi2}"]).run(block)
    want, got = run(block, x.astype(np.float64), trace=True), run(low, x, trace=True)
    for name, lag in LATENCY.items():
        a = want.traces[name].reshape(steps, 4, -1)[: steps - lag]
        b = got.traces[name][lag:]
        assert abs(a.mean() - b.mean()) < 0.02, name  # the same rates
        assert np.mean(a == b) > (0.97 if name in ("q_lif", "attn_lif") else 0.8), name  # drift grows with depth


def test_a_residual_too_long_for_loihi_delays_is_refused() -> None:
    from spikec.targets.loihi2 import layer as quantize_loihi2

    flat = PassManager(["fuse", "flatten-tokens"]).run(_block())
    limit = quantize_loihi2.MAX_DELAY
    quantize_loihi2.MAX_DELAY = 3
    try:
        with pytest.raises(PassError, match=r"fc1_linear.*4-step synaptic delay.*limit is 3"):
            PassManager(["quantize{target=loihi2}"]).run(flat)
    finally:
        quantize_loihi2.MAX_DELAY = limit


@pytest.mark.slow
def test_spikformer_block_compiles_for_loihi2_and_verifies_in_lava(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_sir(_block(), tmp_path / "block.sir")
    np.save(tmp_path / "x.npy", _spikes(24, 2))
    out = tmp_path / "art"
    code = main(["compile", str(tmp_path / "block.sir"), "--target", "loihi2", "--timesteps", "24",
                 "--inputs", str(tmp_path / "x.npy"), "-o", str(out), "--json"])  # fmt: skip
    compiled = json.loads(capsys.readouterr().out)
    assert code == 0, compiled
    report = json.loads((out / "report.json").read_text())
    assert [s["pass"] for s in report["pipeline"] if s["status"] == "ran"] == [
        "fuse", "fold-batchnorm", "fuse-spiking-attention", "flatten-tokens", "quantize{target=loihi2}",
        "split-fanin", "partition{target=loihi2}",
    ]  # fmt: skip
    processes = {n["name"]: n["process"] for n in json.loads((out / "network.json").read_text())["nodes"]}
    assert processes["ssa_select.q_lif"] == "Sparse" and processes["fc1_linear.x_flat"] == "DelaySparse"
    assert processes["ssa_coincide"] == "LIFReset"  # reset once when q, k, v first arrive (their biases come earlier)

    code = main(["verify", str(out), "--layers", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0, r
    assert r["mismatches"] == 0 and r["agreement"] == 1.0 and r["samples"] == 2 and r["steps"] == 24
    assert {"out.proj_lif", "out.fc2_lif", "ssa_coincide", "fc1_linear.x_flat"} <= set(r["values"])
    print(f"\nSpikformer block on Loihi 2 (Lava fixed_pt vs interpreter), 2 samples x 24 steps: {r['timing']}")


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "spikformer_block.py"
ARCH = f"{EXAMPLE}:build_spikformer"  # what --arch takes


def _torch_spikformer(seed: int):  # type: ignore[no-untyped-def]
    """examples/spikformer_block.py's build_spikformer, loaded as ``spikec import --arch`` loads it."""
    from spikec.frontends.torch_import import _load_builder

    return _load_builder(ARCH)(seed=seed)


def test_batchnorm_between_transposes_folds_into_the_linear() -> None:
    """PyTorch's BatchNorm1d over token channels imports as Transpose, BatchNorm, Transpose: all three go."""
    import torch

    from spikec.frontends.torch_import import from_torch

    graph = from_torch(_torch_spikformer(3), torch.zeros(1, TOKENS, DIM))
    assert sum(n.kind == "BatchNorm" for n in graph.nodes.values()) == 6
    folded = PassManager(["fuse", "fold-batchnorm", "fuse-spiking-attention"]).run(graph)
    assert {n.kind for n in folded.nodes.values()} == {"Input", "Dense", "LIF", "SpikingSelfAttention", "Add", "Output"}
    x = _spikes(16, 2).astype(np.float64)
    for name, want in run(graph, x).outputs.items():
        np.testing.assert_allclose(run(folded, x).outputs[name], want, atol=1e-12)


@pytest.mark.slow
def test_a_pytorch_spikformer_block_imports_compiles_and_verifies_in_lava(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's path: a SpikingJelly Spikformer block's state_dict -> spikec import -> compile -> verify."""
    import torch

    torch.save(_torch_spikformer(3).state_dict(), tmp_path / "block.pt")
    sir = tmp_path / "block.sir"
    shape = f"{TOKENS},{DIM}"
    assert main(["import", str(tmp_path / "block.pt"), "--arch", ARCH, "--input-shape", shape, "-o", str(sir)]) == 0
    capsys.readouterr()
    np.save(tmp_path / "x.npy", _spikes(16, 2, seed=4))
    out = tmp_path / "art"
    code = main(["compile", str(sir), "--target", "loihi2", "--timesteps", "16", "--inputs", str(tmp_path / "x.npy"),
                 "--pass-option", "quantize.reset_to_zero=true", "-o", str(out), "--json"])  # fmt: skip
    compiled = json.loads(capsys.readouterr().out)
    assert code == 0, compiled
    code = main(["verify", str(out), "--layers", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0, r
    assert r["mismatches"] == 0 and r["compared"] > 0
    assert any(name.endswith("_coincide") for name in r["values"])  # the attention ran as coincidence neurons


def _spike_driven(attention: str) -> Graph:
    weights = BlockWeights.random(np.random.default_rng(1), DIM, HIDDEN)
    return spike_driven_block(weights, tokens=TOKENS, heads=HEADS, attention=attention, scale=0.5)


def _spikingformer() -> Graph:
    return _spike_driven("ssa")


def test_membrane_shortcuts_become_synapses_of_the_reading_neuron() -> None:
    """Spikingformer adds currents (x + BN(proj(a))): each neuron reading the sum gets one synapse per source."""
    reports: list[dict] = []
    flat = PassManager(["fuse", "flatten-tokens"]).run(_spikingformer())
    low = PassManager(["quantize{target=loihi2,input_max=3}"]).run(
        flat, observe=lambda _, result: reports.append(result.report)
    )
    assert {e.src for e in low.in_edges("fc1_lif")} == {"fc1_lif.in.x_flat", "fc1_lif.in.attn_lif"}
    assert int(low.nodes["fc1_lif.in.x_flat"].delay) == 4  # x waits for the attention path (latency 4)
    # the block's output, x + attention + MLP currents, is read from a probe LIF that never fires
    assert {e.src for e in low.in_edges("out.probe")} == {
        "out.probe.in.x_flat", "out.probe.in.attn_lif", "out.probe.in.fc2_lif"
    }  # fmt: skip
    probe = low.nodes["out.probe"]
    assert probe.dv == 4095 and int(probe.vth) == 1 << 17
    assert reports[0]["outputs"]["out"] == [{"node": "out", "probe_v": "out.probe", "latency": 7}]


def test_two_paths_from_one_source_merge_into_one_synapse() -> None:
    from spikec.ir import Input, Output, ann, snn

    w1, w2 = np.array([[1.0, -0.5], [0.25, 1.0]]), np.array([[0.5, 0.5], [-0.25, 0.5]])
    nodes = {
        "x": Input(shape=(2,)), "a": ann.Dense(weight=w1), "b": ann.Dense(weight=w2), "sum": ann.Add(),
        "n": snn.IF(v_threshold=np.asarray(1.0)), "out": Output(),
    }  # fmt: skip
    graph = Graph(nodes, [("x", "a"), ("x", "b"), ("a", "sum"), ("b", "sum"), ("sum", "n"), ("n", "out")])
    low = PassManager(["quantize{target=loihi2}"]).run(graph)
    (edge,) = low.in_edges("n")
    dense = low.nodes[edge.src]
    assert isinstance(dense, LoihiDense)
    np.testing.assert_allclose(dense.weight * 2.0**dense.weight_exp / (dense.weight * 2.0**dense.weight_exp).max(),
                               (w1 + w2) / (w1 + w2).max(), atol=0.01)  # fmt: skip


def test_spikingformer_in_fixed_point_follows_the_float_block() -> None:
    steps = 40
    x = np.random.default_rng(3).integers(0, 4, size=(steps, 3, TOKENS, DIM))
    block = _spikingformer()
    low = PassManager(["fuse", "flatten-tokens", "quantize{target=loihi2,input_max=3}"]).run(block)
    want, got = run(block, x.astype(np.float64), trace=True), run(low, x, trace=True)
    for name, lag in {"shortcut_lif": 1, "q_lif": 2, "attn_lif": 4, "fc1_lif": 5, "fc2_lif": 6}.items():
        a = want.traces[name].reshape(steps, 3, -1)[: steps - lag]
        assert np.mean(a == got.traces[name][lag:]) > 0.9, name


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["ssa", "sdsa"], ids=["spikingformer", "spike-driven-transformer"])
def test_spike_driven_blocks_verify_in_lava(attention: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_sir(_spike_driven(attention), tmp_path / "block.sir")
    np.save(tmp_path / "x.npy", np.random.default_rng(4).integers(0, 4, size=(16, 2, TOKENS, DIM)))
    out = tmp_path / "art"
    code = main(["compile", str(tmp_path / "block.sir"), "--target", "loihi2", "--timesteps", "16",
                 "--pass-option", "quantize.input_max=3", "--inputs", str(tmp_path / "x.npy"), "-o", str(out),
                 "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().out
    capsys.readouterr()
    code = main(["verify", str(out), "--layers", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0, r
    assert r["mismatches"] == 0 and {"out", "out.probe.v", "fc1_lif.in.x_flat"} <= set(r["values"])
