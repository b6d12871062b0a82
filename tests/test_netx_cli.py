"""lava-dl netx networks with a periodic reset, from the command line alone.

lava-dl's ``test_tinynet`` (tests/lava/lib/dl/netx/test_hdf5.py) runs ``tiny.net`` for 17 + 3 steps with
``input_bias.npy`` as the input layer's ``bias_mant`` and every layer's u and v reset every 17 steps, and
demands ``out[..., 2:17] == gt[0].transpose(2, 1, 0, 3)[..., 1:]`` exactly. Here the same procedure is
the flags a user types: ``--reset-interval 17`` on import/run/compile, ``--layout loihi2`` (the target's
array layout: Lava's) to take ``input_bias.npy`` (Lava's (X, Y, C), no time axis: a bias held for
``--steps``) and write the output in Lava's (X, Y, C, T). The slow test compiles it for loihi2 and checks it
in Lava itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from netx_files import write_net

from spikec.cli import main
from spikec.errors import InputError
from spikec.models import load_model
from spikec.targets.loihi2.dialect import LoihiLIF
from spikec.targets.loihi2.lava_env import find_lava_python
from spikec.targets.loihi2.lava_layout import from_lava, to_lava
from spikec.targets.loihi2.netx import export_netx, import_netx

SPIKEC = str(Path(sys.executable).parent / "spikec")  # the installed console script


@pytest.fixture
def tiny(data_dir: Path) -> dict[str, Path]:
    d = data_dir / "netx/tiny"
    return {"net": d / "tiny.net", "bias": d / "tinynet/input_bias.npy", "gt": d / "tinynet/output.npy"}


def _ground_truth(tiny: dict[str, Path]) -> np.ndarray:
    """lava-dl's expected output spikes, (X, Y, C, T) = (1, 1, 36, 15)."""
    return np.load(tiny["gt"])[0].transpose(2, 1, 0, 3)[..., 1:]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_tinynet_matches_lava_dl_from_the_command_line(tiny: dict[str, Path], tmp_path: Path) -> None:
    sir, out = tmp_path / "tiny.sir", tmp_path / "out.npz"
    for argv in (
        ["import", str(tiny["net"]), "--reset-interval", "17", "-o", str(sir)],
        ["run", str(sir), "--fixed", "loihi2", "--layout", "loihi2", "--input", str(tiny["bias"]), "--steps", "20"],
    ):
        proc = subprocess.run([SPIKEC, *argv, "-o", str(out if argv[0] == "run" else sir), "--json"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["steps"] == 20 and report["layout"] == "loihi2"
    with np.load(out) as o:
        output = o["output"]
    gt = _ground_truth(tiny)
    assert output.shape == (1, 1, 36, 20) and gt.sum() == 92
    assert np.abs(output[..., 2:17] - gt).sum() == 0  # lava-dl's own comparison, exact


def test_without_the_reset_tinynet_does_not_match(
    tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(tiny["net"]), "--layout", "loihi2", "--input", str(tiny["bias"]), "--steps", "20"]
    assert _cli([*argv, "-o", str(tmp_path / "no_reset.npz")], capsys)[0] == 0
    with np.load(tmp_path / "no_reset.npz") as o:
        assert np.abs(o["output"][..., 2:17] - _ground_truth(tiny)).sum() > 0  # measured 46 spikes apart
    assert _cli([*argv, "--reset-interval", "17", "-o", str(tmp_path / "reset.npz")], capsys)[0] == 0
    with np.load(tmp_path / "reset.npz") as o:
        assert np.abs(o["output"][..., 2:17] - _ground_truth(tiny)).sum() == 0  # run reads the .net directly too


def test_reset_offset_shifts_every_layer(tiny: dict[str, Path], tmp_path: Path) -> None:
    """Network(reset_offset=K): the k-th neuron layer resets at t = K + 1 + k (mod N); the .sir keeps it."""
    sir = tmp_path / "tiny.sir"
    assert main(["import", str(tiny["net"]), "--reset-interval", "17", "--reset-offset", "5", "-o", str(sir)]) == 0
    lifs = [n for n in load_model(sir).nodes.values() if isinstance(n, LoihiLIF)]
    assert [(n.reset_interval, n.reset_offset) for n in lifs] == [(17, 6), (17, 7), (17, 8)]


@pytest.mark.parametrize("command", ["import", "run", "compile", "check"])
def test_reset_flags_on_other_formats_are_usage_errors(
    command: str, tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sir = tmp_path / "tiny.sir"
    assert main(["import", str(tiny["net"]), "-o", str(sir)]) == 0
    capsys.readouterr()
    extra = {
        "import": ["-o", str(tmp_path / "again.sir")],
        "run": ["--input", str(tiny["bias"]), "--steps", "3"],
        "compile": ["--target", "loihi2", "--timesteps", "3", "-o", str(tmp_path / "art")],
        "check": [],
    }[command]
    for flag in ("--reset-interval", "--reset-offset"):
        code, r = _cli([command, str(sir), flag, "3", *extra], capsys)
        assert code == 2 and r["error_type"] == "UsageError"
        assert f"{flag} applies only to .net models, not to a '.sir' file" in r["error"]
    assert not (tmp_path / "again.sir").exists() and not (tmp_path / "art").exists()


def test_bad_reset_options(tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, r = _cli(["import", str(tiny["net"]), "--reset-offset", "2"], capsys)
    assert code == 2 and "needs reset_interval (--reset-interval)" in r["error"]
    for bad in ("0", "-3", "x"):
        assert main(["import", str(tiny["net"]), "--reset-interval", bad]) == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_sdnn_layers_have_no_reset(tmp_path: Path) -> None:
    """As lava-dl: a reset on an SDNN-only network is refused; beside LIF layers it is ignored with a warning."""
    sdnn = {"type": b"SDNN", "vThMant": 4}
    cuba = {"type": b"CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80}
    weight = np.arange(-6, 6, dtype=np.float32).reshape(3, 4) * 8
    first = {"type": np.array([b"input"]), "shape": [4], "neuron": sdnn}
    write_net(
        tmp_path / "sdnn.net", [first, {"type": np.array([b"dense"]), "shape": [3], "weight": weight, "neuron": sdnn}]
    )
    write_net(
        tmp_path / "mixed.net", [first, {"type": np.array([b"dense"]), "shape": [3], "weight": weight, "neuron": cuba}]
    )
    code = main(["import", str(tmp_path / "sdnn.net"), "--reset-interval", "4", "-o", str(tmp_path / "s.sir")])
    assert code == 2 and not (tmp_path / "s.sir").exists()
    with pytest.warns(UserWarning, match=r"SDNN layers \[0\] have no reset"):
        graph = import_netx(tmp_path / "mixed.net", reset_interval=4)
    assert (graph.nodes["layer1"].reset_interval, graph.nodes["layer1"].reset_offset) == (4, 2)  # type: ignore[attr-defined]


def test_the_netx_writer_says_how_to_restore_the_reset(tiny: dict[str, Path], tmp_path: Path) -> None:
    graph = import_netx(tiny["net"], reset_interval=17, reset_offset=3)
    with pytest.warns(UserWarning, match=r"Network\(net_config=\.\.\., reset_interval=17, reset_offset=3\)"):
        export_netx(graph, tmp_path / "copy.net")
    assert import_netx(tmp_path / "copy.net", reset_interval=17, reset_offset=3) == graph.replace(
        nodes={n: node.replace(origin=node.origin.replace("tiny.net", "copy.net")) for n, node in graph.nodes.items()}
    )
    odd = graph.nodes["layer1"].replace(reset_offset=9)
    with pytest.warns(UserWarning, match=r"per-layer resets .* \[\(0, 17, 4\), \(1, 17, 9\), \(2, 17, 6\)\]"):
        export_netx(graph.replace(nodes={**graph.nodes, "layer1": odd}), tmp_path / "odd.net")


def test_lava_layout_round_trip_and_errors() -> None:
    x = np.arange(2 * 3 * 4 * 5).reshape(5, 2, 3, 4)  # spikec (T, C, H, W)
    lava = to_lava(x[:, None])
    assert lava.shape == (4, 3, 2, 5) and lava[3, 2, 1, 4] == x[4, 1, 2, 3]
    np.testing.assert_array_equal(from_lava("x", lava, (2, 3, 4), None), x[:, None])
    held = from_lava("x", lava[..., 0], (2, 3, 4), 7)
    assert held.shape == (7, 1, 2, 3, 4) and np.all(held == x[0])
    with pytest.raises(InputError, match=r"without a time axis .* give --steps"):
        from_lava("x", lava[..., 0], (2, 3, 4), None)
    with pytest.raises(
        InputError, match=r"the graph's input \(2, 3, 4\) is \(4, 3, 2\) \(a constant\) or \(4, 3, 2, T\)"
    ):
        from_lava("x", x, (2, 3, 4), None)


def test_lava_layout_refuses_an_ann(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spikec.ir import Graph, Input, Output, ReLU
    from spikec.models import save_model

    save_model(
        Graph({"x": Input(shape=(3,)), "r": ReLU(), "y": Output()}, [("x", "r"), ("r", "y")]), tmp_path / "a.sir"
    )
    np.save(tmp_path / "x.npy", np.ones(3))
    code, r = _cli(["run", str(tmp_path / "a.sir"), "--layout", "loihi2", "--input", str(tmp_path / "x.npy")], capsys)
    assert code == 1 and "applies to spiking graphs" in r["error"]


@pytest.mark.slow
def test_compile_with_reset_and_verify_in_lava(
    tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reset compiles to Lava's LIFReset: verify (every layer) is exact, and the artifact run in Lava
    alone reproduces lava-dl's ground truth."""
    bias = np.load(tiny["bias"]).transpose(2, 1, 0)  # spikec layout for compile --inputs: (T, N, C, H, W)
    np.save(tmp_path / "x.npy", np.broadcast_to(bias, (20, 1, *bias.shape)).astype(np.int32))
    art = tmp_path / "art"
    argv = ["compile", str(tiny["net"]), "--reset-interval", "17", "--target", "loihi2", "--timesteps", "20"]
    code, r = _cli([*argv, "--inputs", str(tmp_path / "x.npy"), "-o", str(art)], capsys)
    assert code == 0, r
    assert any("reset_interval=17, reset_offset=0" in w for w in r["warnings"])  # model.net has no reset field
    network = json.loads((art / "network.json").read_text())
    lifs = [(n["process"], n["params"]["reset_interval"], n["params"]["reset_offset"])
            for n in network["nodes"] if n["kind"] == "LoihiLIF"]  # fmt: skip
    assert lifs == [("LIFReset", 17, 1), ("LIFReset", 17, 2), ("LIFReset", 17, 3)]
    code, r = _cli(["verify", str(art), "--layers"], capsys)
    assert code == 0 and r["mismatches"] == 0 and r["steps"] == 20, r
    proc = subprocess.run(
        [str(find_lava_python()), "-I", str(art / "run_lava.py"), "--inputs", str(tmp_path / "x.npy"),
         "--out", str(tmp_path / "lava.npz")], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(tmp_path / "lava.npz") as o:
        lava = o["output"]  # (T, N, C, H, W)
    assert np.abs(to_lava(lava)[..., 2:17] - _ground_truth(tiny)).sum() == 0
