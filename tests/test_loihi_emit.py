"""``spikec compile --target loihi2``: the artifact's files, its legality checks, and run_lava.py == the interpreter.

The slow tests run the emitted ``run_lava.py`` in the Lava environment (``make lava-env``): every network of
tests/loihi_networks.py (every Loihi kind, delays, recurrence, bias input) with every layer compared, and
tinynet with ``python -I`` from another directory, where spikec cannot be imported.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from loihi_networks import NETWORKS

from spikec.artifact import record_hashes
from spikec.cli import main
from spikec.errors import TargetError
from spikec.interp import run
from spikec.ir import LIF, Graph, Input, Output
from spikec.plugins import load_target
from spikec.targets.loihi2 import Loihi2Target
from spikec.targets.loihi2.dialect import LoihiDense, LoihiLIF
from spikec.targets.loihi2.lava_env import find_lava_python
from spikec.targets.loihi2.netx import import_netx
from spikec.targets.loihi2.verify import verify_artifact
from spikec.text import load_sir, save_sir

ARTIFACT_FILES = {
    "run_lava.py",
    "weights.npz",
    "network.json",
    "model.net",
    "core_map.json",
    "model.sir",
    "report.json",
}


def _compile(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["compile", *args, "--target", "loihi2", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_loihi2_is_an_installed_target() -> None:
    target = load_target("loihi2")
    assert isinstance(target, Loihi2Target)
    assert {
        "LoihiDense",
        "LoihiConv",
        "LoihiLIF",
        "LoihiDelta",
        "LoihiSigmaDelta",
        "LoihiSigma",
        "Input",
        "Output",
    } <= (target.capabilities().node_kinds or set())
    pipeline = [
        "fuse",
        "fold-batchnorm",
        "fuse-spiking-attention",
        "flatten-tokens",
        "quantize{target=loihi2}",
        "split-fanin",
        "partition{target=loihi2}",
    ]
    assert target.default_pipeline() == pipeline


def test_compile_tinynet_writes_every_file(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny"
    code, r = _compile([str(data_dir / "netx/tiny/tiny.net"), "--timesteps", "20", "-o", str(out)], capsys)
    assert code == 0, r
    assert set(r["files"]) >= ARTIFACT_FILES and {p.name for p in out.iterdir()} >= ARTIFACT_FILES
    assert [s["status"] for s in r["pipeline"]] == ["ran"] * 7  # all pass a Loihi-dialect graph through

    report = json.loads((out / "report.json").read_text())
    assert report["target"] == "loihi2" and report["steps"] == 20 and report["spikec_version"]
    assert report["method"] == "snn" and report["files"] == r["files"]
    emitted = report["artifact"]  # the target's own report on its artifact
    assert emitted["inputs"] == {"input": [3, 16, 16]} and emitted["outputs"] == {"output": [36, 1, 1]}
    assert emitted["netx"]["written"] is True
    assert emitted["neurons"] == 3 * 16 * 16 + 24 * 6 * 6 + 36  # input LIF, conv LIF, conv LIF
    assert [row["process"] for row in emitted["layers"]] == ["LIF", "Conv", "LIF", "Conv", "LIF"]

    graph = import_netx(data_dir / "netx/tiny/tiny.net")
    assert load_sir(out / "model.sir") == graph
    again = import_netx(out / "model.net")  # the .net round-trips (up to origin, the file each was read from)
    assert all(again.nodes[n].replace(origin="") == node.replace(origin="") for n, node in graph.nodes.items())
    network = json.loads((out / "network.json").read_text())
    assert [n["name"] for n in network["nodes"]] == list(graph.order)
    with np.load(out / "weights.npz") as w:
        np.testing.assert_array_equal(w["layer2_synapse/weight"], graph.nodes["layer2_synapse"].weight)
    core_map = json.loads((out / "core_map.json").read_text())
    assert core_map["status"] == "partitioned" and core_map["cores_used"] >= core_map["lower_bound"] >= 1
    assert len(core_map["layer_resources"]) == 5
    placed = {s["core"] for layer in core_map["layers"].values() for s in layer["slices"]}
    assert placed == set(range(core_map["cores_used"]))

    source = (out / "run_lava.py").read_text()
    assert "spikec" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))


def test_float_snn_names_node_and_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = Graph(
        {
            "x": Input(shape=(4,)),
            "fc": LoihiDense(weight=np.ones((3, 4))),
            "spk": LIF(tau=np.array(0.01)),
            "y": Output(),
        },
        [("x", "fc"), ("fc", "spk"), ("spk", "y")],
    )
    save_sir(graph, tmp_path / "float.sir")
    out = tmp_path / "art"
    code, r = _compile([str(tmp_path / "float.sir"), "--timesteps", "8", "-o", str(out)], capsys)
    # a half-lowered graph: the quantize pass names the node it cannot lower (a Loihi synapse before a float LIF)
    assert code == 1 and "'fc'" in r["error"] and "quantize{target=loihi2}" in r["error"], r
    assert not out.exists() and not list(tmp_path.glob(".art*"))  # nothing half-written
    with pytest.raises(TargetError, match=r"'spk'.*run quantize\{target=loihi2\}"):
        Loihi2Target().legalize(graph)


def test_an_ann_without_calib_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spikec.ir import Dense

    save_sir(
        Graph({"x": Input(shape=(4,)), "d": Dense(weight=np.ones((2, 4))), "y": Output()}, [("x", "d"), ("d", "y")]),
        tmp_path / "ann.sir",
    )
    code, r = _compile([str(tmp_path / "ann.sir"), "--timesteps", "8", "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "--calib" in r["error"]


def test_converted_ann_is_quantized_with_pass_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --calib the ANN is converted to a float SNN; the loihi2 pipeline quantizes it. The target chooses reset
    to zero (Lava's LIF); forcing subtraction is an error saying what Loihi does instead."""
    from spikec.ir import Dense, ReLU

    rng = np.random.default_rng(0)
    nodes = {
        "x": Input(shape=(4,)),
        "fc": Dense(weight=rng.normal(0, 1, (3, 4))),
        "act": ReLU(),
        "head": Dense(weight=rng.normal(0, 1, (2, 3))),
        "y": Output(),
    }
    save_sir(Graph(nodes, [("x", "fc"), ("fc", "act"), ("act", "head"), ("head", "y")]), tmp_path / "ann.sir")
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, (16, 4)))
    out = tmp_path / "art"
    argv = [str(tmp_path / "ann.sir"), "--calib", str(tmp_path / "calib.npy"), "--timesteps", "8", "-o", str(out)]
    code, r = _compile([*argv, "--reset", "subtract"], capsys)
    assert code == 1 and "Lava's LIF resets v to 0" in r["error"] and "Leave --reset out" in r["error"], r
    assert not out.exists()

    code, r = _compile([*argv, "--pass-option", "quantize.bogus=1"], capsys)
    assert code == 1 and "bogus" in r["error"] and not out.exists(), r
    code, r = _compile([*argv, "--pass-option", "partitio.chips=1"], capsys)
    assert code == 1 and "quantize, split-fanin, partition" in r["error"], r

    code, r = _compile([*argv, "--pass-option", "quantize.input_max=2"], capsys)
    assert code == 0, r
    report = json.loads((out / "report.json").read_text())
    assert report["pipeline"][4]["pass"] == "quantize{target=loihi2,input_max=2,timesteps=8}"
    assert report["conversion_settings"]["quantize.input_max"] == {"value": "2", "by": "user"}
    assert report["conversion_settings"]["reset"]["by"] == "target loihi2"
    assert (out / "run_lava.py").is_file() and all(
        node.level in ("fixed", "structure") or node.kind == "Flatten"
        for node in load_sir(out / "model.sir").nodes.values()
    )


def test_lif_with_several_thresholds_is_refused_and_the_old_artifact_kept(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "art"
    assert _compile([str(data_dir / "netx/tiny/tiny.net"), "--timesteps", "5", "-o", str(out)], capsys)[0] == 0
    before = (out / "weights.npz").read_bytes()
    graph = Graph(
        {
            "x": Input(shape=(3,)),
            "fc": LoihiDense(weight=np.ones((2, 3))),
            "n": LoihiLIF(vth=np.array([5, 6])),
            "y": Output(),
        },
        [("x", "fc"), ("fc", "n"), ("n", "y")],
    )
    save_sir(graph, tmp_path / "two.sir")
    code, r = _compile([str(tmp_path / "two.sir"), "--timesteps", "5", "-o", str(out)], capsys)
    assert code == 1 and "'n'" in r["error"] and "one vth" in r["error"]
    assert (out / "weights.npz").read_bytes() == before


def test_loihi_sir_without_a_netx_form_still_compiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Per-synapse delays (Lava's DelayDense) have no netx form: the report says so, the rest is written."""
    graph, feeds, steps = NETWORKS["dense_synaptic_delays"]()
    save_sir(graph, tmp_path / "delays.sir")
    np.save(tmp_path / "x.npy", feeds["x"])
    out = tmp_path / "art"
    code, r = _compile(
        [str(tmp_path / "delays.sir"), "--timesteps", str(steps), "--inputs", str(tmp_path / "x.npy"), "-o", str(out)],
        capsys,
    )
    assert code == 0, r
    netx = json.loads((out / "report.json").read_text())["artifact"]["netx"]
    assert netx["written"] is False and "delays" in netx["reason"]
    assert "model.net" not in r["files"] and not (out / "model.net").exists()
    network = json.loads((out / "network.json").read_text())
    assert [n["process"] for n in network["nodes"] if n["kind"] == "LoihiDense"] == ["DelayDense"]
    with np.load(out / "weights.npz") as w:
        np.testing.assert_array_equal(w["loihidense0/delay"], graph.nodes["loihidense0"].delay)
    with np.load(out / "inputs.npz") as x:
        np.testing.assert_array_equal(x["x"][:, 0], feeds["x"])


@pytest.mark.slow
def test_every_random_network_runs_in_lava_as_in_the_interpreter(tmp_path: Path) -> None:
    """Each network of loihi_networks.py, emitted and run by its run_lava.py: every layer identical."""
    target = Loihi2Target()
    kinds: set[str] = set()
    processes: set[str] = set()
    for name, build in NETWORKS.items():
        graph, feeds, steps = build()
        out = tmp_path / name
        target.emit(target.lower(target.legalize(graph)), out)
        record_hashes(out)  # what spikec compile adds: verify checks the files against it
        np.savez(tmp_path / f"{name}.npz", **feeds)
        r = verify_artifact(out, inputs=tmp_path / f"{name}.npz", steps=steps, layers=True)
        assert r["mismatches"] == 0, (name, r["first_mismatches"])
        compared = [n for n, node in graph.nodes.items() if node.level == "fixed" or n in graph.outputs]
        states = sum(v["values"] for k, v in r["values"].items() if k not in graph.nodes)  # output neurons' u/v
        assert r["compared"] == steps * sum(int(np.prod(graph.types[n])) for n in compared) + states
        assert any(v["lava_sum"] != 0 for v in r["values"].values()), name
        kinds |= {node.kind for node in graph.nodes.values()}
        processes |= {n["process"] for n in json.loads((out / "network.json").read_text())["nodes"]}
    assert {"LoihiDense", "LoihiConv", "LoihiLIF", "LoihiDelta", "LoihiSigmaDelta", "LoihiSigma", "Flatten"} <= kinds
    assert {"Dense", "DelayDense", "Conv", "LIF", "LIFReset", "Delta", "SigmaDelta", "Sigma"} <= processes


@pytest.mark.slow
def test_run_lava_runs_without_spikec(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The artifact's own CLI, with the Lava venv's python in isolated mode (-I, no PYTHONPATH) from another cwd."""
    out = tmp_path / "tiny"
    assert _compile([str(data_dir / "netx/tiny/tiny.net"), "--timesteps", "20", "-o", str(out)], capsys)[0] == 0
    python = str(find_lava_python())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    no_spikec = subprocess.run([python, "-I", "-c", "import spikec"], cwd=elsewhere, env=env, capture_output=True)
    assert no_spikec.returncode != 0  # spikec is not importable where the artifact runs
    bias = np.load(data_dir / "netx/tiny/tinynet/input_bias.npy").transpose(2, 1, 0)  # (X, Y, C) -> (C, H, W)
    x = np.broadcast_to(bias, (20, *bias.shape)).astype(np.int32)
    np.save(elsewhere / "x.npy", x)
    proc = subprocess.run(
        [python, "-I", str(out / "run_lava.py"), "--inputs", "x.npy", "--out", "o.npz"],  # T: the input's
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["samples"] == 1 and summary["steps"] == 20
    with np.load(elsewhere / "o.npz") as o:
        lava = o["output"]
    expected = run(import_netx(data_dir / "netx/tiny/tiny.net"), x.astype(np.float64), steps=20).outputs["output"]
    assert lava.shape == expected.shape == (20, 1, 36, 1, 1)
    assert lava.sum() > 0 and np.array_equal(lava, expected)
