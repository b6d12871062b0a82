"""NeuroBench's metrics (spikec.report.metrics) on models torch exported, against counts made by hand: synaptic
operations (dense, effective MACs and ACs), connection and activation sparsity, membrane updates, footprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from report_models import export, small_cnn

from spikec.cli import main
from spikec.convert import convert
from spikec.interp import run
from spikec.interp.backend import make_backend
from spikec.models import load_model
from spikec.report.metrics import MeasuringInterpreter, footprint, measure

# Linear(4, 3): fan-out of each input (its column's nonzero weights): 2, 0, 2, 1; 5 of 12 weights nonzero
W = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 3.0, 0.0], [4.0, 0.0, 0.0, 5.0]], np.float32)
SPIKES = np.array(
    [  # (T=3, N=2, 4)
        [[1, 0, 0, 0], [0, 0, 1, 1]],  # fan-out 2 | 2 + 1
        [[1, 1, 1, 1], [0, 1, 0, 0]],  # 2 + 0 + 2 + 1 | 0
        [[0, 0, 0, 0], [1, 0, 0, 1]],  # 0 | 2 + 1
    ],
    np.float64,
)
EFFECTIVE = (2 + 5 + 0 + 3 + 0 + 3) / 2  # per sample
DENSE = 3 * 12  # per sample: 3 steps x 12 weights


def _linear(tmp_path: Path) -> object:
    net = torch.nn.Linear(4, 3)
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(W))
        net.bias.fill_(0.5)  # biases are not synaptic operations
    return load_model(export(net, torch.rand(1, 4), tmp_path / "linear.onnx"))


def test_dense_layer_counts_each_spike_times_its_nonzero_fan_out(tmp_path: Path) -> None:
    graph = _linear(tmp_path)
    (name,) = graph.inputs
    m = measure(graph, {name: SPIKES}).to_json()
    assert (m["samples"], m["timesteps"]) == (2, 3)
    assert m["synaptic_operations"] == {"dense": DENSE, "effective_macs": 0.0, "effective_acs": EFFECTIVE}
    assert m["connection_sparsity"] == pytest.approx(7 / 12)
    (layer,) = m["synapse_layers"]
    assert (layer["kind"], layer["weights"], layer["effective_acs"]) == ("Dense", 12, EFFECTIVE)


def test_inputs_other_than_spikes_are_macs(tmp_path: Path) -> None:
    graph = _linear(tmp_path)
    (name,) = graph.inputs
    m = measure(graph, {name: SPIKES * 0.5}).to_json()  # the same nonzeros, not in {-1, 0, 1}
    assert m["synaptic_operations"] == {"dense": DENSE, "effective_macs": EFFECTIVE, "effective_acs": 0.0}


def test_conv_fan_out_stops_at_the_border(tmp_path: Path) -> None:
    net = torch.nn.Conv2d(1, 2, 3, padding=1, bias=False)
    w = np.zeros((2, 1, 3, 3), np.float32)
    w[0, 0, 0, 0], w[0, 0, 1, 1], w[1, 0, 2, 2] = 1.0, 2.0, 3.0  # taps (0,0), (1,1) | (2,2)
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(w))
    graph = load_model(export(net, torch.rand(1, 1, 4, 4), tmp_path / "conv.onnx"))
    x = np.zeros((1, 1, 1, 4, 4))
    x[0, 0, 0, 0, 0] = x[0, 0, 0, 2, 1] = 1.0
    m = measure(graph, {graph.inputs[0]: x}).to_json()
    # y[o, p, q] += W[o, a, b] x[p + a - 1, q + b - 1]: the spike at (0, 0) reaches outputs through taps (0,0)
    # and (1,1) only (tap (2,2) would write row -1); the spike at (2, 1) through all three
    assert m["synaptic_operations"]["effective_acs"] == 2 + 3
    # every weight 1: per channel and axis 3 taps at the 2 inner positions, 2 at the 2 border ones
    assert m["synaptic_operations"]["dense"] == 2 * (3 * 2 + 2 * 2) ** 2
    assert m["connection_sparsity"] == pytest.approx(15 / 18)


def test_footprint_is_every_parameter_at_its_stored_size(tmp_path: Path) -> None:
    graph = _linear(tmp_path)
    (dense,) = [n for n in graph.nodes.values() if n.kind == "Dense"]
    nbytes, params = footprint(graph)
    assert params == 12 + 3
    assert nbytes == dense.weight.nbytes + dense.bias.nbytes


def test_membrane_updates_and_activation_sparsity_of_a_converted_net(tmp_path: Path) -> None:
    """Neuron 1 of the IF layer has no input: its membrane is set once (the first step) and it never fires."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.ReLU(), torch.nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    ann = load_model(export(net, torch.rand(1, 3), tmp_path / "mlp.onnx"))
    calib = np.array([[0.2, 0.5, 0.1], [0.45, 0.3, 0.9], [0.9, 0.1, 0.3]])
    steps = 4
    snn, conversion = convert(ann, calib, timesteps=steps)
    (layer,) = conversion.layers
    train = np.broadcast_to(calib, (steps, *calib.shape))
    m = measure(snn, {snn.inputs[0]: train}).to_json()
    neurons = {n["name"]: n for n in m["neuron_layers"]}
    traced = run(snn, train, trace=[layer.name])
    v, spikes = traced.traces[f"{layer.name}.v"], traced.traces[layer.name]  # (T, N, 2)
    assert np.all(v[1:, :, 1] == v[:-1, :, 1]) and not spikes[..., 1].any()  # neuron 1: set once, silent
    assert np.all(v[1:, :, 0] != v[:-1, :, 0])  # neuron 0 integrates a nonzero input every step
    assert neurons[layer.name]["membrane_updates"] == 1 + steps  # per sample: neuron 1 once, neuron 0 each step
    assert neurons[layer.name]["activation_sparsity"] == 1 - np.count_nonzero(spikes) / spikes.size
    assert neurons[layer.name]["activation_sparsity"] == pytest.approx(1 - layer.spike_rate)


def test_a_compiled_cnn_reports_the_metrics_per_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command a user types: the first conv reads the analog image (MACs), the later layers spikes (ACs)."""
    model, calib = small_cnn(tmp_path)
    out = tmp_path / "art"
    argv = ["compile", str(model), "--target", "interp", "--calib", str(calib), "--timesteps", "8", "-o", str(out)]
    assert main([*argv, "--metric-samples", "16", "--json"]) == 0, capsys.readouterr()  # all, as the conversion
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    assert (m["samples"], m["timesteps"]) == (16, 8)
    first, *later = m["synapse_layers"]
    # conv 1->4, 3x3, pad 1, on 12x12: per axis 3 taps at 10 positions and 2 at the 2 border ones, for 8 steps
    assert first["dense"] == 8 * 4 * (10 * 3 + 2 * 2) ** 2
    assert first["effective_acs"] == 0 and 0 < first["effective_macs"] <= first["dense"]
    assert all(s["effective_macs"] == 0 and 0 < s["effective_acs"] < s["dense"] for s in later)
    rates = {layer["name"]: layer["spike_rate"] for layer in report["layers"]}
    measured = {n["name"]: 1 - n["activation_sparsity"] for n in m["neuron_layers"] if n["name"] in rates}
    assert measured == pytest.approx(rates)  # the conversion's spike rates: the same samples, steps and coding


@pytest.mark.parametrize(
    ("net", "shape"),
    [
        (torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (1, 4, 9, 11)),
        (torch.nn.Conv2d(3, 5, (2, 4), stride=(3, 1), padding=(0, 2)), (1, 3, 10, 7)),
        (torch.nn.Conv1d(2, 4, 5, stride=2, padding=2), (1, 2, 13)),
        (torch.nn.Linear(6, 5), (1, 3, 6)),  # tokens: a leading axis
    ],
)
def test_fan_out_maps_equal_the_binarised_layer(tmp_path: Path, net: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """The fan-out map (computed once) gives the count NeuroBench's method (the binarised layer, every step) gives,
    with strides, dilation, groups, padding and input positions no window reaches."""
    torch.manual_seed(0)
    with torch.no_grad():
        net.weight.mul_(torch.rand_like(net.weight) > 0.4)  # some weights zero
    graph = load_model(export(net, torch.rand(*shape), tmp_path / "layer.onnx"))
    spikes = (np.random.default_rng(1).random((3, 4, *shape[1:])) < 0.3).astype(np.float64)
    counts = []
    for fanout in (True, False):
        interp = MeasuringInterpreter(graph, make_backend("numpy", dtype="float64"), fanout=fanout)
        interp.run({graph.inputs[0]: spikes}, 3)
        counts.append([(s.acs, s.macs, s.dense) for s in interp.synapses.values()])
    assert counts[0] == counts[1] and counts[0][0][0] > 0


def test_metric_samples_bounds_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, calib = small_cnn(tmp_path)
    capsys.readouterr()  # the exporter's messages
    argv = ["compile", str(model), "--target", "interp", "--calib", str(calib), "--timesteps", "4", "--json"]
    assert main([*argv, "-o", str(tmp_path / "two"), "--metric-samples", "2"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert any(t["step"] == "report/metrics" for t in r["timings"])  # its wall clock: in the result only
    two = json.loads((tmp_path / "two" / "report.json").read_text())["metrics"]
    # per step: conv 1->4 on 12x12 (34 taps per axis), conv 4->8 on 6x6 (16 per axis), linear 288->4
    assert two["samples"] == 2 and two["synaptic_operations"]["dense"] == 4 * (4 * 34**2 + 8 * 4 * 16**2 + 4 * 288)
    assert main([*argv, "-o", str(tmp_path / "none"), "--metric-samples", "0"]) == 0
    capsys.readouterr()
    none = json.loads((tmp_path / "none" / "report.json").read_text())
    assert none["metrics"]["samples"] == 0 and none["metrics"]["connection_sparsity"] == 0.0
    assert none["metrics"]["synaptic_operations"] == {"dense": 0.0, "effective_macs": 0.0, "effective_acs": 0.0}
    assert main([*argv, "-o", str(tmp_path / "default")]) == 0  # 4 by default: one more simulation stays small
    assert json.loads((tmp_path / "default" / "report.json").read_text())["metrics"]["samples"] == 4
    assert "only the static metrics are filled" in (tmp_path / "none" / "report.html").read_text()
    assert main([*argv, "-o", str(tmp_path / "bad"), "--metric-samples", "-1"]) == 2
    assert "--metric-samples must be >= 0" in capsys.readouterr().out


def test_compile_reports_the_drift_spikec_eval_measures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, calib = small_cnn(tmp_path)
    labels = tmp_path / "y.npy"
    np.save(labels, np.arange(16) % 4)
    capsys.readouterr()
    argv = ["compile", str(model), "--target", "interp", "--calib", str(calib), "--timesteps", "8", "--json"]
    assert main([*argv, "--metric-samples", "16", "-o", str(tmp_path / "art")]) == 0  # eval's: every sample
    capsys.readouterr()
    drift = json.loads((tmp_path / "art" / "report.json").read_text())["drift"]
    evaluated = ["eval", str(model), "--calib", str(calib), "--data", str(calib), "--labels", str(labels)]
    assert main([*evaluated, "--timesteps", "8", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]  # the same samples, steps and coding; float64 there
    assert [d["name"] for d in drift] == [layer["name"] for layer in layers]
    for mine, theirs in zip(drift, layers, strict=True):
        assert mine["drift"] == pytest.approx(theirs["drift"], abs=1e-3) and mine["drift"] > 0.9
        assert mine["error"] == pytest.approx(theirs["error"], abs=1e-3)
        assert mine["rate"] == pytest.approx(theirs["rate"], abs=1e-3)
