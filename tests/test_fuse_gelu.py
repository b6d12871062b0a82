"""fuse-gelu: the erf GELU that torch exports op by op becomes one GELU node, with identical outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spikec.interp import evaluate
from spikec.ir import GELU, Graph
from spikec.passes.fuse_gelu import fuse_gelu_graph
from spikec.passes.quantize_activations import quantization_sites

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # two torch.onnx (dynamo) exports


class Written(torch.nn.Module):
    """Three hand-written erf GELUs (the ½ in three places) and one nn.GELU (exported as Gelu), after Linears."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.ModuleList(torch.nn.Linear(6, 6) for _ in range(4))
        self.act = torch.nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.fc[0](x)
        x = a * 0.5 * (1 + torch.erf(a / math.sqrt(2)))
        b = self.fc[1](x)
        x = b * ((1 + torch.erf(b * (1 / math.sqrt(2)))) * 0.5)
        c = self.fc[2](x)
        x = (0.5 * c) * (1 + torch.erf(c / math.sqrt(2)))
        return self.act(self.fc[3](x))


class NotGelu(torch.nn.Module):
    """x·½·(1 + erf(x/2)): the wrong inner scale, so not a GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.fc(x)
        return a * 0.5 * (1 + torch.erf(a / 2))


def _import(module: torch.nn.Module) -> Graph:
    from spikec import from_torch

    torch.manual_seed(0)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.8)
    return from_torch(module.eval(), torch.zeros(1, 6))


def test_every_exported_erf_gelu_is_fused_and_outputs_are_unchanged() -> None:
    module = Written()
    graph = _import(module)
    fused, count = fuse_gelu_graph(graph)
    assert count == 3
    assert sum(isinstance(n, GELU) for n in fused.nodes.values()) == 4
    assert not any(getattr(n, "op", None) == "erf" for n in fused.nodes.values())
    x = np.random.default_rng(1).normal(size=(16, 6))
    with torch.no_grad():
        want = module(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    got_before = next(iter(evaluate(graph, x).outputs.values()))
    got_after = next(iter(evaluate(fused, x).outputs.values()))
    np.testing.assert_allclose(got_after, got_before, rtol=1e-6, atol=1e-9)  # exported 1/√2 is float32
    np.testing.assert_allclose(got_after, want, rtol=1e-5, atol=1e-5)
    # the exact path now needs one quantizer per GELU output and one per Linear feeding it
    assert len(quantization_sites(fused)) == 8 < len(quantization_sites(graph))


def test_an_erf_that_is_not_a_gelu_is_left_alone() -> None:
    graph = _import(NotGelu())
    fused, count = fuse_gelu_graph(graph)
    assert count == 0 and fused is graph
