"""The exact method's SNN on Loihi 2 (targets/loihi2/exact.py): ST-BIF as sigma-delta neurons with graded spikes.

Models are torch modules exported by torch.onnx.export, converted with ``--method exact``. What is checked:
every ST-BIF's summed spikes equal the quantizer of its integer input exactly; the outputs decode to the
QANN's; a transformer is refused naming each host function; Lava (fixed_pt) equals the interpreter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from exact_models import TinyViT, seeded
from torch import nn

from spikec.cli import main
from spikec.convert_exact import convert_exact
from spikec.interp import evaluate, run
from spikec.ir import Graph
from spikec.models import load_model
from spikec.pipeline import PassManager
from spikec.targets.loihi2.dialect import LoihiDense, LoihiSigmaDelta
from spikec.targets.loihi2.kernels import dense_weights

FEATURES = 12


def _export(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    torch.onnx.export(module.eval(), (example,), str(path), dynamo=True)
    return path


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A Linear/ReLU MLP on binary features (input_max 1, the default) and its calibration set."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(FEATURES, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 4))
    folder = tmp_path_factory.mktemp("mlp")
    calib = (np.random.default_rng(0).random((64, FEATURES)) < 0.4).astype(np.float32)
    np.save(folder / "calib.npy", calib)
    return _export(module, torch.zeros(1, FEATURES), folder / "mlp.onnx"), folder / "calib.npy"


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Raw pixels 0..255 into Conv, max-pooling (whole and, with ceil_mode, partial windows), average pooling."""
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(3), nn.Flatten(), nn.Linear(4, 5),
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("cnn")
    np.save(folder / "calib.npy", np.random.default_rng(0).integers(0, 256, (32, 1, 10, 10)).astype(np.float32))
    return _export(module, torch.zeros(1, 1, 10, 10), folder / "cnn.onnx"), folder / "calib.npy"


def _lower(model: Path, calib: Path, input_max: int = 1, **options: Any) -> tuple[Graph, Graph, dict[str, Any], Any]:
    snn, report = convert_exact(load_model(model), np.load(calib), **options)
    seen: list[Any] = []
    steps = [f"quantize{{target=loihi2,input_max={input_max}}}"]
    lowered = PassManager(steps).run(snn, observe=lambda _, result: seen.append(result))
    return snn, lowered, seen[0].report, report


def _sigma(lowered: Graph, neuron: str, sums: dict[str, np.ndarray], rows: int) -> np.ndarray:
    """Σ_k W_k · (summed spikes of source k), from the stored mantissas and exponents of the synapses into it."""
    total = np.zeros((next(iter(sums.values())).shape[0], rows))
    for edge in lowered.in_edges(neuron):
        dense = lowered.nodes[edge.src]
        assert isinstance(dense, LoihiDense) and dense.weight_exp >= 0  # exact integer synapses only
        source = lowered.in_edges(edge.src)[0].src
        total += sums[source] @ (dense_weights(dense)[:rows] * 2.0**dense.weight_exp).T
    return total


def test_st_bifs_sum_to_the_quantizer_of_their_integer_input_and_outputs_decode_to_the_qann(
    mlp: tuple[Path, Path],
) -> None:
    _, lowered, report, exact = _lower(*mlp)
    x = (np.random.default_rng(1).random((40, FEATURES)) < 0.4).astype(np.float64)
    settled = report["settled_after_steps"]
    steps = settled + 4
    traces = run(lowered, np.broadcast_to(x, (steps, *x.shape)).copy(), trace=True).traces
    sums = {name: value.sum(axis=0).reshape(len(x), -1) for name, value in traces.items()}
    qann = evaluate(exact.qann, x, trace=True).traces
    stbifs = [layer for layer in report["layers"] if layer["kind"] == "STBIF"]
    assert [layer["name"] for layer in stbifs] == [n.name for n in exact.neurons]
    for layer, neuron in zip(stbifs, exact.neurons, strict=True):
        name, (lo, hi), shift = layer["name"], layer["levels"], layer["shift"]
        clip = lowered.nodes[f"{name}.clip"]
        assert isinstance(clip, LoihiSigmaDelta) and clip.act_mode == "relu" and int(clip.vth) == 0
        n = sums[name].shape[1]
        lower = np.asarray(clip.bias)[:n] * 2**clip.spike_exp  # c - lo·2^p, as Lava scales the bias field
        level = np.clip(np.floor((_sigma(lowered, f"{name}.clip", sums, n) + lower) / 2**shift), 0, hi - lo)
        np.testing.assert_array_equal(sums[name], level, err_msg=name)  # Σ_t y = q - lo, exactly
        # against the float QANN: only Loihi's 8-bit weights move a level, rarely
        assert np.mean(level + lo == np.round(qann[name].reshape(len(x), -1) / neuron.step)) >= 0.95, name
        assert not np.any(traces[name][settled:]), f"{name} still changes after {settled} steps"
    (out,) = report["outputs"].values()
    readout = lowered.nodes[out["node"]]
    assert isinstance(readout, LoihiSigmaDelta) and readout.act_mode == "unit"
    n = sums[out["node"]].shape[1]
    np.testing.assert_array_equal(sums[out["node"]], _sigma(lowered, out["node"], sums, n) + np.asarray(readout.bias))
    decoded = out["scale"] * sums[out["node"]] + out["offset"]
    (want,) = evaluate(exact.qann, x).outputs.values()
    assert np.mean(decoded.argmax(axis=1) == want.argmax(axis=1)) >= 0.9
    assert np.max(np.abs(decoded - want)) <= 0.1 * np.max(np.abs(want))


def test_max_pooling_runs_as_exact_comparisons(cnn: tuple[Path, Path]) -> None:
    """max(a, b) = a + relu(b - a): every sigma-delta neuron sums to its activation of its integer input exactly,
    and each pool's quantizer reads the max of the Loihi levels it pools (up to its 8-bit weights)."""
    snn, lowered, report, exact = _lower(*cnn, input_max=255)
    assert [layer["kind"] for layer in report["layers"]].count("max") == 4  # two tree levels per 2×2 pool
    x = np.load(cnn[1])[:16].astype(np.float64)
    steps = report["settled_after_steps"]
    traces = run(lowered, np.broadcast_to(x, (steps, *x.shape)).copy(), trace=True).traces
    sums = {name: value.sum(axis=0).reshape(len(x), -1) for name, value in traces.items()}
    for name, node in lowered.nodes.items():
        if isinstance(node, LoihiSigmaDelta):
            act = _sigma(lowered, name, sums, sums[name].shape[1]) + np.asarray(node.bias) * 2**node.spike_exp
            np.testing.assert_array_equal(sums[name], np.maximum(act, 0) if node.act_mode == "relu" else act, name)
    step = {n.name: n for n in exact.neurons}
    for pool, relu, ceil in [
        ("node_max_pool2d.q", "node_relu.q", False),
        ("node_max_pool2d_1.q", "node_relu_1.q", True),
    ]:
        r, p = step[relu], step[pool]
        levels = torch.tensor((sums[relu] + r.lo).reshape(len(x), *snn.types[relu]) * r.step)
        top = torch.nn.functional.max_pool2d(levels, 2, ceil_mode=ceil).numpy().reshape(len(x), -1)
        want = np.clip(np.floor(top / p.step + 0.5), p.lo, p.hi)
        assert np.mean(sums[pool] + p.lo == want) >= 0.95, pool


def test_a_paced_st_bif_runs_unpaced_and_says_so(mlp: tuple[Path, Path]) -> None:
    *_, paced, _ = _lower(*mlp)
    stbifs = [layer for layer in paced["layers"] if layer["kind"] == "STBIF"]
    assert stbifs and all("unpaced on Loihi" in layer["approximations"][0] for layer in stbifs)
    *_, whole, _ = _lower(*mlp, max_spikes=15)  # 16 levels: every change fits in one step, as on Loihi
    assert not any(layer["approximations"] for layer in whole["layers"])


def test_a_transformer_is_refused_naming_each_host_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vit = _export(seeded(TinyViT(), 0), torch.zeros(1, 1, 8, 8), tmp_path / "vit.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32))
    out = tmp_path / "art"
    code = main(["compile", str(vit), "--target", "loihi2", "--method", "exact",
                 "--calib", str(tmp_path / "calib.npy"), "--timesteps", "8", "-o", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "the exact SNN computes 7 node(s) as accumulate -> f -> difference, which no Loihi neuron can" in err
    for kind, names, need in [
        ("LayerNorm", "'node_layer_norm', 'node_layer_norm_1', 'node_layer_norm_2'", "reciprocal square root"),
        ("MatMul", "'node_matmul', 'node_matmul_1'", "product of two spiking tensors"),
        ("Softmax", "'node_softmax'", "exp and a division"),
        ("GELU", "'node_gelu'", "erf"),
    ]:
        assert f"{kind} {names} needs" in err and need in err
    assert "--target interp" in err and [line[:6] for line in err.splitlines()].count("error:") == 1


def test_inputs_far_below_one_integer_step_cannot_be_quantized(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loihi's inputs are integers: a model calibrated on values ~1e-5 needs weights beyond 8-bit mantissas × 2^7."""
    torch.manual_seed(0)
    model = _export(nn.Sequential(nn.Linear(FEATURES, 8, bias=False), nn.ReLU(), nn.Linear(8, 2)),
                    torch.zeros(1, FEATURES), tmp_path / "m.onnx")  # fmt: skip
    np.save(tmp_path / "tiny.npy", np.random.default_rng(0).random((32, FEATURES)).astype(np.float32) * 1e-5)
    out = tmp_path / "art"
    code = main(["compile", str(model), "--target", "loihi2", "--method", "exact",
                 "--calib", str(tmp_path / "tiny.npy"), "--timesteps", "8", "-o", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "node 'node_linear.q' (STBIF)" in err and "has no Loihi form at any of 0..16 bits per level" in err
    assert "exceeds" in err and "Loihi's inputs are integers" in err


Reports = tuple[dict[str, Any], dict[str, Any]]


def _compile_and_verify(
    model: Path, calib: Path, x: np.ndarray, steps: int, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> Reports:
    """``spikec compile --method exact`` with the sample held for ``steps``, then ``spikec verify --layers``."""
    np.save(out.parent / "x.npy", np.broadcast_to(x, (steps, *x.shape)))  # the sample held every step
    code = main(["compile", str(model), "--target", "loihi2", "--method", "exact", "--calib", str(calib),
                 "--timesteps", str(steps), *extra, "--inputs", str(out.parent / "x.npy"), "-o", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["verify", str(out), "--layers", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result
    return json.loads((out / "report.json").read_text()), result


@pytest.mark.slow
def test_mlp_compiled_with_the_exact_method_runs_in_lava_as_in_the_interpreter(
    mlp: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, calib = mlp
    x = np.load(calib)[:2]
    report, r = _compile_and_verify(model, calib, x, 24, tmp_path / "art", capsys)
    quantized = report["artifact"]["quantize"]
    assert quantized["method"] == "exact" and quantized["settled_after_steps"] <= 24
    assert r["mismatches"] == 0 and r["agreement"] == 1.0 and r["samples"] == 2
    every = {"input.delta", "node_linear.q.clip", "node_linear.q.merge", "node_linear.q.sum", "node_linear.q.floor",
             "node_linear.q", "node_relu_1.q", "node_linear_2.plus_bias"}  # fmt: skip
    assert every <= set(r["values"]) and r["compared"] > 10_000
    print(f"\nexact MLP on Loihi 2, 2 samples x 24 steps, every layer: {r['compared']} values, {r['timing']}")


@pytest.mark.slow
def test_cnn_on_raw_pixels_with_max_pooling_runs_in_lava(cnn: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Pixels 0..255 against a coarse level: 2^14 units per level, two floor shifts with a relay; max-pool trees."""
    model, calib = cnn
    report, r = _compile_and_verify(model, calib, np.load(calib)[:1], 36, tmp_path / "art", capsys,
                                    "--pass-option", "quantize.input_max=255")  # fmt: skip
    layers = {layer["name"]: layer for layer in report["artifact"]["quantize"]["layers"]}
    assert layers["node_conv2d.q"]["shift"] > 8 and {"node_conv2d.q.change", "node_conv2d.q.relay"} <= set(r["values"])
    assert {"node_max_pool2d.max", "node_max_pool2d_1.max.1"} <= set(r["values"])
    assert r["mismatches"] == 0 and r["compared"] > 50_000
    print(f"\nexact CNN on Loihi 2, 1 sample x 36 steps, every layer: {r['compared']} values, {r['timing']}")
