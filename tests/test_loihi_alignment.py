"""How a Loihi neuron reads sources of different latency (targets/loihi2/alignment.py): aligned exactly by delays
and relays, or on arrival; ``auto`` reads on arrival only where the relays would outnumber the network's neurons.

The models are torchvision-style DenseNet and ResNet blocks (tests/loihi_cnns.py) exported with torch.onnx.export;
Lava's side of the arrival lowering, and the short command on a deep dense block (auto reads it on arrival), are
in tests/test_loihi_cnn.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_loihi_cnn import LOWER, _as_loihi_resets, _convert, layer_spikes

from spikec.errors import PassError
from spikec.ir import Graph
from spikec.passes.quantize import QuantizationError, quantize
from spikec.pipeline import PassManager
from spikec.targets.loihi2.alignment import network_neurons
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense
from spikec.targets.loihi2.relay import LoihiGradedVec


def _lowered(name: str, tmp_path: Path, align: str) -> tuple[Graph, Graph]:
    float_snn = _as_loihi_resets(_convert(name, tmp_path))
    steps = [step.replace("timesteps=64}", f"timesteps=64,align={align}}}") for step in LOWER]
    manager = PassManager(steps)
    low = manager.run(float_snn)
    return float_snn, low


def _delays(graph: Graph) -> list[int]:
    nodes = graph.nodes.values()
    conv = [n.delay for n in nodes if isinstance(n, LoihiConv)]
    dense = [int(np.max(n.delay)) for n in nodes if isinstance(n, LoihiDense) and n.delay is not None]
    return conv + dense


def test_reading_on_arrival_drops_every_delay_and_relay_and_keeps_each_layer_rate(tmp_path: Path) -> None:
    """DenseNet's concatenations read on arrival: no synaptic delay, no relay layer; every layer fires at the float
    SNN's rate (a faster part's train is read from a few steps into it, which a rate code does not change)."""
    float_snn, exact = _lowered("densenet", tmp_path, "exact")
    _, arrival = _lowered("densenet", tmp_path, "arrival")
    assert any(".relay" in n for n in exact.nodes) and any(_delays(exact))
    assert not any(".relay" in n for n in arrival.nodes) and not any(_delays(arrival))
    for layer, want, shifted in layer_spikes(float_snn, arrival):
        assert abs(shifted.mean() - want.mean()) < 0.03, layer
        assert want.mean() > 0.005, layer


def test_reading_on_arrival_computes_each_shared_part_once_and_relays_its_sums(tmp_path: Path) -> None:
    """A part that two or more later layers read through their BatchNorm (DenseNet's 3×3 convs, the transition's
    1×1 conv + average pool) is computed once into a GradedVec relay; each reader takes one relay channel per
    neuron through a 1×1 conv with its own weight exponent (Lava's Sparse), not the part's conv again. Aligned
    exactly, every reader still computes the conv (graded spikes cannot be delayed in Lava)."""
    _, exact = _lowered("densenet", tmp_path, "exact")
    _, arrival = _lowered("densenet", tmp_path, "arrival")
    relays = [n for n, node in arrival.nodes.items() if isinstance(node, LoihiGradedVec)]
    assert relays and not any(isinstance(node, LoihiGradedVec) for node in exact.nodes.values())
    readers = [e.dst for r in relays for e in arrival.out_edges(r)]
    assert len(readers) > len(relays)  # each part is read by two or more layers
    for name in readers:
        node = arrival.nodes[name]
        assert isinstance(node, LoihiConv) and node.weight.shape[2:] == (1, 1) and node.num_message_bits > 0
        assert node.weight_exp < 0 and node.per_synapse and np.max(np.abs(node.weight)) > 64  # full-width weights
    parts = [e.src for r in relays for e in arrival.in_edges(r)]  # each relay's conv, once

    def three_by_three(graph: Graph) -> int:
        return sum(isinstance(n, LoihiConv) and n.weight.shape[2:] == (3, 3) for n in graph.nodes.values())

    assert all(arrival.nodes[p].weight_exp == 0 for p in parts)
    assert three_by_three(arrival) < three_by_three(exact)


def test_the_quantize_report_counts_the_shared_parts_and_their_readers_exponents(tmp_path: Path) -> None:
    float_snn = _as_loihi_resets(_convert("densenet", tmp_path))
    result = quantize(float_snn, target="loihi2", reset_to_zero=True, timesteps=64, align="arrival")
    parts = [layer for layer in result.report["layers"] if layer.get("shared_part")]
    relays = [n for n, node in result.graph.nodes.items() if isinstance(node, LoihiGradedVec)]
    assert sorted(p["name"] for p in parts) == sorted(relays)
    assert all(p["readers"] >= 2 and 0 < p["payload_max"] <= 1.01 * (1 << 17) for p in parts)
    relay_neurons = sum(int(np.prod(result.graph.types[r])) for r in relays)
    assert result.report["shared_parts"] == {"parts": len(parts), "relay_neurons": relay_neurons}
    assert any(line.startswith(f"  shared parts: {len(parts)} computed once") for line in result.lines)
    readers = [layer for layer in result.report["layers"] if "synapse_weight_exp" in layer]
    assert readers and all(-8 <= e < 0 for layer in readers for name, e in layer["synapse_weight_exp"].items()
                           if any(name.endswith("." + r) for r in relays))  # fmt: skip
    exact = quantize(float_snn, target="loihi2", reset_to_zero=True, timesteps=64, align="exact")
    assert "shared_parts" not in exact.report


def test_auto_keeps_exact_alignment_where_relays_are_few(tmp_path: Path) -> None:
    """ResNet's projection shortcut is relayed (fewer neurons than the network's): auto aligns it exactly."""
    float_snn = _as_loihi_resets(_convert("resnet-wide", tmp_path))
    result = quantize(float_snn, target="loihi2", reset_to_zero=True, timesteps=64)
    alignment = result.report["alignment"]
    assert alignment["chosen"] == "exact"
    assert 0 < alignment["relay_neurons"] < network_neurons(float_snn)
    assert any(".relay" in n for n in result.graph.nodes)


def test_an_unknown_alignment_or_one_the_target_does_not_take_is_refused(tmp_path: Path) -> None:
    float_snn = _as_loihi_resets(_convert("resnet-basic", tmp_path))
    with pytest.raises(QuantizationError, match=r"align='sideways' is not one of auto, exact, arrival"):
        quantize(float_snn, target="loihi2", reset_to_zero=True, align="sideways")
    with pytest.raises(PassError, match=r"align=exact: target 'spinnaker2' aligns no spike sources"):
        quantize(float_snn, target="spinnaker2", align="exact")
