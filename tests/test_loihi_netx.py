"""Loihi 2 fixed point in the interpreter against ground truth, and the netx reader/writer.

tiny: lava-dl's own test (tests/lava/lib/dl/netx/test_hdf5.py::test_tinynet): input as the input
layer's bias, u and v reset every 17 steps per layer, 17 + 3 steps; the output must match exactly.
oxford: the published output of lava-dl's tutorial, which was recorded on Loihi 2 hardware; the
interpreter equals Lava's CPU fixed_pt models exactly (tests/test_loihi_lava.py) and matches the
hardware's 10,178 spikes in 8,398 places (docs/semantics.md, "Loihi 2 fixed point", explains).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from netx_files import write_net

from spikec.cli import main
from spikec.errors import FrontendError, SpikecError, TargetError, VerifyError
from spikec.interp import run
from spikec.ir import LIF, Graph, Input, Output
from spikec.models import load_model, save_model
from spikec.targets.loihi2.dialect import LoihiDense, LoihiLIF
from spikec.targets.loihi2.kernels import dense_weights
from spikec.targets.loihi2.netx import export_netx, import_netx, optimize_weight_bits, spike_events_to_raster

TINY_STEPS = 17


def tiny_run(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(output in Lava's (X, Y, C, T) layout, ground truth) for lava-dl's tinynet procedure."""
    graph = import_netx(data_dir / "netx/tiny/tiny.net", reset_interval=TINY_STEPS)
    bias = np.load(data_dir / "netx/tiny/tinynet/input_bias.npy").transpose(2, 1, 0)  # Lava XYC -> CHW
    steps = TINY_STEPS + 3  # + number of layers, as lava-dl runs it
    out = run(graph, {"input": np.broadcast_to(bias, (steps, *bias.shape))}).outputs["output"][:, 0]
    gt = np.load(data_dir / "netx/tiny/tinynet/output.npy")[0].transpose(2, 1, 0, 3)[..., 1:]
    return out.transpose(3, 2, 1, 0), gt


def test_tiny_matches_lava_dl_ground_truth_exactly(data_dir: Path) -> None:
    out, gt = tiny_run(data_dir)
    assert gt.sum() == 92
    assert np.abs(out[..., 2:17] - gt).sum() == 0


def oxford_input(data_dir: Path) -> np.ndarray:
    return spike_events_to_raster(np.load(data_dir / "netx/oxford/input.npy"), 2000, 200)


def test_oxford_against_the_published_hardware_output(data_dir: Path) -> None:
    graph = import_netx(data_dir / "netx/oxford/network.net")
    out = run(graph, {"input": oxford_input(data_dir)}).outputs["output"][:, 0]
    gt = spike_events_to_raster(np.load(data_dir / "netx/oxford/ground_truth.npy"), 2000, 200)
    assert int(gt.sum()) == 10178
    assert int(out.sum()) == 9632  # Lava's CPU fixed_pt model gives the same 9,632 spikes
    assert int((out * gt).sum()) == 8398  # spikes at the same neuron and step as on the chip
    shifted = [int((np.roll(out, s, axis=0) * gt).sum()) for s in (-1, 1)]
    assert max(shifted) < 500  # not a latency offset: the trains part ways, they are not shifted


def test_netx_import_is_lava_dl_s_mapping(data_dir: Path) -> None:
    graph = import_netx(data_dir / "netx/oxford/network.net")
    assert [n.kind for n in graph.nodes.values()] == [
        "Input", "LoihiDense", "LoihiLIF", "LoihiDense", "LoihiLIF", "Output",
    ]  # fmt: skip
    d1, lif1 = graph.nodes["layer1_synapse"], graph.nodes["layer1"]
    assert isinstance(d1, LoihiDense) and isinstance(lif1, LoihiLIF)
    # weights in [-98, 124], all even: netx's optimize_weight_bits gives w << 1, exponent -1, 7 bits
    with h5py.File(data_dir / "netx/oxford/network.net") as f:
        w = f["layer/1/weight"][()]
        v_decay = int(f["layer/1/neuron/vDecay"][()])
    assert (d1.weight_exp, d1.num_weight_bits, d1.sign_mode) == (-1, 7, 1)
    np.testing.assert_array_equal(dense_weights(d1) * 2.0**d1.weight_exp, w)  # exact: nothing truncated
    assert (lif1.du, lif1.dv, int(lif1.vth), lif1.input_mode) == (4095, v_decay, 6, "current")
    tiny = import_netx(data_dir / "netx/tiny/tiny.net")
    assert tiny.nodes["layer0"].input_mode == "bias"  # type: ignore[attr-defined]
    assert tiny.types["output"] == (36, 1, 1)


def _same_net(a: Graph, b: Graph) -> bool:
    """Equal graphs up to ``origin`` (which names the file each was read from)."""

    def strip(g: Graph) -> Graph:
        return Graph({n: node.replace(origin="") for n, node in g.nodes.items()}, g.edges, dt=g.dt)

    return strip(a) == strip(b)


def test_netx_round_trip(tmp_path: Path, data_dir: Path) -> None:
    for net in ("tiny/tiny.net", "oxford/network.net"):
        graph = load_model(data_dir / "netx" / net)
        save_model(graph, tmp_path / net.split("/")[1])
        assert _same_net(load_model(tmp_path / net.split("/")[1]), graph)
    with h5py.File(tmp_path / "network.net") as f:  # lava-dl's layout
        assert f["layer/0/type"][()].tolist() == [b"dense"]
        assert f["layer/0/neuron/type"][()] == b"CUBA"
        assert f["layer/0/weight"].shape == (256, 200)


def test_sir_to_netx_through_the_cli(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sir = tmp_path / "tiny.sir"
    assert main(["import", str(data_dir / "netx/tiny/tiny.net"), "-o", str(sir)]) == 0
    assert main(["import", str(sir), "-o", str(tmp_path / "tiny.net")]) == 0
    assert _same_net(load_model(tmp_path / "tiny.net"), import_netx(data_dir / "netx/tiny/tiny.net"))


def test_run_fixed_loihi2_cli(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = tmp_path / "x.npy"
    np.save(x, oxford_input(data_dir))
    net = str(data_dir / "netx/oxford/network.net")
    assert main(["run", net, "--fixed", "loihi2", "--input", str(x), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outputs"]["output"]["spikes"] == 9632
    np.save(x, oxford_input(data_dir) * 0.5)
    assert main(["run", net, "--fixed", "loihi2", "--input", str(x)]) == 1
    assert "integer inputs" in capsys.readouterr().err


def test_fixed_loihi2_refuses_a_float_snn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = Graph({"x": Input(shape=(2,)), "lif": LIF(tau=np.array(0.01)), "y": Output()}, [("x", "lif"), ("lif", "y")])
    save_model(graph, tmp_path / "m.sir")
    np.save(tmp_path / "x.npy", np.ones((4, 2)))
    assert main(["run", str(tmp_path / "m.sir"), "--fixed", "loihi2", "--input", str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert "'lif' (LIF)" in err and "quantize{target=loihi2}" in err


CUBA = {"type": b"CUBA", "iDecay": 4096, "vDecay": 400, "vThMant": 6}


def test_unknown_layer_type_lists_the_supported_ones(tmp_path: Path) -> None:
    layers = [{"type": np.array([b"input"]), "shape": [2, 4, 4]}, {"type": np.array([b"pool"])}]
    write_net(tmp_path / "pool.net", layers)
    with pytest.raises(FrontendError, match=r"layer 1 \(pool\).*'pool' is not supported; supported: \['conv', 'dense'"):
        import_netx(tmp_path / "pool.net")


def test_weights_that_do_not_fit_name_the_layer_and_range(tmp_path: Path) -> None:
    w = np.array([[300.0, -20.0], [5.0, 7.0]])
    write_net(tmp_path / "big.net", [{"type": np.array([b"dense"]), "shape": [2], "weight": w, "neuron": CUBA}])
    with pytest.raises(FrontendError, match=r"big.net: netx layer 0 \(dense, weight\): weights in \[-20, 300\]"):
        import_netx(tmp_path / "big.net")
    with pytest.raises(FrontendError, match=r"must lie in -256\.\.254"):
        optimize_weight_bits(w, "here")
    with pytest.raises(VerifyError, match=r"'d' \(LoihiDense\).*'weight' must lie in \[-256, 255\]"):
        Graph({"x": Input(shape=(2,)), "d": LoihiDense(weight=w), "y": Output()}, [("x", "d"), ("d", "y")])


def test_optimize_weight_bits_is_exact_for_representable_weights() -> None:
    rng = np.random.default_rng(0)
    for w in (rng.integers(-128, 127, (5, 7)) * 2, rng.integers(0, 40, (3, 3)) * 4, -rng.integers(1, 200, (4, 2))):
        mant, bits, exp, mode = optimize_weight_bits(w, "w")
        node = LoihiDense(weight=mant, weight_exp=exp, num_weight_bits=bits, sign_mode=int(mode))
        np.testing.assert_array_equal(dense_weights(node) * 2.0**exp, w)


def test_lava_environment_missing_says_how_to_create_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import spikec.targets.loihi2.lava_env as lava_env

    monkeypatch.delenv(lava_env.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lava_env, "source_root", lambda: tmp_path)  # a source tree without .venv-lava
    with pytest.raises(TargetError, match="make lava-env"):
        lava_env.find_lava_python()
    monkeypatch.setenv(lava_env.ENV_VAR, str(tmp_path / "nope" / "python"))
    with pytest.raises(TargetError, match="does not exist"):
        lava_env.find_lava_python()


def test_netx_writer_refuses_what_netx_cannot_hold(tmp_path: Path) -> None:
    odd = LoihiDense(weight=np.array([[3, 5]]), weight_exp=-1)
    graph = Graph(
        {"x": Input(shape=(2,)), "d": odd, "lif": LoihiLIF(), "y": Output()}, [("x", "d"), ("d", "lif"), ("lif", "y")]
    )
    with pytest.raises(SpikecError, match=r"'d' \(LoihiDense\).*fractional"):
        export_netx(graph, tmp_path / "odd.net")
    assert not (tmp_path / "odd.net").exists()


def test_dense_rec_reads_as_a_one_step_loop_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w, w_rec = rng.integers(-50, 120, (6, 4)).astype(float), rng.integers(-120, 60, (6, 6)).astype(float)
    layer = {"type": np.array([b"dense_rec"]), "shape": [6], "weight": w, "weight_rec": w_rec, "neuron": CUBA}
    write_net(tmp_path / "rec.net", [layer])
    graph = import_netx(tmp_path / "rec.net")
    rec = graph.nodes["layer0_recurrent"]
    assert isinstance(rec, LoihiDense) and rec.buffered == 0
    assert [(e.src, e.dst, e.recurrent) for e in graph.in_edges("layer0")] == [
        ("layer0_synapse", "layer0", False),
        ("layer0_recurrent", "layer0", True),
    ]
    np.testing.assert_array_equal(dense_weights(rec) * 2.0**rec.weight_exp, w_rec)
    export_netx(graph, tmp_path / "copy.net")
    assert _same_net(import_netx(tmp_path / "copy.net"), graph)
    x = (rng.random((30, 4)) < 0.5).astype(float)
    with_rec = run(graph, {"input": x}).outputs["output"]
    plain = Graph(
        {n: v for n, v in graph.nodes.items() if n != "layer0_recurrent"},
        [e for e in graph.edges if "recurrent" not in e.src + e.dst],
    )
    assert with_rec.sum() > 0 and not np.array_equal(with_rec, run(plain, {"input": x}).outputs["output"])
