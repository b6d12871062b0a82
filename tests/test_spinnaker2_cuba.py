"""CubaLIF on the spinnaker2 target: a current-based population (PyNN's IF_curr_exp, its projections run before
Brian2's ``groups``) that computes the SIR's forward-Euler CubaLIF, checked against the float SNN where int8
weights lose nothing, and on Brian2 against the interpreter with snnTorch's Synaptic neurons exported to NIR."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from spikec.cli import main
from spikec.interp import run
from spikec.ir import CubaLIF, Dense, Graph, Input, Output
from spikec.text import load_sir, save_sir


def _spikes(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < 0.3).astype(np.float32)


def _exact_cuba(path: Path) -> Graph:
    """dt = 1 and dyadic decays (a_s = 1/2, a_m = 1/2, 1/4, 1/8 per neuron), a_m·r·a_s·w_in = 1 and integer weights
    up to 127: σ = 1, so int8 rounding changes nothing and every value is exact in floating point."""
    rng = np.random.default_rng(5)
    weight = rng.integers(-127, 128, (12, 20)).astype(np.float64)
    weight[0, 0] = 127.0
    tau_mem = np.tile([2.0, 4.0, 8.0], 4)
    cuba = CubaLIF(
        tau_syn=np.full(12, 2.0),
        tau_mem=tau_mem,
        r=tau_mem,  # a_m·r = 1
        w_in=np.full(12, 2.0),  # a_s·w_in = 1
        v_leak=np.tile([0.0, 8.0, -16.0, 24.0], 3),
        v_threshold=np.full(12, 300.0),
    )
    graph = Graph(
        {"x": Input(shape=(20,)), "fc": Dense(weight=weight), "cuba": cuba, "out": Output()},
        [("x", "fc"), ("fc", "cuba"), ("cuba", "out")],
        dt=1.0,
    )
    save_sir(graph, path)
    return graph


def test_cubalif_becomes_a_current_based_population_that_is_the_float_snn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lowered population (syn_decay = 1 − a_s, alpha_decay = 1 − a_m, v_leak folded into θ, v₀ and v_reset)
    spikes exactly when the float CubaLIF does, where weights and thresholds are exact integers; the artifact is
    an IF_curr_exp population whose v₀ (−v_leak) arrives as a pulse at SIR step 0."""
    graph = _exact_cuba(tmp_path / "cuba.sir")
    art = tmp_path / "art"
    assert main(["compile", str(tmp_path / "cuba.sir"), "--target", "spinnaker2", "--timesteps", "40",
                 "-o", str(art)]) == 0  # fmt: skip
    capsys.readouterr()
    lowered = load_sir(art / "model.sir")
    pop = lowered.nodes["cuba"]
    np.testing.assert_array_equal(pop.syn_decay, 0.5)
    np.testing.assert_array_equal(pop.alpha_decay, 1 - 1 / np.tile([2.0, 4.0, 8.0], 4))
    np.testing.assert_array_equal(pop.threshold, 300 - np.tile([0, 8, -16, 24], 3))
    x = _spikes((40, 3, 20), seed=6).astype(np.float64)
    ours = run(lowered, {"x": x}).outputs["out"]
    theirs = run(graph, {"x": x}).outputs["out"]
    assert ours.sum() > 50
    np.testing.assert_array_equal(ours, theirs)
    spec = json.loads((art / "network.json").read_text())
    assert next(p["kind"] for p in spec["populations"] if p["name"] == "cuba") == "IF_curr_exp"
    assert {p["pre"] for p in spec["projections"]} == {"x", ":start"}  # no bias; v₀ = −v_leak as a pulse


def _snntorch_synaptic(path: Path) -> None:
    """snnTorch Synaptic layers (α = 0.6, β = 0.8; α = β = 0.7: τ_syn = τ_mem), exported by snnTorch to NIR."""
    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    kw = {"init_hidden": True, "reset_mechanism": "zero", "reset_delay": False}
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 40),
        snn.Synaptic(alpha=torch.full((40,), 0.6), beta=torch.full((40,), 0.8), threshold=torch.ones(40), **kw),
        torch.nn.Linear(40, 10),
        snn.Synaptic(
            alpha=torch.full((10,), 0.7), beta=torch.full((10,), 0.7), threshold=torch.ones(10), output=True, **kw
        ),
    )
    with torch.no_grad():
        net[0].weight.mul_(2)
        net[2].weight.mul_(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch's deprecation notes
        nir.write(path, export_to_nir(net, torch.zeros(1, 12), ignore_dims=[0]))


@pytest.mark.slow
def test_snntorch_synaptic_network_verifies_on_brian2(tmp_path: Path) -> None:
    """snnTorch's CubaLIF network with the short commands: Brian2 (IF_curr_exp, exact exponential step, synapses
    before groups) reproduces every spike of the interpreter, and sPyNNaker maps it."""
    _snntorch_synaptic(tmp_path / "syn.nir")
    np.save(tmp_path / "x.npy", _spikes((40, 4, 12), seed=4))
    art = tmp_path / "art"
    assert main(["compile", str(tmp_path / "syn.nir"), "--target", "spinnaker2", "--timesteps", "40",
                 "--inputs", str(tmp_path / "x.npy"), "-o", str(art)]) == 0  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "spikec.cli", "verify", str(art), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["mismatches"] == 0 and r["spike_count_differences"] == {"0": 200}
    assert all(p["spikes"] > 100 for p in r["populations"].values())
    assert r["spynnaker"]["cores_used"] >= 4


def _conv_cuba_nir(path: Path) -> None:
    """A NIR graph of CubaLIF layers written with the nir package: a conv into τ per channel (one channel with
    τ_syn = τ_mem), then a dense layer into per-neuron τ and v_leak; biases on both synapses."""
    import nir

    rng = np.random.default_rng(1)
    c = 4
    per_channel = (np.array([2e-4, 3e-4, 5e-4, 8e-4]), np.array([5e-4, 3e-4, 1e-3, 2e-3]))
    tau_syn, tau_mem = (np.broadcast_to(t[:, None, None], (c, 8, 8)).copy() for t in per_channel)
    ones = np.ones((c, 8, 8))
    nodes = {
        "input": nir.Input(input_type=np.array([2, 8, 8])),
        "conv": nir.Conv2d(
            input_shape=(8, 8),
            weight=rng.normal(size=(c, 2, 3, 3)) * 1.5,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=rng.normal(size=c) * 0.1,
        ),
        "lif1": nir.CubaLIF(
            tau_syn=tau_syn, tau_mem=tau_mem, r=2 * ones, v_leak=0 * ones, v_threshold=ones, w_in=3 * ones
        ),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([c, 8, 8])}),
        "fc": nir.Affine(weight=rng.normal(size=(20, c * 64)) * 0.5, bias=rng.normal(size=20) * 0.2),
        "lif2": nir.CubaLIF(
            tau_syn=rng.uniform(2e-4, 1e-3, 20),
            tau_mem=rng.uniform(3e-4, 2e-3, 20),
            r=np.full(20, 4.0),
            v_leak=rng.uniform(-0.5, 0.8, 20),
            v_threshold=np.ones(20),
            w_in=np.full(20, 2.0),
        ),
        "output": nir.Output(output_type=np.array([20])),
    }
    chain = ["input", "conv", "lif1", "flat", "fc", "lif2", "output"]
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(chain))))


@pytest.mark.slow
def test_conv_fed_cubalif_with_leak_and_equal_taus_verifies_on_brian2(tmp_path: Path) -> None:
    """τ per channel behind a conv, τ_syn = τ_mem (Brian2's exact step divides by τ_m − τ_s: τ_s moved by 1e-8),
    v_leak per neuron (θ, v₀, v_reset shifted; v₀ as pulses through the current) and synaptic biases (into the
    current every step): Brian2 gives every spike the interpreter gives."""
    from spikec.targets.spinnaker2.verify import verify_artifact

    _conv_cuba_nir(tmp_path / "cuba.nir")
    np.save(tmp_path / "x.npy", _spikes((50, 3, 2, 8, 8), seed=2))
    art = tmp_path / "art"
    assert main(["compile", str(tmp_path / "cuba.nir"), "--target", "spinnaker2", "--timesteps", "50",
                 "--inputs", str(tmp_path / "x.npy"), "-o", str(art)]) == 0  # fmt: skip
    r = verify_artifact(art, mapping=False)
    assert r["mismatches"] == 0 and r["compared"] == 3 * 276
    assert r["populations"]["lif1"]["spikes"] > 1000 and r["populations"]["lif2"]["spikes"] > 100
