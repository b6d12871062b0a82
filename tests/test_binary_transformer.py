"""The binary-spike transformer path: attention fusion on real torch ONNX exports, the conversion of a
Spikformer-style ViT to 0/1 spikes only, and the error a softmax ViT gets (node, origin, the fix)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from spikec.cli import main
from spikec.coding import simulate
from spikec.convert_binary import convert_binary
from spikec.data.mnist import load_mnist
from spikec.frontends.onnx import import_onnx
from spikec.interp import evaluate, run
from spikec.ir import CompensatedSpikingSelfAttention, Graph, Input, Output, SpikingSelfAttention
from spikec.models import save_model
from spikec.pipeline import PassManager
from spikec.spike_check import NotBinarySpikes, check_spikes
from spikec.target import Capabilities, Target

REPO = Path(__file__).resolve().parents[1]
VIT = REPO / "benchmarks" / "vit"


def _benchmark_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vit_model_binary", VIT / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _export(model: nn.Module, shape: tuple[int, ...], path: Path) -> Graph:
    """torch's TorchScript ONNX export (seconds, where dynamo takes minutes on a loaded CPU; K's transpose comes
    out as two Transposes). The dynamo export is covered by the benchmark's cached vit_binary_mnist.onnx."""
    with torch.no_grad():
        torch.onnx.export(model.eval(), (torch.zeros(1, *shape),), str(path), dynamo=False, opset_version=18,
                          input_names=["x"], output_names=["y"])  # fmt: skip
    return import_onnx(path)


class _Attention(nn.Module):
    """Spikformer attention as people write it: ReLU'd q, k, v, head split by view + transpose, no softmax."""

    def __init__(self, dim: int, heads: int, scale: float, early_scale: bool, softmax: bool = False) -> None:
        super().__init__()
        self.heads, self.scale, self.early_scale, self.softmax = heads, scale, early_scale, softmax
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            t = torch.relu(t)
            return t if h == 1 else t.view(b, n, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = q @ k.transpose(-2, -1)
        if self.softmax:
            a = torch.softmax(a, dim=-1)
        y = (a * self.scale) @ v if self.early_scale else a @ v * self.scale
        return y if h == 1 else y.transpose(1, 2).reshape(b, n, d)


@pytest.mark.parametrize(("heads", "early_scale"), [(4, False), (2, True), (1, False)])
def test_fusion_of_a_torch_export_is_one_ssa_and_computes_the_same(
    tmp_path: Path, heads: int, early_scale: bool
) -> None:
    torch.manual_seed(heads)
    model = _Attention(16, heads, 0.125, early_scale)
    graph = _export(model, (6, 16), tmp_path / "attn.onnx")
    assert [n.kind for n in graph.nodes.values()].count("MatMul") == 2
    fused = PassManager(["fuse-spiking-attention"]).run(graph)
    kinds = [n.kind for n in fused.nodes.values()]
    assert "MatMul" not in kinds and kinds.count("SpikingSelfAttention") == 1
    (ssa,) = (n for n in fused.nodes.values() if n.kind == "SpikingSelfAttention")
    assert ssa.heads == heads and ssa.scale == pytest.approx(0.125)  # type: ignore[attr-defined]
    assert ssa.origin.startswith("onnx:")
    assert all(fused.nodes[e.src].kind == "ReLU" for e in fused.in_edges(next(n for n in fused.nodes
               if fused.nodes[n].kind == "SpikingSelfAttention")))  # fmt: skip
    x = np.random.default_rng(0).normal(size=(5, 6, 16)).astype(np.float32)
    want = evaluate(graph, x).outputs["y"]
    got = evaluate(fused, x).outputs["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.as_tensor(x)).numpy(), rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_the_benchmark_export_fuses_into_four_attention_nodes(data_dir: Path) -> None:
    """The trained binary ViT, exported by torch's dynamo exporter (K's transpose as one Transpose)."""
    graph = import_onnx(VIT / "vit_binary_mnist.onnx")
    result = PassManager(["fuse-spiking-attention"]).run(graph)
    kinds = [n.kind for n in result.nodes.values()]
    assert kinds.count("SpikingSelfAttention") == 4 and "MatMul" not in kinds
    assert {n.heads for n in result.nodes.values() if n.kind == "SpikingSelfAttention"} == {4}  # type: ignore[attr-defined]
    x = (load_mnist(data_dir / "mnist")[0][8000:8008, None] / np.float32(255)).astype(np.float32)
    want = evaluate(graph, x).outputs[graph.outputs[0]]
    np.testing.assert_allclose(evaluate(result, x).outputs[graph.outputs[0]], want, rtol=1e-6, atol=1e-6)


def test_softmax_attention_is_not_fused(tmp_path: Path) -> None:
    graph = _export(_Attention(16, 2, 0.25, False, softmax=True), (6, 16), tmp_path / "soft.onnx")
    fused = PassManager(["fuse-spiking-attention"]).run(graph)
    assert fused == graph  # Q·Kᵀ → softmax → ·V is not a product of spikes: left alone


@pytest.fixture(scope="module")
def tiny_binary_vit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Graph, Path]:
    torch.manual_seed(0)
    models = _benchmark_models()
    model = models.BinaryViT(image=8, patch=2, dim=16, depth=2, heads=2, mlp=32)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding is tested too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    reference = model.eval()(torch.rand(3, 1, 8, 8))
    model.fold_batchnorm()
    path = tmp_path_factory.mktemp("binvit") / "binvit.onnx"
    graph = _export(model, (1, 8, 8), path)
    assert reference.shape == (3, 10)
    return graph, path


def test_converted_binary_vit_reads_only_spikes_and_the_cli_check_passes(
    tiny_binary_vit: tuple[Graph, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph, _ = tiny_binary_vit
    calib = np.random.default_rng(1).random((64, 1, 8, 8)).astype(np.float32)
    snn, report = convert_binary(graph, calib, timesteps=8, measure_rates=False)
    kinds = [n.kind for n in snn.nodes.values()]
    assert kinds.count("CompensatedSpikingSelfAttention") == 2 and "MatMul" not in kinds and "ReLU" not in kinds
    assert report.method == "binary" and report.binary_spikes and len(report.attention) == 2
    assert report.attention_mode == "compensated"
    per_step, _ = convert_binary(graph, calib, timesteps=8, attention="per-step", measure_rates=False)
    assert [n.kind for n in per_step.nodes.values()].count("SpikingSelfAttention") == 2
    assert check_spikes(snn).ok  # inputs real: the IF encoding layer makes the first spikes
    first = next(e.dst for e in snn.out_edges(snn.inputs[0]))
    assert snn.nodes[first].kind == "IF"
    sir = tmp_path / "binvit.sir"
    save_model(snn, sir)
    assert main(["check", str(sir), "--binary-spikes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["binary_spikes"] is True and out["offenders"] == []


def test_negative_inputs_are_refused(tiny_binary_vit: tuple[Graph, Path]) -> None:
    graph, _ = tiny_binary_vit
    with pytest.raises(Exception, match="negative inputs"):
        convert_binary(graph, -np.ones((4, 1, 8, 8), np.float32), timesteps=4)


@pytest.mark.slow
def test_binary_vit_snn_approaches_the_ann_with_time(tiny_binary_vit: tuple[Graph, Path]) -> None:
    graph, _ = tiny_binary_vit
    rng = np.random.default_rng(2)
    calib, x = rng.random((128, 1, 8, 8)).astype(np.float32), rng.random((48, 1, 8, 8)).astype(np.float32)
    snn, _ = convert_binary(graph, calib, timesteps=64, measure_rates=False)
    want = evaluate(graph, x).outputs[graph.outputs[0]]
    answers = simulate(snn, x, timesteps=64).answers[snn.outputs[0]]  # (T, N, 10), answer after t steps
    error = {t: float(np.abs(answers[t - 1] - want).mean() / np.abs(want).mean()) for t in (4, 16, 64)}
    agree = {t: float((answers[t - 1].argmax(-1) == want.argmax(-1)).mean()) for t in (4, 16, 64)}
    assert error[64] < error[16] < error[4] and error[64] < 0.25, error
    assert agree[64] >= agree[4] and agree[64] >= 0.6, agree


class _EventOnlyChip(Target):
    name = "event-only"

    def capabilities(self) -> Capabilities:
        return Capabilities(binary_spikes_only=True)


def test_softmax_vit_error_names_the_node_its_origin_and_the_fix() -> None:
    softmax_vit = import_onnx(VIT / "vit_mnist.onnx")
    calib = np.zeros((2, 1, 28, 28), np.float32)
    with pytest.raises(NotBinarySpikes) as err:
        convert_binary(softmax_vit, calib, timesteps=4)
    message = str(err.value)
    softmax = next(n for n, node in softmax_vit.nodes.items() if node.kind == "Softmax")
    norm = next(n for n, node in softmax_vit.nodes.items() if node.kind == "LayerNorm")
    assert f"node '{softmax}' (Softmax) from {softmax_vit.nodes[softmax].origin}" in message
    assert f"node '{norm}' (LayerNorm) from onnx:" in message
    assert "--arch binary" in message and "fuse-spiking-attention" in message and "--method binary" in message
    assert "(Unary)" in message  # GELU arrives as its erf form at opset 18
    with pytest.raises(NotBinarySpikes) as target_err:  # a binary-only target refuses it in legalize
        _EventOnlyChip().legalize(softmax_vit)
    assert "target 'event-only' takes only binary spike events" in str(target_err.value)
    assert f"node '{softmax}' (Softmax)" in str(target_err.value) and "--method binary" in str(target_err.value)


def test_compile_method_binary_from_the_shell(
    tiny_binary_vit: tuple[Graph, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, onnx_path = tiny_binary_vit
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(3).random((32, 1, 8, 8)).astype(np.float32))
    out = tmp_path / "art"
    argv = ["compile", str(onnx_path), "--method", "binary", "--calib", str(calib), "--timesteps", "4", "-o", str(out)]
    assert main([*argv, "--json"]) == 0
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "binary" and report["binary_spikes"] is True and len(report["attention"]) == 2
    sir = next(out.glob("*.sir"))
    assert main(["check", str(sir), "--binary-spikes"]) == 0


def test_attention_phases_randomise_only_the_attention_operands(tiny_binary_vit: tuple[Graph, Path]) -> None:
    graph, _ = tiny_binary_vit
    calib = np.random.default_rng(4).random((32, 1, 8, 8)).astype(np.float32)
    aligned, _ = convert_binary(graph, calib, timesteps=4, phases="aligned", measure_rates=False)
    shifted, report = convert_binary(graph, calib, timesteps=4, phases="random", measure_rates=False)
    assert report.phases == "random"
    operands = {e.src for n, node in shifted.nodes.items() if isinstance(node, SpikingSelfAttention)
                for e in shifted.in_edges(n)}  # fmt: skip
    assert len(operands) == 6
    for name, node in shifted.nodes.items():
        before = np.asarray(aligned.nodes[name].v_init) if node.kind == "IF" else None  # type: ignore[attr-defined]
        if name in operands:
            v = np.asarray(node.v_init)  # type: ignore[attr-defined]
            assert v.shape == shifted.types[name] and v.min() >= 0 and v.max() < 1 and v.std() > 0.1
        elif before is not None:
            np.testing.assert_array_equal(np.asarray(node.v_init), before)  # type: ignore[attr-defined]
    again, _ = convert_binary(graph, calib, timesteps=4, phases="random", measure_rates=False)
    assert again == shifted  # seeded


def test_compensated_attention_mean_is_the_attention_of_the_mean_rates() -> None:
    rng = np.random.default_rng(5)
    steps, batch = 12, 3
    trains = {
        n: (rng.random((steps, batch, 5, 8)) < p).astype(np.float64)
        for n, p in zip("qkv", (0.2, 0.5, 0.8), strict=True)
    }
    trains["q"][:, :, :, :4] = trains["k"][:, :, :, :4]  # correlated trains: per-step products overshoot
    nodes = {n: Input(shape=(5, 8)) for n in "qkv"}
    for kind in (CompensatedSpikingSelfAttention, SpikingSelfAttention):
        graph = Graph({**nodes, "att": kind(heads=2, scale=0.5), "out": Output()},
                      [("q", "att"), ("k", "att"), ("v", "att"), ("att", "out")])  # fmt: skip
        y = run(graph, trains, steps=steps).outputs["out"]  # (T, B, 5, 8)
        for t in (1, 5, 12):
            means = [trains[n][:t].mean(axis=0) for n in "qkv"]
            want = evaluate(Graph({**nodes, "att": SpikingSelfAttention(heads=2, scale=0.5), "out": Output()},
                                  [("q", "att"), ("k", "att"), ("v", "att"), ("att", "out")]),
                            dict(zip("qkv", means, strict=True))).outputs["out"]  # fmt: skip
            got = y[:t].mean(axis=0)
            if kind is CompensatedSpikingSelfAttention:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            elif t == 12:
                assert np.abs(got - want).sum() > 0.05 * np.abs(want).sum()  # what compensation removes
