"""The exact ANN→SNN path: quantize-activations (QANN) and exact-spiking (SNN summing to the QANN).

Every block is built with seeded random weights. For T = the settling bound, the SNN's outputs summed
over steps equal the QANN's to 1e-9 (relative) and every ST-BIF's spike count equals the QANN's
integer level exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikec.cli import main
from spikec.convert_exact import convert_exact, settle_bound
from spikec.errors import PassError
from spikec.interp import evaluate, run
from spikec.ir import (
    STBIF,
    Accumulate,
    Add,
    Concat,
    Conv,
    Dense,
    Difference,
    Graph,
    Identity,
    Input,
    Output,
    Quantize,
    ReLU,
    Reshape,
    Scale,
    Transpose,
)
from spikec.ir.node import Node
from spikec.ir.tensor import GELU, Binary, Constant, Gather, LayerNorm, MatMul, Reduce, Softmax
from spikec.passes.quantize_activations import quantization_sites
from spikec.pipeline import PassManager
from spikec.text import load_sir, save_sir

RTOL = 1e-9


def _graph(shape: tuple[int, ...], nodes: dict[str, tuple[Node, list[str]]]) -> Graph:
    """``x`` (Input of ``shape``) plus ``nodes`` (name: (node, sources in order)); the last feeds ``out``."""
    named: dict[str, Node] = {"x": Input(shape=shape)}
    edges: list[tuple[str, str]] = []
    for name, (node, sources) in nodes.items():
        named[name] = node
        edges += [(s, name) for s in sources]
    named["out"] = Output()
    edges.append((list(nodes)[-1], "out"))
    return Graph(named, edges)


def mlp_block(rng: np.random.Generator, d: int = 8) -> Graph:
    """x + fc2(GELU(fc1(LayerNorm(x)))): Dense+GELU MLP with a residual."""
    return _graph(
        (4, d),
        {
            "ln": (LayerNorm(weight=1 + 0.2 * rng.normal(size=d), bias=0.3 * rng.normal(size=d)), ["x"]),
            "fc1": (Dense(weight=rng.normal(size=(2 * d, d)) / 2, bias=0.5 * rng.normal(size=2 * d)), ["ln"]),
            "act": (GELU(origin="torch:/mlp.act"), ["fc1"]),
            "fc2": (Dense(weight=rng.normal(size=(d, 2 * d)) / 3, bias=0.5 * rng.normal(size=d)), ["act"]),
            "res": (Add(), ["fc2", "x"]),
        },
    )


def attention_block(rng: np.random.Generator, n: int = 5, d: int = 8, heads: int = 2) -> Graph:
    """Multi-head self-attention: softmax(q kᵀ/√h) v per head, then the output projection."""
    h = d // heads
    nodes: dict[str, tuple[Node, list[str]]] = {}
    for p in "qkv":
        nodes[p] = (Dense(weight=rng.normal(size=(d, d)) / 2, bias=0.3 * rng.normal(size=d)), ["x"])
        nodes[f"{p}.heads"] = (Reshape(shape=(n, heads, h)), [p])
        nodes[f"{p}.t"] = (Transpose(perm=(1, 0, 2)), [f"{p}.heads"])
    nodes |= {
        "kT": (Transpose(perm=(0, 2, 1)), ["k.t"]),
        "scores": (MatMul(), ["q.t", "kT"]),
        "scaled": (Scale(scale=np.asarray(h**-0.5)), ["scores"]),
        "attn": (Softmax(axis=-1), ["scaled"]),
        "mix": (MatMul(), ["attn", "v.t"]),
        "back": (Transpose(perm=(1, 0, 2)), ["mix"]),
        "merged": (Reshape(shape=(n, d)), ["back"]),
        "proj": (Dense(weight=rng.normal(size=(d, d)) / 2, bias=0.3 * rng.normal(size=d)), ["merged"]),
    }
    return _graph((n, d), nodes)


def embedding_block(rng: np.random.Generator, d: int = 8) -> Graph:
    """Patch-embedding Conv, class token, position embedding, LayerNorm, class-token + mean readout."""
    return _graph(
        (1, 8, 8),
        {
            "patches": (Conv(weight=rng.normal(size=(d, 1, 4, 4)) / 3, bias=rng.normal(size=d), stride=(4, 4)), ["x"]),
            "flat": (Reshape(shape=(d, 4)), ["patches"]),
            "tokens": (Transpose(perm=(1, 0)), ["flat"]),
            "cls": (Constant(value=rng.normal(size=(1, d))), []),
            "seq": (Concat(axis=0), ["cls", "tokens"]),
            "pos": (Constant(value=0.5 * rng.normal(size=(5, d))), []),
            "embedded": (Binary(op="add"), ["seq", "pos"]),
            "ln": (LayerNorm(weight=1 + 0.2 * rng.normal(size=d), bias=0.3 * rng.normal(size=d)), ["embedded"]),
            "cls_out": (Gather(indices=np.array(0), axis=0), ["ln"]),
            "mean": (Reduce(op="mean", axes=(0,), keepdims=0), ["ln"]),
            "both": (Add(), ["cls_out", "mean"]),
            "head": (Dense(weight=rng.normal(size=(3, d)), bias=rng.normal(size=3)), ["both"]),
        },
    )


BLOCKS = {"mlp": mlp_block, "attention": attention_block, "embedding": embedding_block}


def _samples(graph: Graph, n: int, seed: int) -> np.ndarray:
    (name,) = graph.inputs
    return np.random.default_rng(seed).normal(size=(n, *graph.types[name]))


def assert_exact(graph: Graph, *, levels: int = 8, max_spikes: int = 1, steps: int | None = None) -> int:
    """Convert, run for the settling bound (or ``steps``), and check sums and spike counts exactly.

    Returns the settling bound.
    """
    calib, x = _samples(graph, 64, 1), _samples(graph, 6, 2)
    snn, report = convert_exact(graph, calib, levels=levels, max_spikes=max_spikes)
    neurons = [n.name for n in report.neurons]
    assert neurons and all(isinstance(snn.nodes[n], STBIF) for n in neurons)
    qann = evaluate(report.qann, x, trace=neurons)
    t = steps or report.settle_bound
    sim = run(snn, np.broadcast_to(x, (t, *x.shape)), trace=neurons)
    for out, expected in qann.outputs.items():
        total = sim.outputs[out].sum(axis=0)
        np.testing.assert_allclose(total, expected, rtol=0, atol=RTOL * np.abs(expected).max())
    for name in neurons:
        step = np.asarray(report.qann.nodes[name].step)  # type: ignore[attr-defined]
        levels_qann = np.rint(qann.traces[name] / step)
        counts = sim.traces[name].sum(axis=0) / step
        np.testing.assert_allclose(counts, np.rint(counts), atol=1e-9)
        np.testing.assert_array_equal(np.rint(counts), levels_qann, err_msg=f"spike counts of {name}")
        assert np.abs(sim.traces[name] / step).max() <= max_spikes + 1e-9  # at most k spikes per step
    return report.settle_bound


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_block_sums_to_the_qann_exactly(block: str) -> None:
    assert_exact(BLOCKS[block](np.random.default_rng(sum(map(ord, block)))))


def test_signed_levels_and_a_wider_range() -> None:
    graph = mlp_block(np.random.default_rng(7))
    assert_exact(graph, levels=16)
    assert_exact(graph, levels=3)


def test_graded_spikes_settle_in_one_step() -> None:
    """With max_spikes >= L - 1 every ST-BIF reaches its level in the step its input arrives: T = 1."""
    graph = attention_block(np.random.default_rng(3))
    bound = assert_exact(graph, levels=8, max_spikes=7)
    assert bound == 1
    assert assert_exact(graph, levels=8, max_spikes=3) < assert_exact(graph, levels=8, max_spikes=1)


def test_error_falls_with_steps_and_vanishes_by_the_bound() -> None:
    graph = attention_block(np.random.default_rng(11))
    calib, x = _samples(graph, 64, 1), _samples(graph, 16, 2)
    snn, report = convert_exact(graph, calib, levels=8)
    q = evaluate(report.qann, x).outputs["out"]
    bound = report.settle_bound
    summed = np.cumsum(run(snn, np.broadcast_to(x, (bound, *x.shape))).outputs["out"], axis=0)
    error = np.abs(summed - q).max(axis=tuple(range(1, summed.ndim))) / np.abs(q).max()
    assert error[0] > 1e-2  # one step is not enough
    settled = int(np.argmax(error <= RTOL)) + 1  # first T at which every sample is exact
    assert error[settled - 1] <= RTOL and np.all(error[settled - 1 :] <= RTOL)  # and stays exact
    assert settled <= bound
    assert error[: settled // 2].mean() > error[settled // 2 : settled].mean()  # falls on the way


def test_settle_bound_adds_the_steps_of_the_neurons_on_the_longest_path() -> None:
    neuron = STBIF(v_threshold=np.asarray(1.0), lo=-2, hi=5)
    chain = _graph((3,), {"a": (neuron, ["x"]), "b": (neuron, ["a"]), "c": (neuron.replace(max_spikes=3), ["b"])})
    assert settle_bound(chain) == 1 + 6 + 6 + 2  # d - 1 per neuron, d = ceil(7 / k)


def test_st_bif_reaches_the_quantized_level_of_its_accumulated_input() -> None:
    """Fed an input that wanders then holds, the count ends at clip(floor(X/θ + 1/2), lo, hi)."""
    theta, lo, hi = 0.5, -3, 4
    rng = np.random.default_rng(0)
    g = _graph((200,), {"n": (STBIF(v_threshold=np.asarray(theta), lo=lo, hi=hi), ["x"])})
    x = np.zeros((30, 1, 200))
    x[:4] = rng.normal(scale=2.0, size=(4, 1, 200))  # settles after step 3
    out = run(g, x).outputs["out"]
    total = x.sum(axis=0)
    expected = np.clip(np.floor(total / theta + 0.5), lo, hi)
    np.testing.assert_array_equal(out.sum(axis=0) / theta, expected)
    assert set(np.unique(out / theta)) <= {-1.0, 0.0, 1.0}
    counts = np.cumsum(out / theta, axis=0)
    assert counts.min() >= lo and counts.max() <= hi  # never outside the levels, even on the way


def test_quantize_rounds_half_up_and_clips() -> None:
    g = _graph((7,), {"q": (Quantize(step=np.asarray(0.5), lo=-2, hi=3), ["x"])})
    x = np.array([[-5.0, -0.74, -0.25, 0.24, 0.25, 1.3, 9.0]])
    np.testing.assert_array_equal(evaluate(g, x).outputs["out"], [[-1.0, -0.5, 0.0, 0.0, 0.5, 1.5, 1.5]])


def test_quantize_activations_places_quantizers_and_approaches_the_ann() -> None:
    """Sites: after every non-additive node and on the weighted inputs of those; with very many levels
    the QANN equals the ANN to the quantization step."""
    graph = mlp_block(np.random.default_rng(5))
    assert quantization_sites(graph) == ["ln", "fc1", "act"]
    assert quantization_sites(graph, inputs=False) == ["ln", "act"]
    calib, x = _samples(graph, 64, 1), _samples(graph, 8, 2)
    qann = PassManager([("quantize-activations", {"calib": calib, "levels": 2**20, "percentile": 100.0})]).run(graph)
    assert [n for n, node in qann.nodes.items() if isinstance(node, Quantize)] == ["ln.q", "fc1.q", "act.q"]
    assert not qann.is_spiking
    a, q = evaluate(graph, x).outputs["out"], evaluate(qann, x).outputs["out"]
    np.testing.assert_allclose(q, a, atol=1e-4 * np.abs(a).max())
    coarse = PassManager([("quantize-activations", {"calib": calib, "levels": 4})]).run(graph)
    assert np.abs(evaluate(coarse, x).outputs["out"] - a).max() > 1e-2  # 4 levels do change the numbers


def test_attention_inputs_are_quantized_through_reshapes() -> None:
    graph = attention_block(np.random.default_rng(5))
    sites = quantization_sites(graph)
    assert {"q.t", "kT", "v.t", "scores", "attn", "mix"} == set(sites)  # at the end of each reshaping chain


def test_zero_calibration_range_names_the_layer() -> None:
    """A layer that is constant zero on the calibration set cannot be quantized: the error says which."""
    rng = np.random.default_rng(0)
    graph = _graph(
        (4,),
        {
            "fc1": (Dense(weight=np.zeros((3, 4)), origin="onnx:/blocks.0/fc1"), ["x"]),
            "act": (GELU(origin="onnx:/blocks.0/act"), ["fc1"]),
            "fc2": (Dense(weight=rng.normal(size=(2, 3))), ["act"]),
        },
    )
    with pytest.raises(PassError) as err:
        convert_exact(graph, _samples(graph, 16, 0))
    message = str(err.value)
    assert "'fc1'" in message and "onnx:/blocks.0/fc1" in message and "zero range" in message
    assert "calibrat" in message and "quantize-activations" in message


def test_lowering_structure_and_sir_round_trip(tmp_path: Path) -> None:
    graph = embedding_block(np.random.default_rng(2))
    snn, report = convert_exact(graph, _samples(graph, 32, 1), levels=8)
    kinds = {type(n) for n in snn.nodes.values()}
    assert {STBIF, Accumulate, Difference} <= kinds and Quantize not in kinds
    assert {h["kind"] for h in report.host_nodes} == {"LayerNorm"}  # the only non-event-driven node
    assert all(node.bias is None for node in snn.nodes.values() if isinstance(node, (Dense, Conv)))
    # constants enter once: every Constant feeds a Difference
    for name, node in snn.nodes.items():
        if isinstance(node, Constant):
            assert all(isinstance(snn.nodes[e.dst], Difference) for e in snn.out_edges(name))
    for g, file in ((snn, "snn.sir"), (report.qann, "qann.sir")):
        save_sir(g, tmp_path / file)
        assert load_sir(tmp_path / file) == g


def test_exact_spiking_refuses_a_graph_without_quantizers() -> None:
    with pytest.raises(PassError, match="quantize-activations first"):
        PassManager(["exact-spiking"]).run(mlp_block(np.random.default_rng(0)))


def test_products_with_a_constant_stay_event_driven() -> None:
    """x * c and x @ C are linear in x: no Σ→f→Δ, and the constant is fed as a value every step."""
    rng = np.random.default_rng(4)
    graph = _graph(
        (3, 4),
        {
            "c": (Constant(value=rng.normal(size=(3, 4))), []),
            "m": (Constant(value=rng.normal(size=(4, 2))), []),
            "scaled": (Binary(op="mul"), ["x", "c"]),
            "prod": (MatMul(), ["scaled", "m"]),
            "act": (GELU(), ["prod"]),
        },
    )
    snn, report = convert_exact(graph, _samples(graph, 32, 1))
    assert [h["name"] for h in report.host_nodes] == ["act"]
    assert not any(isinstance(snn.nodes[e.dst], Difference) for e in snn.out_edges("c"))
    assert_exact(graph)


@pytest.mark.slow
def test_tiny_vit_from_torch_is_exact() -> None:
    """A whole 1-block ViT (patch Conv, class token, position embedding, attention, GELU MLP, LayerNorms,
    class-token readout) through the PyTorch front end."""
    torch = pytest.importorskip("torch")
    from exact_models import TinyViT, seeded

    from spikec import from_torch

    graph = from_torch(seeded(TinyViT(), 0), torch.zeros(1, 1, 8, 8))
    bound = assert_exact(graph, levels=8)
    assert bound > 1
    assert_exact(graph, levels=8, max_spikes=7, steps=1)


def _mnist_subset(data_dir: Path, tmp_path: Path, n: int) -> tuple[Path, Path, Path]:
    from spikec.data.mnist import load_mnist

    images, labels = load_mnist(data_dir / "mnist")
    x = images[:n, None].astype(np.float32)  # the model zoo CNN takes raw 0..255 pixels
    files = (tmp_path / "x.npy", tmp_path / "y.npy", tmp_path / "calib.npy")
    np.save(files[0], x[n // 2 :])
    np.save(files[1], labels[n // 2 : n].astype(np.int64))
    np.save(files[2], x[: n // 2])
    return files


@pytest.mark.slow
def test_cli_eval_and_compile_exact(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real trained CNN (ONNX model zoo MNIST): only max-pool runs as Σ→f→Δ, the rest is event-driven."""
    model = str(data_dir / "onnx" / "mnist-conv" / "model.onnx")
    x, y, calib = _mnist_subset(data_dir, tmp_path, 60)
    common = ["--method", "exact", "--levels", "16", "--max-spikes", "15", "--backend", "torch"]
    code = main(["eval", model, "--data", str(x), "--labels", str(y), "--calib", str(calib), "--timesteps", "2",
                 *common, "--json"])  # fmt: skip
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert r["method"] == "exact" and r["samples"] == 30
    assert r["ann"]["accuracy"] >= 0.9 and abs(r["qann"]["accuracy"] - r["ann"]["accuracy"]) <= 0.1
    assert set(r["snn"]["by_timesteps"]) == {"1", "2"}
    assert r["snn"]["settle_bound"] == 1  # graded spikes: exact after one step
    assert r["snn"]["equal_to_qann_by_timesteps"]["1"] == 1.0
    assert r["snn"]["accuracy"] == r["qann"]["accuracy"]
    out = tmp_path / "artifact"
    code = main(["compile", model, "--calib", str(calib), "--timesteps", "8", "-o", str(out), *common, "--json"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "exact" and report["levels"] == 16 and report["neurons"]
    assert {h["kind"] for h in report["host_nodes"]} == {"MaxPool"}  # ReLUs absorbed by their ST-BIFs
    snn = load_sir(out / "model.sir")
    assert any(isinstance(n, STBIF) for n in snn.nodes.values())


def test_cli_exact_bad_levels_exit_1(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(data_dir / "onnx" / "mnist-conv" / "model.onnx")
    x, y, calib = _mnist_subset(data_dir, tmp_path, 20)
    code = main(["eval", model, "--data", str(x), "--labels", str(y), "--calib", str(calib), "--timesteps", "2",
                 "--method", "exact", "--levels", "1"])  # fmt: skip
    assert code == 1
    assert "levels=1" in capsys.readouterr().err


def test_relu_is_absorbed_by_its_quantizer() -> None:
    """A ReLU feeding a non-negative Quantize needs no Σ→f→Δ: the ST-BIF's lower bound 0 is the ReLU."""
    rng = np.random.default_rng(8)
    graph = _graph(
        (6,),
        {
            "fc1": (Dense(weight=rng.normal(size=(8, 6)), bias=rng.normal(size=8)), ["x"]),
            "relu": (ReLU(), ["fc1"]),
            "fc2": (Dense(weight=rng.normal(size=(3, 8))), ["relu"]),
        },
    )
    snn, report = convert_exact(graph, _samples(graph, 64, 1), levels=8)
    assert report.host_nodes == [] and isinstance(snn.nodes["relu"], Identity)
    assert_exact(graph)
