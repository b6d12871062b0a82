"""What the command line takes from the installed targets rather than naming chips: ``run --layout TARGET``
(the target's array layout), ``run --fixed TARGET`` (its fixed-point mode), ``partition --target`` (its
resource model); each error for a target without the feature lists the targets that have it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikec.cli import main
from spikec.cli_args import installed_targets, layout_help
from spikec.ir import LIF, Graph, Input, Output
from spikec.models import save_model


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def lif_model(tmp_path: Path) -> Path:
    graph = Graph({"x": Input(shape=(2,)), "lif": LIF(tau=np.array(0.01)), "y": Output()}, [("x", "lif"), ("lif", "y")])
    save_model(graph, tmp_path / "m.sir")
    np.save(tmp_path / "x.npy", np.ones((4, 2)))
    return tmp_path / "m.sir"


def test_installed_targets_by_feature() -> None:
    assert {"interp", "loihi2"} <= set(installed_targets())  # and any vendor's installed beside them
    for feature in ("array layout", "fixed-point mode", "resource model"):
        having = installed_targets(feature)
        assert "loihi2" in having and "interp" not in having, feature
    assert "loihi2: Lava's, spikec's axes reversed" in layout_help()  # the help text comes from the target


def test_layout_by_target_is_a_relayout_of_spikec_arrays(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lava-dl's tinynet input bias in Lava's (X, Y, C) through ``--layout loihi2``, and the same bias in spikec's
    (T, C, H, W): the same spikes, the output written in Lava's (X, Y, C, T)."""
    net = str(data_dir / "netx/tiny/tiny.net")
    lava_bias = data_dir / "netx/tiny/tinynet/input_bias.npy"  # (X, Y, C)
    bias = np.load(lava_bias)
    np.save(tmp_path / "spikec.npy", np.broadcast_to(bias.transpose(2, 1, 0), (20, *bias.shape[::-1])))
    common = ["--steps", "20", "--fixed", "loihi2"]
    argv = ["run", net, "--layout", "loihi2", "--input", str(lava_bias), *common, "-o", str(tmp_path / "lava.npz")]
    code, theirs = _cli(argv, capsys)
    assert code == 0, theirs
    argv = ["run", net, "--input", str(tmp_path / "spikec.npy"), *common, "-o", str(tmp_path / "s.npz")]
    code, ours = _cli(argv, capsys)
    assert code == 0, ours
    assert theirs["layout"] == "loihi2" and ours["layout"] == "spikec"
    assert theirs["outputs"] == ours["outputs"] and ours["outputs"]["output"]["spikes"] > 0
    with np.load(tmp_path / "lava.npz") as lava, np.load(tmp_path / "s.npz") as spikec:
        assert lava["output"].shape == (1, 1, 36, 20) and spikec["output"].shape == (20, 1, 36, 1, 1)
        np.testing.assert_array_equal(lava["output"], spikec["output"][:, 0].T)


def test_layout_of_a_target_without_one(lif_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = str(lif_model.parent / "x.npy")
    code, r = _cli(["run", str(lif_model), "--layout", "interp", "--input", x], capsys)
    assert code == 1 and r["error_type"] == "TargetError"
    assert r["error"].startswith("--layout interp: target 'interp' has no array layout; targets with one: ")
    assert "loihi2" in r["error"].split(": ")[-1]
    code, r = _cli(["run", str(lif_model), "--layout", "lava", "--input", x], capsys)  # the old spelling
    assert code == 1 and "no target named 'lava'; installed: " in r["error"] and "interp, loihi2" in r["error"]


def test_fixed_of_a_target_without_a_fixed_point_mode(lif_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, r = _cli(["run", str(lif_model), "--fixed", "interp", "--input", str(lif_model.parent / "x.npy")], capsys)
    assert code == 1 and r["error_type"] == "TargetError"
    assert r["error"].startswith("--fixed interp: target 'interp' has no fixed-point mode; targets with one: ")
    assert "loihi2" in r["error"].split(": ")[-1]


def test_partition_needs_a_target_with_a_resource_model(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nir = str(data_dir / "nir" / "cnn" / "cnn_sinabs.nir")
    code, r = _cli(["partition", nir], capsys)
    assert code == 2 and r["error_type"] == "UsageError"
    assert "needs --target NAME" in r["error"] and "loihi2" in r["error"].split(": ")[-1]
    code, r = _cli(["partition", nir, "--target", "interp"], capsys)
    assert code == 1 and "target 'interp' has no resource model; targets with one: " in r["error"]
    assert "loihi2" in r["error"].split(": ")[-1]
    code, r = _cli(["partition", nir, "--target", "loihi2"], capsys)
    assert code == 0 and r["core_map"]["cores_used"] >= 1


def test_targets_lists_what_each_offers(capsys: pytest.CaptureFixture[str]) -> None:
    code, r = _cli(["targets"], capsys)
    rows = {row["name"]: row for row in r["targets"]}
    assert code == 0 and rows["interp"]["features"] == []
    assert rows["loihi2"]["features"] == ["array layout", "fixed-point mode", "resource model"]
    main(["targets"])
    assert "has: array layout, fixed-point mode, resource model" in capsys.readouterr().out
