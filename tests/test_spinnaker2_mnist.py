"""Issue 15's end-to-end check: the ONNX zoo MNIST CNN converted for SpiNNaker2 with the command a user types first,
run by PyNN on Brian2 on 100 MNIST images against the interpreter, and mapped by sPyNNaker on a virtual chip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikec.cli import main
from spikec.coding import encode
from spikec.data.mnist import load_mnist

STEPS, SAMPLES = 32, 100


@pytest.mark.slow
def test_mnist_conv_on_brian2_agrees_with_the_interpreter(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, _ = load_mnist(data_dir / "mnist")
    x = images[:, None].astype(np.float32)
    np.save(tmp_path / "calib.npy", x[:100])
    np.save(tmp_path / "spikes.npy", encode(x[9000 : 9000 + SAMPLES], STEPS, "poisson", scale=255.0, seed=0))
    out = tmp_path / "art"
    code = main(
        [
            "compile",
            str(data_dir / "onnx" / "mnist-conv" / "model.onnx"),
            "--target",
            "spinnaker2",
            "--calib",
            str(tmp_path / "calib.npy"),
            "--timesteps",
            str(STEPS),
            "--inputs",
            str(tmp_path / "spikes.npy"),
            "-o",
            str(out),
            "--json",
        ]
    )
    compiled = json.loads(capsys.readouterr().out)
    assert code == 0, compiled
    assert {"run_pynn.py", "network.json", "network.npz", "inputs.npz", "report.json"} <= set(compiled["files"])
    code = main(["verify", str(out), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0, r
    assert r["target"] == "spinnaker2" and r["samples"] == SAMPLES and r["steps"] == STEPS
    assert r["agreement"] >= 0.99 and r["mismatches"] == 0
    assert r["spike_count_differences"] == {
        "0": sum(p["neurons"] for p in r["populations"].values() if not p["readout"]) * SAMPLES
    }
    assert r["spynnaker"]["chips_used"] == 1 and r["spynnaker"]["cores_used"] > 0 and r["spikec_pes"] > 0
    print("\n" + "\n".join(r["lines"]))
