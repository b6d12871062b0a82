"""``spikec verify DIR``: the artifact in Lava (fixed_pt) against the interpreter, value for value.

The slow tests need the Lava environment (``make lava-env``): lava-dl's tinynet with its real input (stored
by ``compile --inputs``), the oxford network for 200 steps, and an artifact whose weights were edited
after compile, which must be caught. The fast ones check the errors: no Lava, not an artifact.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from spikec.artifact import sha256_file
from spikec.cli import main
from spikec.targets.loihi2.netx import spike_events_to_raster

VERIFY_KEYS = {"target", "samples", "steps", "mismatches", "agreement"}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def tiny_artifact(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """tinynet compiled for loihi2 with its real input (lava-dl's input_bias, constant over 20 steps) stored."""
    bias = np.load(data_dir / "netx/tiny/tinynet/input_bias.npy").transpose(2, 1, 0)  # (X, Y, C) -> (C, H, W)
    np.save(tmp_path / "x.npy", np.broadcast_to(bias, (20, 1, *bias.shape)).astype(np.int32))
    out = tmp_path / "tiny"
    argv = ["compile", str(data_dir / "netx/tiny/tiny.net"), "--target", "loihi2", "--timesteps", "20"]
    code, r = _cli([*argv, "--inputs", str(tmp_path / "x.npy"), "-o", str(out)], capsys)
    assert code == 0, r
    assert "inputs.npz" in r["files"] and r["sample_inputs"] == 1
    return out


@pytest.mark.slow
def test_verify_tinynet_is_exact(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, r = _cli(["verify", str(tiny_artifact)], capsys)
    assert code == 0, r
    assert set(r) >= VERIFY_KEYS
    assert r["target"] == "loihi2" and r["samples"] == 1 and r["steps"] == 20
    assert r["mismatches"] == 0 and r["agreement"] == 1.0
    assert "from compile" in r["inputs"]
    assert r["values"]["output"]["lava_sum"] > 0  # the output spikes: a run that did something
    assert r["timing"]["lava_run_s"] > 0 and r["timing"]["interp_s"] > 0
    assert r["lines"][0].startswith(f"verified {tiny_artifact} (loihi2): 1 samples x 20 steps")  # the target's lines
    main(["verify", str(tiny_artifact)])  # the human-readable form prints the timing of both
    text = capsys.readouterr().out
    assert "0 mismatches" in text and "timing: Lava" in text and "interpreter" in text


@pytest.mark.slow
def test_verify_oxford_200_steps(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = 200
    x = spike_events_to_raster(np.load(data_dir / "netx/oxford/input.npy"), steps, 200)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "oxford"
    argv = ["compile", str(data_dir / "netx/oxford/network.net"), "--target", "loihi2", "--timesteps", str(steps)]
    assert _cli([*argv, "-o", str(out)], capsys)[0] == 0
    code, r = _cli(["verify", str(out), "--inputs", str(tmp_path / "x.npy"), "--layers"], capsys)
    assert code == 0, r
    assert r["mismatches"] == 0 and r["steps"] == steps and r["layers_compared"]
    assert set(r["values"]) >= {"output", "layer0", "layer1"}
    assert r["values"]["output"]["lava_sum"] > 100


@pytest.mark.slow
def test_tampered_weights_are_caught(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Weights edited after compile: refused by their sha256 before anything runs; with report.json's hash
    edited too, Lava runs them and the interpreter runs model.sir, and verify must still exit 1."""
    with np.load(tiny_artifact / "weights.npz") as w:
        arrays = {k: w[k] for k in w.files}
    arrays["layer2_synapse/weight"] = -arrays["layer2_synapse/weight"]
    np.savez(tiny_artifact / "weights.npz", **arrays)
    code, r = _cli(["verify", str(tiny_artifact)], capsys)
    assert code == 1 and "weights.npz: changed since spikec compile wrote it" in r["error"]
    assert "values" not in r  # refused before running anything
    report = json.loads((tiny_artifact / "report.json").read_text())
    report["sha256"]["weights.npz"] = sha256_file(tiny_artifact / "weights.npz")
    (tiny_artifact / "report.json").write_text(json.dumps(report))
    code, r = _cli(["verify", str(tiny_artifact)], capsys)
    assert code == 1 and r["error_type"] == "ArtifactMismatch"
    assert r["mismatches"] > 0 and r["values"]["output"]["mismatches"] > 0
    first = r["first_mismatches"][0]
    assert first["layer"] == "output" and first["lava"] != first["interp"]
    assert "mismatches" in r["error"] and "output step" in r["error"]


def test_missing_lava_env_names_make_lava_env(
    tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPIKEC_LAVA_PYTHON", str(tmp_path / "no" / "python"))
    code, r = _cli(["verify", str(tiny_artifact)], capsys)
    assert code == 1 and "make lava-env" in r["error"] and "SPIKEC_LAVA_PYTHON" in r["error"]
    monkeypatch.setenv("SPIKEC_LAVA_PYTHON", sys.executable)  # a Python without Lava
    code, r = _cli(["verify", str(tiny_artifact)], capsys)
    assert code == 1 and "make lava-env" in r["error"] and "no Lava" in r["error"]


def test_directory_without_report_is_refused(
    tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tiny_artifact / "report.json").unlink()
    code, r = _cli(["verify", str(tiny_artifact)], capsys)
    assert code == 1 and "report.json" in r["error"] and "spikec compile" in r["error"]
    code, r = _cli(["verify", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and "no such artifact directory" in r["error"]


def test_missing_artifact_file_and_bad_inputs(
    tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_artifact, broken)
    (broken / "run_lava.py").unlink()
    code, r = _cli(["verify", str(broken)], capsys)
    assert code == 1 and "run_lava.py: missing from the artifact" in r["error"]
    np.save(tmp_path / "half.npy", np.full((20, 1, 3, 16, 16), 0.5))
    code, r = _cli(["verify", str(tiny_artifact), "--inputs", str(tmp_path / "half.npy")], capsys)
    assert code == 1 and "integer" in r["error"]
    code, r = _cli(["verify", str(tiny_artifact), "--steps", "30"], capsys)  # 20 stored steps, then zeros
    assert code == 1 and "constant over the 30 steps" in r["error"]
    np.save(tmp_path / "wrong.npy", np.zeros((20, 1, 3, 8, 8)))
    code, r = _cli(["verify", str(tiny_artifact), "--inputs", str(tmp_path / "wrong.npy")], capsys)
    assert code == 1 and "(3, 16, 16)" in r["error"]
