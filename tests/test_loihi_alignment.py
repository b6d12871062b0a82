"""How a Loihi neuron reads sources of different latency (targets/loihi2/alignment.py): aligned exactly by delays
and relays, or on arrival; ``auto`` reads on arrival only where the relays would outnumber the network's neurons.

The models are torchvision-style DenseNet and ResNet blocks (tests/loihi_cnns.py) exported with torch.onnx.export;
Lava's side of the arrival lowering is in tests/test_loihi_cnn.py's Lava test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from loihi_cnns import spikes
from test_loihi_cnn import LOWER, T, _as_loihi_resets, _convert, _latencies

from spikec.cli import main
from spikec.errors import PassError
from spikec.interp import run
from spikec.ir import Graph, snn
from spikec.passes.quantize import QuantizationError, quantize
from spikec.pipeline import PassManager
from spikec.targets.loihi2.alignment import network_neurons
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, LoihiLIF


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
    x = spikes(8, 2).astype(np.float64)
    latency = _latencies(arrival)
    steps = T + max(latency.values())
    want = run(float_snn, np.broadcast_to(x, (T, *x.shape)), trace=True).traces
    got = run(arrival, np.broadcast_to(x, (steps, *x.shape)), trace=True).traces
    layers = [n for n, node in float_snn.nodes.items() if isinstance(node, snn.IF) and n in arrival.nodes]
    assert len(layers) >= 5
    for layer in layers:
        assert isinstance(arrival.nodes[layer], LoihiLIF)
        shifted = got[layer][latency[layer] : latency[layer] + T]
        assert abs(shifted.mean() - want[layer].mean()) < 0.03, layer
        assert want[layer].mean() > 0.005, layer


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


@pytest.mark.slow
def test_short_command_reads_a_deep_dense_block_on_arrival_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An 8-layer dense block of DenseNet-121's widths: aligning each part exactly for every later layer would take
    more relay neurons than the network has (DenseNet-121 @224: 44.0 M beside 15.9 M), so the short command reads
    the parts on arrival, records why in report.json, and places fewer cores than ``align=exact``."""
    import torch
    from torch import nn

    class DenseLayer(nn.Module):
        def __init__(self, cin: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 128, 1, bias=False),
                nn.BatchNorm2d(128), nn.ReLU(), nn.Conv2d(128, 32, 3, padding=1, bias=False),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, self.body(x)], 1)

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), *(DenseLayer(64 + 32 * i) for i in range(8)),
        nn.BatchNorm2d(320), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(320, 10),
    )  # fmt: skip
    path, calib = tmp_path / "dense.onnx", np.random.default_rng(0).normal(size=(4, 3, 8, 8)).astype(np.float32)
    torch.onnx.export(model.eval(), (torch.from_numpy(calib[:1]),), str(path), dynamo=False)
    np.save(tmp_path / "calib.npy", calib)
    cores = {}
    for align in ("auto", "exact"):
        out = tmp_path / align
        code = main(["compile", str(path), "--target", "loihi2", "--calib", str(tmp_path / "calib.npy"),
                     "--timesteps", "8", "-o", str(out), "--json",
                     *(["--pass-option", "quantize.align=exact"] if align == "exact" else [])])  # fmt: skip
        assert code == 0, capsys.readouterr()
        report = json.loads((out / "report.json").read_text())["artifact"]["quantize"]
        network = json.loads((out / "network.json").read_text())["nodes"]
        nodes = [n["name"] for n in network if n["kind"] == "LoihiLIF"]  # delay relays (not split-fanin's)
        cores[align] = json.loads((out / "core_map.json").read_text())["cores_used"]
        if align == "auto":
            assert report["alignment"]["chosen"] == "arrival"
            assert "more relay neurons than the network's" in report["alignment"]["why"]
            assert not any(".relay" in n for n in nodes)
        else:
            assert report["alignment"]["chosen"] == "exact" and report["alignment"]["relay_neurons"] > 0
            assert any(".relay" in n for n in nodes)
    assert cores["auto"] < cores["exact"]
