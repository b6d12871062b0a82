"""The fine-tuning quantizers of benchmarks/vit/qat.py sit where spikec's quantize-activations puts its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import fx

from benchmarks.vit.model import mnist_vit
from benchmarks.vit.qat import FakeQuant, quantization_sites, with_fake_quant
from spikec.convert_exact import PREPARATION
from spikec.frontends.onnx import import_onnx
from spikec.passes.quantize_activations import quantization_sites as spikec_sites
from spikec.pipeline import PassManager

VIT = Path(__file__).resolve().parents[1] / "benchmarks" / "vit"


def test_qat_and_spikec_quantize_the_same_tensors() -> None:
    torch_sites = quantization_sites(fx.symbolic_trace(mnist_vit()))
    graph = PassManager(list(PREPARATION)).run(import_onnx(VIT / "vit_mnist_qat16.onnx"))
    sites = spikec_sites(graph)
    assert len(torch_sites) == len(sites) == 41
    kinds = sorted(graph.nodes[s].kind for s in sites)
    # per block: 2 LayerNorms, q/k/v and fc1 (Linear outputs), 2 attention products, softmax, GELU; + final LN
    assert kinds.count("LayerNorm") == 9 and kinds.count("Softmax") == 4 and kinds.count("GELU") == 4
    assert kinds.count("MatMul") == 8


def test_fake_quant_rounds_to_levels_and_passes_gradients_inside_the_range() -> None:
    q = FakeQuant(levels=4)
    q.observe = True
    q(torch.linspace(0.0, 3.0, 1000))
    q.observe = False
    q.calibrate()
    x = torch.tensor([-1.0, 0.2, 1.6, 2.9, 5.0], requires_grad=True)
    y = q(x)
    step = float(q.step)
    assert torch.allclose(y / step, torch.round(y / step))  # on the grid
    assert float(y.detach().min()) == 0.0 and float(y.detach().max()) == pytest.approx(3 * step)  # 4 levels
    y.sum().backward()
    assert x.grad is not None and x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_the_wrapped_model_computes_the_quantized_forward() -> None:
    torch.manual_seed(0)
    model = mnist_vit().eval()
    gm, quants = with_fake_quant(model, 16)
    assert len(quants) == 41
    x = torch.rand(4, 1, 28, 28)
    for q in quants:
        q.observe = True
    gm(x)
    for q in quants:
        q.observe = False
        q.calibrate()
    assert not torch.allclose(gm(x), model(x))  # quantized
    assert torch.allclose(gm(x), gm(x))
