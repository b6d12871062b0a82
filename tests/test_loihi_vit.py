"""A ViT exported from PyTorch, converted with ``--method binary`` and compiled for Loihi 2.

Two models written with torch's own modules and exported by torch's two exporters: the benchmark's
``BinaryViT`` (conv patch embedding, Reshape/Transpose into tokens, Spikformer blocks, a head on all tokens
flattened; dynamo exporter) in a small configuration, and a Spikformer-style classifier written here
differently (``permute``/``view`` head split, biased q/k/v; TorchScript exporter).
flatten-tokens must keep every spike of the converted SNN; quantize must lower it; Lava must equal the
interpreter's fixed point (slow tests).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from spikec.cli import main
from spikec.convert_binary import convert_binary
from spikec.errors import PassError
from spikec.frontends.onnx import import_onnx
from spikec.interp import run
from spikec.ir import Graph
from spikec.pipeline import PassManager

VIT_MODEL = Path(__file__).resolve().parents[1] / "benchmarks" / "vit" / "model.py"
IMAGE = 12  # 3x3 patches of 4: 9 tokens
FLATTEN = ["fuse", "fold-batchnorm", "fuse-spiking-attention", ("flatten-tokens", {"attention": "per-step"})]


class PermuteSpikformer(nn.Module):
    """Spikformer-style, written another way: ``permute``/``view`` head split, q/k/v with bias, one linear head."""

    def __init__(self, dim: int = 16, heads: int = 2, classes: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Conv2d(1, dim, 4, stride=4)
        self.qkv = nn.ModuleList(nn.Linear(dim, dim) for _ in range(3))
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(9 * dim, classes)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.embed(img)).flatten(2).permute(0, 2, 1)  # (B, N, D)
        b, n, d = x.shape
        q, k, v = (torch.relu(f(x)).view(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3) for f in self.qkv)
        a = torch.matmul(torch.matmul(q, k.permute(0, 1, 3, 2)), v) * 0.25
        a = torch.relu(a.permute(0, 2, 1, 3).reshape(b, n, d))
        x = torch.relu(x + self.proj(a))
        return self.head(x.reshape(b, n * d))


def _benchmark_module() -> Any:
    spec = importlib.util.spec_from_file_location("vit_model", VIT_MODEL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _binary_vit() -> nn.Module:
    torch.manual_seed(0)
    model = _benchmark_module().BinaryViT(image=IMAGE, patch=4, dim=16, depth=1, heads=2, mlp=32).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):  # statistics a trained model would have
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.fold_batchnorm()


def _permute() -> nn.Module:
    torch.manual_seed(1)
    return PermuteSpikformer().eval()


MODELS = {"binary-vit": (_binary_vit, True), "permute": (_permute, False)}  # builder, dynamo exporter


@pytest.fixture(scope="module", params=list(MODELS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    build, dynamo = MODELS[request.param]
    path = tmp_path_factory.mktemp(request.param) / "vit.onnx"
    with torch.no_grad():
        torch.onnx.export(build(), (torch.zeros(1, 1, IMAGE, IMAGE),), str(path), dynamo=dynamo, opset_version=18,
                          input_names=["image"], output_names=["logits"], external_data=False)  # fmt: skip
    return path


def _images(n: int, seed: int = 0) -> np.ndarray:
    """Integer pixels / 255 (what Loihi's graded input carries exactly)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 1, IMAGE, IMAGE)) / 255.0


def _snn(path: Path) -> Graph:
    snn, _ = convert_binary(import_onnx(path), _images(6), timesteps=16, attention="per-step", measure_rates=False)
    return snn


def test_flatten_tokens_keeps_every_spike_of_an_exported_vit(exported: Path) -> None:
    snn = _snn(exported)
    flat = PassManager(FLATTEN).run(snn)
    kinds = {n.kind for n in flat.nodes.values()}
    assert "SpikingSelfAttention" not in kinds and "Transpose" in kinds  # the patch grid's Transpose stays
    assert all(len(flat.types[e.src]) == 1 for n, node in flat.nodes.items() if node.kind == "Dense"
               for e in flat.in_edges(n))  # fmt: skip  # every Dense reads a flat vector
    x = np.broadcast_to(_images(3, seed=1), (16, 3, 1, IMAGE, IMAGE)).copy()
    neurons = [n for n, node in snn.nodes.items() if node.kind == "IF"]
    want, got = run(snn, x, trace=neurons), run(flat, x, trace=neurons)
    for name in neurons:
        np.testing.assert_array_equal(got.traces[name].reshape(want.traces[name].shape), want.traces[name], name)
    after = [n for n in neurons if snn.nodes[snn.in_edges(n)[0].src].kind == "SpikingSelfAttention"]
    assert after and all(want.traces[n].mean() > 0 for n in after)  # the attention's neurons fire
    np.testing.assert_allclose(got.outputs["logits"], want.outputs["logits"], atol=1e-9)


def test_the_exported_vit_lowers_to_loihi_kinds(exported: Path) -> None:
    """quantize reads the patch grid's Transpose as a 0/1 gather into the Q/K/V synapses and the residual."""
    low = PassManager([*FLATTEN, "quantize{target=loihi2,reset_to_zero=true}"]).run(_snn(exported))
    assert {n.kind for n in low.nodes.values()} <= {"Input", "Output", "Flatten", "LoihiLIF", "LoihiDense",
                                                    "LoihiConv"}  # fmt: skip
    assert any(n.endswith("_coincide") for n in low.nodes)


def test_compensated_attention_is_refused_with_the_fix(exported: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """--target loihi2 converts with per-step attention; asking for the compensated one (products of spike counts)
    is an error saying what Loihi does instead, and nothing is written. A compensated SNN given to the pipeline
    is refused naming the node, its origin and the fix."""
    np.save(tmp_path / "c.npy", _images(4))
    out = tmp_path / "out"
    code = main(["compile", str(exported), "--method", "binary", "--target", "loihi2", "--calib",
                 str(tmp_path / "c.npy"), "--timesteps", "16", "-o", str(out),
                 "--attention", "compensated"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "--attention compensated: target 'loihi2' cannot run it" in err and "step by step" in err
    compensated, _ = convert_binary(import_onnx(exported), _images(4), timesteps=8, measure_rates=False)
    with pytest.raises(PassError, match=r"\(CompensatedSpikingSelfAttention\) from onnx:.*multiplies spike counts"
                                        r".*--attention per-step"):  # fmt: skip
        PassManager(["fuse", "fold-batchnorm", "fuse-spiking-attention", "flatten-tokens"]).run(compensated)


def test_an_attention_too_large_for_coincidence_neurons_is_refused(exported: Path) -> None:
    from spikec.passes import flatten_tokens_attention

    limit = flatten_tokens_attention.MAX_COINCIDENCE_SYNAPSES
    flatten_tokens_attention.MAX_COINCIDENCE_SYNAPSES = 1000
    try:
        with pytest.raises(PassError, match=r"\(SpikingSelfAttention\) from onnx:\S+ would need 10368 coincidence "
                                            r"neurons.*use fewer tokens or a narrower head"):  # fmt: skip
            PassManager(FLATTEN).run(_snn(exported))
    finally:
        flatten_tokens_attention.MAX_COINCIDENCE_SYNAPSES = limit


@pytest.mark.slow
def test_an_exported_vit_compiles_for_loihi2_and_verifies_in_lava(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "c.npy", _images(4).astype(np.float32))
    out = tmp_path / "out"
    code = main(["compile", str(exported), "--method", "binary", "--target", "loihi2", "--calib",
                 str(tmp_path / "c.npy"), "--timesteps", "16", "-o", str(out), "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["conversion_settings"]["attention"] == {
        "value": "per-step",
        "by": "target loihi2",
        "reason": report["conversion_settings"]["attention"]["reason"],
    }
    assert report["artifact"]["core_map"]["cores_used"] >= 1
    code = main(["verify", str(out), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0, r
    assert r["mismatches"] == 0 and r["compared"] > 0 and r["steps"] == 16


@pytest.mark.slow
def test_the_binary_vit_compiled_for_loihi2_follows_its_ann_in_fixed_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--method binary --target loihi2`` converts with Loihi's own reset (to zero, threshold searched at T) so
    the float SNN is the network the chip runs. Converted with reset by subtraction and run with Loihi's reset to
    zero, this 2-block ViT's fixed-point network agreed with the ANN on 2 of these 16 samples (its float SNN on
    all): each of its layers lost the residue above threshold at every spike."""
    from spikec.coding import encode
    from spikec.targets.loihi2.verify import output_neurons
    from spikec.text import load_sir

    torch.manual_seed(0)
    vit = _benchmark_module().BinaryViT(image=IMAGE, patch=4, dim=16, depth=2, heads=2, mlp=32).eval()
    for m in vit.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path, steps = tmp_path / "vit.onnx", 32
    with torch.no_grad():
        torch.onnx.export(vit.fold_batchnorm(), (torch.zeros(1, 1, IMAGE, IMAGE),), str(path), dynamo=True,
                          external_data=False)  # fmt: skip
    np.save(tmp_path / "c.npy", _images(4).astype(np.float32))
    out = tmp_path / "out"
    code = main(["compile", str(path), "--method", "binary", "--target", "loihi2", "--calib", str(tmp_path / "c.npy"),
                 "--timesteps", str(steps), "-o", str(out), "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    settings = report["conversion_settings"]
    assert settings["reset"]["value"] == "zero" and settings["reset"]["by"] == "target loihi2"
    assert settings["threshold"]["value"] == "auto" and "quantize.reset_to_zero" not in settings
    x = _images(16, seed=3)
    with torch.no_grad():
        ann = vit(torch.from_numpy(x).float()).numpy()
    graph = load_sir(out / "model.sir")
    ((_, readout),) = output_neurons(graph).items()
    run_for = steps + report["artifact"]["quantize"]["latency_steps"]
    feed = encode(x, run_for, settings["encoding"]["value"], scale=report["input_scale"])
    v = run(graph, {graph.inputs[0]: np.asarray(feed, np.float64)}, steps=run_for, trace=[readout]).traces
    fixed = v[f"{readout}.v"][-1].reshape(len(x), -1)
    assert np.mean(fixed.argmax(1) == ann.argmax(1)) >= 0.75  # measured 14 of 16 (reset by subtraction: 2)
    centred = [a - a.mean(1, keepdims=True) for a in (fixed, ann)]
    correlation = np.sum(centred[0] * centred[1], 1) / np.prod([np.linalg.norm(c, axis=1) for c in centred], 0)
    assert np.mean(correlation) >= 0.85  # the logits follow the ANN's, not one class (measured 0.93)


def test_a_mean_over_tokens_is_a_dense_on_the_flat_vector() -> None:
    from spikec.ir import LIF, Input, Output, Reduce

    nodes = {"x": Input(shape=(4, 8)), "n": LIF(tau=np.asarray(1.0), v_threshold=np.asarray(0.5)),
             "pool": Reduce(op="mean", axes=(0,), keepdims=0), "out": Output()}  # fmt: skip
    graph = Graph(nodes, [("x", "n"), ("n", "pool"), ("pool", "out")])
    flat = PassManager(["flatten-tokens"]).run(graph)
    assert flat.nodes["pool"].kind == "Dense" and flat.types["pool"] == (8,)
    x = (np.random.default_rng(0).random((5, 2, 4, 8)) < 0.5).astype(np.float64)
    np.testing.assert_allclose(run(flat, x).outputs["out"], run(graph, x).outputs["out"], atol=1e-12)
