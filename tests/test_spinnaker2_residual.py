"""The spinnaker2 target on residual (Add) and concatenating (Concat) networks, leaky neurons with v_leak, and the
neurons it refuses: torch modules of other people's layout (torchvision's BasicBlock, SqueezeNet's fire module, as
tests/corpus/cnn.py writes them) exported by torch.onnx, compiled with the command a user would type, and verified
on Brian2 against the interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus.cnn import BasicBlock, Fire, conv_bn
from torch import nn

from spikec.cli import main
from spikec.ir import LIF, Conv, Dense, Graph, I, Input, Output
from spikec.targets.spinnaker2.verify import verify_artifact
from spikec.text import save_sir

STEPS = 12


def _residual_cnn() -> nn.Module:
    """A stem, an identity-shortcut BasicBlock, a projection-shortcut one (stride 2), avg pool, classifier."""
    return nn.Sequential(
        conv_bn(1, 4, 3),
        BasicBlock(4, 4, 1),
        BasicBlock(4, 8, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )


def _fire_cnn() -> nn.Module:
    """Two fire modules and SqueezeNet's head: the first Concat read by a max-pool and the next squeeze conv, the
    second by the 1×1 classifier conv, whose global average pool, flattened, is the readout."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        Fire(8, 4, 4),
        nn.MaxPool2d(2),
        Fire(8, 4, 4),
        nn.Conv2d(8, 5, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


class _FlatResidual(nn.Module):
    """A conv stem flattened to 64 spiking features, a bottleneck MLP (64 → 16 → 64) added back onto them (the
    identity path on a flat source), and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.down, self.up, self.head = nn.Linear(64, 16), nn.Linear(16, 64), nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x)).flatten(1)
        return self.head(torch.relu(self.up(torch.relu(self.down(h))) + h))


def _export(model: nn.Module, path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    for m in model.modules():  # random norm statistics, as a trained network has
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    torch.onnx.export(model.eval(), (torch.rand(1, 1, 8, 8),), str(path), dynamo=True)


def _compile(tmp_path: Path, model: nn.Module, seed: int) -> Path:
    _export(model, tmp_path / "m.onnx", seed)
    rng = np.random.default_rng(seed)
    np.save(tmp_path / "calib.npy", rng.random((32, 1, 8, 8)).astype(np.float32))
    art = tmp_path / "art"
    argv = ["compile", str(tmp_path / "m.onnx"), "--target", "spinnaker2", "--calib", str(tmp_path / "calib.npy")]
    assert main([*argv, "--timesteps", str(STEPS), "-o", str(art)]) == 0
    return art


def _verify(art: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "spikec.cli", "verify", str(art), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_residual_sum_is_one_projection_per_term_into_one_population(tmp_path: Path) -> None:
    """Each BasicBlock's Add becomes one population reading two synapses (the body's conv and the shortcut: the
    identity as a depthwise 1×1 conv, or the projection conv); the delays align the shorter path."""
    art = _compile(tmp_path, _residual_cnn(), seed=0)
    spec = json.loads((art / "network.json").read_text())
    lag = {p["name"]: p["lag"] for p in spec["populations"]}
    into: dict[str, set[str]] = {}
    for proj in spec["projections"]:
        if not proj["pre"].startswith(":"):  # the clock sources (:bias, :start)
            into.setdefault(proj["post"], set()).add(proj["pre"])
            assert lag[proj["post"]] - lag[proj["pre"]] - 1 == proj["delay_steps"] >= 1
    summed = {post: pres for post, pres in into.items() if len(pres) == 2}
    assert len(summed) == 2  # one residual sum per block
    assert any(max(lag[p] for p in pres) - min(lag[p] for p in pres) == 2 for pres in summed.values())
    layers = json.loads((art / "report.json").read_text())["artifact"]["quantize"]["layers"]
    assert sorted(r["terms"] for r in layers).count(2) == 2


def _flat_residual(tmp_path: Path) -> Path:
    torch.manual_seed(5)
    return _compile(tmp_path, _FlatResidual(), seed=5)


def test_flat_identity_path_is_one_synapse_per_neuron(tmp_path: Path) -> None:
    """The identity path on 64 flat spiking features is a SpiNNaker2OneToOne of 64 weights (an N × N identity
    Dense held N² in the SIR, the quantizer and the interpreter) and one projection of 64 synapses, k to k."""
    from spikec.text import load_sir

    art = _flat_residual(tmp_path)
    (name,) = [n for n, node in load_sir(art / "model.sir").nodes.items() if node.kind == "SpiNNaker2OneToOne"]
    assert load_sir(art / "model.sir").nodes[name].weight.shape == (64,)
    spec = json.loads((art / "network.json").read_text())
    (proj,) = [p for p in spec["projections"] if p["name"].startswith(f"{name}.")]
    assert proj["synapses"] == 64
    with np.load(art / "network.npz") as net:
        np.testing.assert_array_equal(net[f"{proj['name']}/pre"], np.arange(64))
        np.testing.assert_array_equal(net[f"{proj['name']}/post"], np.arange(64))


@pytest.mark.slow
def test_flat_residual_verifies_on_brian2(tmp_path: Path) -> None:
    """Brian2 runs the one-to-one projection as the interpreter runs SpiNNaker2OneToOne: spike for spike."""
    r = _verify(_flat_residual(tmp_path))
    assert r["mismatches"] == 0 and r["agreement"] == 1.0
    assert all(p["spikes"] for p in r["populations"].values() if not p["readout"])


@pytest.mark.slow
def test_residual_cnn_verifies_on_brian2(tmp_path: Path) -> None:
    r = _verify(_compile(tmp_path, _residual_cnn(), seed=0))
    assert r["mismatches"] == 0 and r["agreement"] == 1.0
    assert sum(1 for p in r["populations"].values() if p["spikes"]) >= 5  # the blocks fire


@pytest.mark.slow
def test_fire_module_concat_verifies_on_brian2(tmp_path: Path) -> None:
    """The Concat of a fire module's two expand populations: each reader's projections split by source
    population (the max-pool's OR synapses, the squeeze and classifier convs); the readout reads the flattened
    global average pool (a Dense on the classifier's flattened spikes)."""
    art = _compile(tmp_path, _fire_cnn(), seed=1)
    sir = (art / "model.sir").read_text()
    assert sir.count("Concat") >= 2
    spec = json.loads((art / "network.json").read_text())
    assert any(".from." in p["name"] for p in spec["projections"])
    r = _verify(art)
    assert r["mismatches"] == 0 and r["agreement"] == 1.0


SPIKING_FIRE = """
import torch
import snntorch as snn
from torch import nn


def leaky(shape):
    return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), init_hidden=True,
                     reset_mechanism="zero", reset_delay=False)


class SpikingFire(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.lif0 = nn.Conv2d(2, 8, 3, padding=1), leaky((8, 8, 8))
        self.squeeze, self.lif1 = nn.Conv2d(8, 4, 1), leaky((4, 8, 8))
        self.e1, self.lif_e1 = nn.Conv2d(4, 6, 1), leaky((6, 8, 8))
        self.e3, self.lif_e3 = nn.Conv2d(4, 5, 3, padding=1), leaky((5, 8, 8))

    def forward(self, x):
        s = self.lif1(self.squeeze(self.lif0(self.stem(x))))
        return torch.cat([self.lif_e1(self.e1(s)), self.lif_e3(self.e3(s))], 1)


def build():
    return SpikingFire()
"""


@pytest.mark.slow
def test_network_ending_in_a_concat_verifies_on_brian2(tmp_path: Path) -> None:
    """An snnTorch SNN whose output is a fire module's concatenation (two populations of 6 and 5 channels): the
    script records each population and joins them in the output's order, as the interpreter's Concat does."""
    (tmp_path / "arch.py").write_text(SPIKING_FIRE)
    sys.path.insert(0, str(tmp_path))
    try:
        from arch import build  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    model = build()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(3)
    torch.save(model.state_dict(), tmp_path / "fire.pt")
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((20, 2, 2, 8, 8)) < 0.3).astype(np.float32))
    art = tmp_path / "art"
    argv = ["compile", str(tmp_path / "fire.pt"), "--arch", f"{tmp_path / 'arch.py'}:build", "--input-shape", "2,8,8"]
    argv += ["--target", "spinnaker2", "--timesteps", "20", "--inputs", str(tmp_path / "x.npy"), "-o", str(art)]
    assert main(argv) == 0
    spec = json.loads((art / "network.json").read_text())
    (parts,) = spec["outputs"].values()
    assert isinstance(parts, list) and len(parts) == 2
    r = verify_artifact(art, mapping=False)  # Brian2 records and joins; sPyNNaker's placement adds nothing here
    assert r["mismatches"] == 0 and r["agreement"] == 1.0
    (joined,) = r["joined_outputs"].values()
    assert joined == {"parts": parts, "mismatches": 0}
    assert all(r["populations"][p]["spikes"] > 50 for p in parts)
    assert f"  output cat joins {parts[0]}, {parts[1]}: 0 mismatches" in r["lines"]


def _leaky_sir(path: Path, **lif: object) -> None:
    rng = np.random.default_rng(0)
    graph = Graph(
        {
            "x": Input(shape=(12,)),
            "fc1": Dense(weight=rng.normal(size=(20, 12)) * 0.6),
            "h": LIF(**lif),
            "fc2": Dense(weight=rng.normal(size=(4, 20))),
            "y": I(),
            "out": Output(),
        },
        [("x", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "y"), ("y", "out")],
        dt=1e-3,
    )
    save_sir(graph, path)


@pytest.mark.slow
def test_lif_with_v_leak_and_per_neuron_tau_verifies(tmp_path: Path) -> None:
    """v_leak and τ per neuron: the dt/τ·v_leak of every step is the population's bias (a projection from a source
    firing every step), alpha_decay = 1 − dt/τ per neuron is IF_curr_delta's tau_m per neuron; Brian2 agrees with
    the interpreter spike for spike."""
    v_leak = np.linspace(-0.3, 0.6, 20)
    tau = np.linspace(4e-3, 8e-3, 20)
    _leaky_sir(tmp_path / "m.sir", tau=tau, v_leak=v_leak, v_threshold=np.full(20, 0.5))
    x = (np.random.default_rng(2).random((STEPS, 2, 12)) < 0.3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    art = tmp_path / "art"
    argv = ["compile", str(tmp_path / "m.sir"), "--target", "spinnaker2", "--timesteps", str(STEPS)]
    assert main([*argv, "--inputs", str(tmp_path / "x.npy"), "-o", str(art)]) == 0
    spec = json.loads((art / "network.json").read_text())
    assert {"h.bias.exc", "h.bias.inh"} <= {p["name"] for p in spec["projections"]}
    with np.load(art / "network.npz") as net:
        np.testing.assert_allclose(net["h/alpha_decay"], 1 - 1e-3 / tau)
    r = _verify(art)
    assert r["mismatches"] == 0 and r["populations"]["h"]["spikes"] > 0


def test_tau_varying_within_a_conv_channel_is_refused_naming_node_field_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A convolution shares its weights across positions, so the input gain dt/τ·r must be one per channel."""
    rng = np.random.default_rng(0)
    graph = Graph(
        {
            "x": Input(shape=(1, 4, 4)),
            "conv": Conv(weight=rng.normal(size=(2, 1, 3, 3)), stride=(1, 1), padding=(1, 1), dilation=(1, 1)),
            "h": LIF(tau=np.linspace(4e-3, 8e-3, 32).reshape(2, 4, 4)),
            "out": Output(),
        },
        [("x", "conv"), ("conv", "h"), ("h", "out")],
        dt=1e-3,
    )
    save_sir(graph, tmp_path / "m.sir")
    argv = ["compile", str(tmp_path / "m.sir"), "--target", "spinnaker2", "--timesteps", "8"]
    assert main([*argv, "-o", str(tmp_path / "art")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'h'" in err and "tau" in err and "one value per channel" in err
    assert not (tmp_path / "art").exists()


def test_concat_of_currents_is_refused_naming_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Concat of synapse outputs (before any neuron) is not a spike source: refused, one line, naming it."""
    from spikec.ir import IF, Concat

    rng = np.random.default_rng(0)
    graph = Graph(
        {
            "x": Input(shape=(6,)),
            "a": Dense(weight=rng.normal(size=(3, 6))),
            "b": Dense(weight=rng.normal(size=(3, 6))),
            "cat": Concat(axis=0),
            "h": IF(),
            "out": Output(),
        },
        [("x", "a"), ("x", "b"), ("a", "cat"), ("b", "cat"), ("cat", "h"), ("h", "out")],
    )
    save_sir(graph, tmp_path / "m.sir")
    argv = ["compile", str(tmp_path / "m.sir"), "--target", "spinnaker2", "--timesteps", "8"]
    assert main([*argv, "-o", str(tmp_path / "art")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'cat'" in err and "not a spike source" in err


def test_cubalif_whose_current_follows_its_input_is_a_lif(tmp_path: Path) -> None:
    """dt/τ_syn = 1: i = w_in·S, so the NIR CubaLIF is a LIF of gain r·w_in (lowered); τ_syn > dt is a
    current-based population (tests/test_spinnaker2_cuba.py)."""
    import nir

    from spikec.ir.graph import DEFAULT_DT as dt  # the step spikec reads a NIR file at
    from spikec.models import load_model
    from spikec.targets.spinnaker2.quantize import QuantizeOptions, quantize_spinnaker2

    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.random.default_rng(0).normal(size=(3, 2)), bias=np.zeros(3)),
        nir.CubaLIF(tau_syn=np.full(3, dt), tau_mem=np.full(3, 4e-3), r=np.ones(3), v_leak=np.zeros(3),
                    v_threshold=np.ones(3), w_in=np.full(3, 2.0)),
    )  # fmt: skip
    nir.write(tmp_path / "cuba.nir", graph)
    loaded = load_model(tmp_path / "cuba.nir")
    lowered = quantize_spinnaker2(loaded, QuantizeOptions(timesteps=8)).graph
    (lif,) = [n for n in lowered.nodes.values() if n.kind == "SpiNNaker2LIF"]
    np.testing.assert_allclose(lif.alpha_decay, 1 - dt / 4e-3)
