"""One converted model, two chips: a torch-exported CNN compiled for loihi2 and for spinnaker2 from one command
line each (the same calibration samples and 0/1 input spikes), both artifacts verified on their vendor software."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spikec.cli import main

STEPS = 16


@pytest.mark.slow
def test_same_model_verifies_on_lava_and_on_brian2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 10),
    )
    torch.onnx.export(model.eval(), (torch.rand(1, 1, 8, 8),), str(tmp_path / "m.onnx"), dynamo=True)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", (rng.random((64, 1, 8, 8)) < 0.4).astype(np.float32))  # binary images
    np.save(tmp_path / "spikes.npy", (rng.random((STEPS, 4, 1, 8, 8)) < 0.4).astype(np.float32))
    results = {}
    for target in ("loihi2", "spinnaker2"):
        out = tmp_path / target
        argv = ["compile", str(tmp_path / "m.onnx"), "--target", target, "--calib", str(tmp_path / "calib.npy")]
        argv += ["--timesteps", str(STEPS), "--inputs", str(tmp_path / "spikes.npy"), "-o", str(out)]
        assert main(argv) == 0, capsys.readouterr().err
        capsys.readouterr()
        assert main(["verify", str(out), "--json"]) == 0
        results[target] = json.loads(capsys.readouterr().out)
    for target, r in results.items():
        assert r["target"] == target and r["samples"] == 4 and r["steps"] == STEPS
        assert r["mismatches"] == 0 and r["agreement"] == 1.0
    assert results["spinnaker2"]["spynnaker"]["cores_used"] > 0
