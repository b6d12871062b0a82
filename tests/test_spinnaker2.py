"""The spinnaker2 target: int8 quantization, the interpreter's fixed-point run, PyNN emission, Brian2 against the
interpreter, sPyNNaker's virtual mapping, and the bad inputs of issue 15."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikec.cli import main
from spikec.ir import IF, Dense, Graph, I, Input, Output
from spikec.text import save_sir


def _mlp_onnx(path: Path) -> None:
    """A torch CNN exported by torch.onnx (conv, ReLU, max-pool, linear), random weights."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 10),
    )
    torch.onnx.export(model.eval(), (torch.rand(1, 1, 8, 8),), str(path), dynamo=True)


def _spikes(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < 0.3).astype(np.float32)


def test_quantized_model_runs_fixed_and_matches_its_float_snn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _mlp_onnx(tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).random((64, 1, 8, 8)).astype(np.float32))
    assert (
        main(
            [
                "compile",
                str(tmp_path / "m.onnx"),
                "--calib",
                str(tmp_path / "calib.npy"),
                "--timesteps",
                "16",
                "--target",
                "spinnaker2",
                "-o",
                str(tmp_path / "art"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    sir = tmp_path / "art" / "model.sir"
    text = sir.read_text()
    assert "SpiNNaker2Conv" in text and "SpiNNaker2LIF" in text and "SpiNNaker2Dense" in text
    np.save(tmp_path / "x.npy", _spikes((16, 2, 1, 8, 8)))
    assert main(["run", str(sir), "--fixed", "spinnaker2", "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outputs"]
    report = json.loads((tmp_path / "art" / "report.json").read_text())["artifact"]
    assert report["core_map"]["cores_used"] >= 1 and report["synapses"] > 0
    net = np.load(tmp_path / "art" / "network.npz", allow_pickle=False)
    weights = np.concatenate([net[k] for k in net.files if k.endswith("/weight") and ".bias." not in k])
    assert weights.dtype == np.int16 and np.abs(weights).max() <= 127  # int8 weights, one sign per projection
    assert all(np.all(net[k] > 0) if ".exc/" in k else np.all(net[k] < 0) for k in net.files if k.endswith("weight"))
    # --fixed refuses what is not 0/1 spikes
    np.save(tmp_path / "bad.npy", np.full((4, 1, 1, 8, 8), 3.0, np.float32))
    assert main(["run", str(sir), "--fixed", "spinnaker2", "--input", str(tmp_path / "bad.npy")]) == 1
    assert "0/1 spikes" in capsys.readouterr().err


def test_reset_by_subtraction_is_refused_before_emission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A conversion setting PyNN cannot express names what the PyNN network does instead."""
    _mlp_onnx(tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).random((16, 1, 8, 8)).astype(np.float32))
    code = main(
        [
            "compile",
            str(tmp_path / "m.onnx"),
            "--calib",
            str(tmp_path / "calib.npy"),
            "--target",
            "spinnaker2",
            "--timesteps",
            "8",
            "--reset",
            "subtract",
            "--timesteps",
            "8",
            "-o",
            str(tmp_path / "art"),
        ]
    )
    assert code == 1 and "v_reset" in capsys.readouterr().err and not (tmp_path / "art").exists()


def test_kind_pynn_cannot_express_names_the_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An NIR LI readout (a leaky integrator no PyNN cell of the target expresses) is refused by
    quantize{target=spinnaker2}, which names the node, its kind and what it lowers; so is a CubaLIF whose current
    would decay by a negative factor (τ_syn < dt)."""
    import nir

    affine = nir.Affine(weight=np.ones((3, 2)), bias=np.zeros(3))
    li = nir.LI(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3))
    fast = nir.CubaLIF(tau_syn=np.full(3, 5e-5), tau_mem=np.full(3, 4e-3), r=np.ones(3), v_leak=np.zeros(3),
                       v_threshold=np.ones(3))  # fmt: skip
    for name, node, says in (("li", li, "IF_curr_exp"), ("fast", fast, "tau_syn > dt")):
        nir.write(tmp_path / f"{name}.nir", nir.NIRGraph.from_list(affine, node))
        argv = ["compile", str(tmp_path / f"{name}.nir"), "--target", "spinnaker2", "--timesteps", "8"]
        code = main([*argv, "-o", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code == 1 and "quantize{target=spinnaker2}" in err and f"({node.__class__.__name__})" in err
        assert says in err and not (tmp_path / name).exists()


def _wide_snn(path: Path, hidden: int, readout: bool = True) -> None:
    rng = np.random.default_rng(0)
    if not readout:  # one wide spiking layer shown as the output
        nodes = {
            "x": Input(shape=(16,)),
            "fc1": Dense(weight=rng.normal(size=(hidden, 16))),
            "h": IF(),
            "out": Output(),
        }
        save_sir(Graph(nodes, [("x", "fc1"), ("fc1", "h"), ("h", "out")]), path)
        return
    graph = Graph(
        {
            "x": Input(shape=(16,)),
            "fc1": Dense(weight=rng.normal(size=(hidden, 16))),
            "h": IF(v_threshold=np.asarray(1.0)),
            "fc2": Dense(weight=rng.normal(size=(10, hidden))),
            "y": I(),
            "out": Output(),
        },
        [("x", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "y"), ("y", "out")],
    )
    save_sir(graph, path)


def test_network_too_large_for_the_board_fails_in_our_partitioner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _wide_snn(tmp_path / "wide.sir", 153 * 256, readout=False)  # one PE more than a single chip's 152 holds
    code = main(
        [
            "compile",
            str(tmp_path / "wide.sir"),
            "--target",
            "spinnaker2",
            "--timesteps",
            "8",
            "--pass-option",
            "partition.chips=1",
            "-o",
            str(tmp_path / "art"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "partition{target=spinnaker2,chips=2}" in err and not (tmp_path / "art").exists()


def test_network_no_virtual_board_holds_is_refused_before_any_vendor_run() -> None:
    """sPyNNaker puts at most 256 neurons on a core and maps one board: the one-chip board when its neuron cores fit
    there, the 48-chip one up to 48 × 151 − 1 cores, and beyond that verify says so before running anything."""
    from spikec.errors import TargetError
    from spikec.targets.spinnaker2.spynnaker_map import board_for

    def spec(neurons: int) -> dict:
        return {"populations": [{"kind": "input", "size": 16}, {"kind": "IF_curr_delta", "size": neurons}]}

    assert board_for(spec(150 * 256), chips=1) == 201
    assert board_for(spec(150 * 256 + 1), chips=1) == 248  # spikec's one chip, sPyNNaker's 151 neuron cores
    assert board_for(spec(256), chips=2) == 248
    assert board_for(spec(7247 * 256), chips=48) == 248
    with pytest.raises(TargetError, match=r"at least 7,248 cores .* leaves 7,247"):
        board_for(spec(7247 * 256 + 1), chips=49)


@pytest.mark.parametrize("module", ["brian2", "spynnaker"])
def test_missing_simulator_or_mapper_says_how_to_install(tmp_path: Path, module: str) -> None:
    _wide_snn(tmp_path / "small.sir", 8)
    assert (
        main(
            [
                "compile",
                str(tmp_path / "small.sir"),
                "--target",
                "spinnaker2",
                "--timesteps",
                "8",
                "-o",
                str(tmp_path / "art"),
            ]
        )
        == 0
    )
    code = f"import sys; sys.modules[{module!r}] = None; from spikec.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "verify", str(tmp_path / "art")], capture_output=True, text=True)
    assert done.returncode == 1 and "pip install" in done.stderr and module in done.stderr


@pytest.mark.slow
def test_small_network_verifies_on_brian2_and_maps_with_a_read_only_home(tmp_path: Path) -> None:
    """Brian2 reproduces the interpreter exactly; sPyNNaker maps it although HOME cannot be written. Its hidden
    layer (512 neurons, 2 of sPyNNaker's neuron cores) reads 16 inputs densely: handed in spikec's post-major order,
    sPyNNaker's FromListConnector estimated rows of 276 synapses into one core and refused them
    (SynapseRowTooBigException: 256 at most); sorted by (pre, post), 140 and 145."""
    _wide_snn(tmp_path / "small.sir", 512)
    np.save(tmp_path / "x.npy", _spikes((8, 3, 16)))
    assert (
        main(
            [
                "compile",
                str(tmp_path / "small.sir"),
                "--target",
                "spinnaker2",
                "--timesteps",
                "8",
                "--inputs",
                str(tmp_path / "x.npy"),
                "-o",
                str(tmp_path / "art"),
            ]
        )
        == 0
    )
    env = {**os.environ, "HOME": "/proc"}  # not writable, even for root
    done = subprocess.run(
        [sys.executable, "-m", "spikec.cli", "verify", str(tmp_path / "art"), "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["target"] == "spinnaker2" and r["samples"] == 3 and r["steps"] == 8
    assert r["mismatches"] == 0 and r["agreement"] == 1.0 and r["populations"]["h"]["spikes"] > 0
    assert r["spynnaker"]["version"] == 201 and r["spikec_pes"] == 3  # 2 PEs of 256 neurons and the readout
    assert r["spynnaker"]["cores_by_population"]["h"] == 4, r["spynnaker"]  # 2 neuron and 2 synapse cores


@pytest.mark.slow
def test_sinabs_nmnist_cnn_from_the_nir_paper_compiles_and_verifies(data_dir: Path, tmp_path: Path) -> None:
    """The NIR paper's trained N-MNIST CNN, written by Sinabs (Conv, IF, SumPool, Affine; the network the paper ran on
    a SpiNNaker2 chip), with the short command line: its sum pools fold into the next synapses, and Brian2 agrees
    with the interpreter on every neuron's spike count."""
    art = tmp_path / "art"
    model = data_dir / "nir" / "cnn" / "cnn_sinabs.nir"
    assert main(["compile", str(model), "--target", "spinnaker2", "--timesteps", "8", "-o", str(art)]) == 0
    sir = (art / "model.sir").read_text()
    assert "SumPool" not in sir and sir.count("SpiNNaker2Conv") == 3
    done = subprocess.run(
        [sys.executable, "-m", "spikec.cli", "verify", str(art), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["mismatches"] == 0 and r["agreement"] == 1.0
    assert all(p["spikes"] for p in r["populations"].values())  # every layer fires


@pytest.mark.parametrize("pool", ["SumPool", "AvgPool"])
def test_pool_folded_into_the_next_synapse_computes_the_same(pool: str) -> None:
    """pool_fold: a pool followed by a Conv (or Flatten + Dense) equals the folded synapse on the pool's source."""
    from spikec.interp import run
    from spikec.ir import AvgPool, Conv, Flatten, SumPool
    from spikec.targets.spinnaker2.pool_fold import PooledView, fold, pool_view

    rng = np.random.default_rng(3)
    pool_node = (SumPool if pool == "SumPool" else AvgPool)(kernel_size=(2, 2), stride=(2, 2))
    view = pool_view("p", pool_node, "x", (3, 8, 8))
    assert isinstance(view, PooledView)
    conv = Conv(weight=rng.normal(size=(4, 3, 3, 3)), stride=(1, 1), padding=(1, 1))
    dense = Dense(weight=rng.normal(size=(5, 48)))
    x = {"x": (rng.random((3, 2, 3, 8, 8)) < 0.5).astype(np.float64)}
    for synapse, flat in ((conv, False), (dense, True)):
        before = {"x": Input(shape=(3, 8, 8)), "p": pool_node, "s": synapse, "out": Output()}
        chain = [("x", "p"), ("p", "f"), ("f", "s")] if flat else [("x", "p"), ("p", "s")]
        if flat:
            before["f"] = Flatten()
        after_nodes = {
            "x": Input(shape=(3, 8, 8)),
            "s": fold(dataclasses.replace(view, flat=flat), synapse),
            "out": Output(),
        }
        after_chain = [("x", "f"), ("f", "s")] if flat else [("x", "s")]
        if flat:
            after_nodes["f"] = Flatten()
        a = run(Graph(before, [*chain, ("s", "out")]), x, steps=3).outputs["out"]
        b = run(Graph(after_nodes, [*after_chain, ("s", "out")]), x, steps=3).outputs["out"]
        np.testing.assert_allclose(a, b, atol=1e-9)


def _flat_pool_readout(shape: tuple[int, int, int]) -> Graph:
    from spikec.ir import AvgPool, Flatten

    nodes = {
        "x": Input(shape=shape),
        "pool": AvgPool(kernel_size=(2, 2), stride=(2, 2)),
        "flat": Flatten(),
        "y": I(r=np.asarray(2.0)),
        "out": Output(),
    }
    return Graph(nodes, [("x", "pool"), ("pool", "flat"), ("flat", "y"), ("y", "out")])


def test_flattened_pool_read_directly_is_the_pools_conv_flattened() -> None:
    """A readout reading a flattened average pool of spikes gets the pool's depthwise conv (k²·C weights) and a
    Flatten onto the population, not a dense (pooled × source) matrix: VGG's 512×14×14 map lowers in well under
    a second (a dense identity of its 25,088 pooled values alone would take 5 GB); a small one computes σ times
    the float readout."""
    from spikec.interp import run
    from spikec.targets.spinnaker2.quantize import QuantizeOptions, quantize_spinnaker2

    big = quantize_spinnaker2(_flat_pool_readout((512, 14, 14)), QuantizeOptions(timesteps=8)).graph
    conv = big.nodes["flat"]  # named after the node the readout reads
    assert conv.kind == "SpiNNaker2Conv" and conv.weight.shape == (512, 1, 2, 2) and conv.stride == (2, 2)
    assert [e.src for e in big.in_edges("y")] == ["flat.flat"] and big.nodes["flat.flat"].kind == "Flatten"
    graph = _flat_pool_readout((3, 4, 4))
    result = quantize_spinnaker2(graph, QuantizeOptions(timesteps=8))
    x = {"x": _spikes((8, 2, 3, 4, 4), seed=1).astype(np.float64)}
    sigma = result.report["layers"][0]["scale"]
    fixed = run(result.graph, x).outputs["out"]
    np.testing.assert_allclose(fixed / sigma, run(graph, x).outputs["out"], rtol=1e-12)


@pytest.mark.slow
def test_snntorch_leaky_nir_compiles_to_lif_no_delay_and_verifies(tmp_path: Path) -> None:
    """snnTorch Leaky neurons (NIR LIF) become lif_no_delay populations with alpha_decay = β; Brian2's exponential
    leak exp(-dt/τ_m) = β reproduces the interpreter's spike counts."""
    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(2)
    kw = {"init_hidden": True, "reset_mechanism": "zero", "reset_delay": False}
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 20),
        snn.Leaky(beta=torch.full((20,), 0.9), threshold=torch.ones(20), **kw),
        torch.nn.Linear(20, 4),
        snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.ones(4), output=True, **kw),
    )
    with torch.no_grad():
        net[0].weight.mul_(3)
    nir.write(tmp_path / "leaky.nir", export_to_nir(net, torch.zeros(1, 12), ignore_dims=[0]))
    np.save(tmp_path / "x.npy", _spikes((20, 3, 12), seed=4))
    art = tmp_path / "art"
    assert main(["compile", str(tmp_path / "leaky.nir"), "--target", "spinnaker2", "--timesteps", "20",
                 "--inputs", str(tmp_path / "x.npy"), "-o", str(art)]) == 0  # fmt: skip
    from spikec.text import load_sir

    lowered = load_sir(art / "model.sir")
    alphas = sorted(float(np.max(n.alpha_decay)) for n in lowered.nodes.values() if n.kind == "SpiNNaker2LIF")
    np.testing.assert_allclose(alphas, [0.8, 0.9], rtol=1e-6)  # β in float32, one alpha_decay per population
    done = subprocess.run(
        [sys.executable, "-m", "spikec.cli", "verify", str(art), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["mismatches"] == 0 and all(p["spikes"] for p in r["populations"].values())


def test_nir_paper_lif_spikes_when_the_spinnaker2_chip_did(data_dir: Path, tmp_path: Path) -> None:
    """The NIR paper's LIF (written by Norse), quantized for SpiNNaker2 (int8, lif_no_delay): the interpreter's
    --fixed run spikes at the steps the real SpiNNaker2 chip did (the paper's lif_spinnaker2.csv)."""
    lif = data_dir / "nir" / "lif"
    trace = np.loadtxt(lif / "lif_spinnaker2.csv", delimiter=",")
    np.save(tmp_path / "x.npy", trace[:, 0].reshape(-1, 1, 1).astype(np.float32))
    art = tmp_path / "art"
    assert (
        main(["compile", str(lif / "lif_norse.nir"), "--target", "spinnaker2", "--timesteps", "1000", "-o", str(art)])
        == 0
    )
    out = tmp_path / "out.npz"
    assert (
        main(
            ["run", str(art / "model.sir"), "--fixed", "spinnaker2", "--input", str(tmp_path / "x.npy"), "-o", str(out)]
        )
        == 0
    )
    with np.load(out) as result:
        spikes = result["output"].reshape(len(trace))
    np.testing.assert_array_equal(np.nonzero(spikes)[0], np.nonzero(trace[:, 2])[0])  # steps 460, 510, 710, 760


def test_emitter_refuses_a_kind_it_has_no_rule_for_naming_node_and_fix() -> None:
    """``emit.network_spec`` dispatches each node to its kind's rule in ``EMITTERS``; a node of any other kind (a
    float IF that skipped the quantizer) is refused with the target's error, naming the node and what to run."""
    from spikec.errors import TargetError
    from spikec.targets.spinnaker2.emit import network_spec

    graph = Graph(
        {"x": Input(shape=(4,)), "fc": Dense(weight=np.ones((3, 4))), "h": IF(), "out": Output()},
        [("x", "fc"), ("fc", "h"), ("h", "out")],
    )
    with pytest.raises(TargetError) as err:
        network_spec(graph)
    message = str(err.value)
    assert "'fc'" in message and "Dense" in message and "quantize{target=spinnaker2}" in message
