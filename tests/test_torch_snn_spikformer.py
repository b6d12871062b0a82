"""A Spikformer-style block per SNN framework: spikec's interpreter reproduces every neuron layer's
spikes, step for step, against the framework's own forward (float64, T=4, batch 2, 6 tokens).

The references run the frameworks themselves: SpikingJelly in multi-step mode on (T, B, N, C),
snnTorch one call per step. Both run in float64 so that the comparison is exact up to the order
of floating-point sums; snnTorch's Heaviside returns float32 spikes, which a hook casts to float64
(0 and 1 are exact in both) so that the next float64 layer accepts them.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from spikec.frontends.torch_import import from_torch
from spikec.interp import run
from spikec.ir.graph import Graph

REPO = Path(__file__).resolve().parents[1]
T, BATCH, TOKENS, DIM = 4, 2, 6, 16
NEURONS = ("q_lif", "k_lif", "v_lif", "attn_lif", "fc1_lif")


def _blocks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spikformer_block", REPO / "examples" / "spikformer_block.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _input(seed: int = 1) -> torch.Tensor:
    return 2 * torch.randn(T, BATCH, TOKENS, DIM, generator=torch.Generator().manual_seed(seed))


def _record(block: torch.nn.Module, spikes: dict[str, list[np.ndarray]]) -> None:
    """Keep each neuron layer's output; pass spikes on as float64 (snnTorch emits float32 0/1)."""

    def hook(name: str) -> Callable[..., torch.Tensor]:
        def keep(module: Any, inputs: Any, out: torch.Tensor) -> torch.Tensor:
            spikes.setdefault(name, []).append(out.detach().double().numpy())
            return out.double()

        return keep

    for name in NEURONS:
        block.get_submodule(name).register_forward_hook(hook(name))


def spikingjelly_reference(block: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from spikingjelly.activation_based import functional

    ref = copy.deepcopy(block).double()
    spikes: dict[str, list[np.ndarray]] = {}
    _record(ref, spikes)
    functional.reset_net(ref)
    with torch.no_grad():
        out = ref(x.double()).numpy()  # multi-step: the whole (T, B, N, C) sequence at once
    return out, {k: v[0] for k, v in spikes.items()}


def snntorch_reference(block: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import snntorch.utils

    ref = copy.deepcopy(block).double()
    spikes: dict[str, list[np.ndarray]] = {}
    _record(ref, spikes)
    snntorch.utils.reset(ref)
    with torch.no_grad():
        out = np.stack([ref(x[t].double()).numpy() for t in range(T)])
    return out, {k: np.stack(v) for k, v in spikes.items()}


def node_of(graph: Graph, path: str) -> str:
    """The SIR node imported from the module at ``path`` (its origin names it)."""
    (name,) = [n for n, node in graph.nodes.items() if node.origin.startswith(f"torch:{path} (")]
    return name


FRAMEWORKS = {
    "spikingjelly": ("build_spikingjelly", spikingjelly_reference),
    "snntorch": ("build_snntorch", snntorch_reference),
}


@pytest.mark.slow
@pytest.mark.parametrize(("heads", "scale"), [(2, 0.25), (4, 0.5)])
@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_every_neuron_layer_spikes_as_the_framework(framework: str, heads: int, scale: float) -> None:
    build, reference = FRAMEWORKS[framework]
    block = getattr(_blocks(), build)(DIM, heads, seed=heads, scale=scale)
    x = _input()
    want_out, want = reference(block, x)

    graph = from_torch(block, x[0, :1])
    got = run(graph, x.double().numpy(), trace=True)

    for path in NEURONS:
        spikes = got.traces[node_of(graph, path)]
        assert spikes.shape == want[path].shape, path
        assert 0.0 < want[path].mean() < 1.0, f"{path}: the reference never or always spikes; the test says nothing"
        mismatch = np.argwhere(spikes != want[path])
        assert not len(mismatch), f"{path}: {len(mismatch)} spikes differ, first at (t, b, ...) {mismatch[0]}"
    np.testing.assert_allclose(got.outputs[graph.outputs[0]], want_out, rtol=0, atol=1e-11)


@pytest.mark.slow
def test_spikingjelly_block_is_restored_after_import() -> None:
    """The user's module keeps its neurons and its multi-step mode after from_torch."""
    block = _blocks().build_spikingjelly(DIM, 2)
    neurons = {name: block.get_submodule(name) for name in NEURONS}
    from_torch(block, _input()[0, :1])
    assert {name: block.get_submodule(name) for name in NEURONS} == neurons
    assert all(m.step_mode == "m" for m in block.modules() if hasattr(m, "step_mode"))
    assert block(_input()).shape == (T, BATCH, TOKENS, DIM)  # still runs multi-step


@pytest.mark.slow
def test_neuron_nodes_name_the_framework_class() -> None:
    graph = from_torch(_blocks().build_snntorch(DIM, 2), _input()[0, :1])
    nodes = {path: graph.nodes[node_of(graph, path)] for path in NEURONS}
    kinds = {path: (node.kind, node.origin) for path, node in nodes.items()}
    assert kinds["q_lif"] == ("LIF", "torch:q_lif (Leaky)")
    assert kinds["fc1_lif"] == ("CubaLIF", "torch:fc1_lif (Synaptic)")
