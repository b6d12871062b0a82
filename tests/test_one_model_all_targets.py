"""One model, written by torch's ONNX exporter, compiled from the same calibration images for every chip target
that emits an artifact (loihi2: converted to an SNN, quantized, run in Lava; akida: quantized as an ANN, run in
akida's engine; spinnaker2: converted, int8, run in PyNN on Brian2), each artifact verified against the
interpreter with ``spikec verify``: 0 mismatches. A new chip target joins ``TARGETS`` with the compile options
it needs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spikec.cli import main

TARGETS = {
    "loihi2": ["--timesteps", "8"],
    "akida": [],
    "spinnaker2": ["--timesteps", "8"],
}


@pytest.mark.slow
def test_one_torch_model_compiles_and_verifies_on_every_chip_target(tmp_path: Path, capsys) -> None:
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AvgPool2d(6), torch.nn.Flatten(), torch.nn.Linear(8, 4),
    ).eval()  # fmt: skip
    model = tmp_path / "cnn.onnx"
    torch.onnx.export(net, (torch.rand(1, 1, 12, 12) * 255,), str(model), dynamo=True)
    calib = tmp_path / "calib.npy"
    np.save(calib, (np.random.default_rng(0).random((32, 1, 12, 12)) * 255).round().astype(np.float32))
    verified = {}
    for target, options in TARGETS.items():
        out = tmp_path / target
        argv = ["compile", str(model), "--target", target, "--calib", str(calib), *options, "-o", str(out), "--json"]
        assert main(argv) == 0, capsys.readouterr()
        capsys.readouterr()
        code = main(["verify", str(out), "--samples", "2", "--json"])
        verified[target] = json.loads(capsys.readouterr().out)
        assert code == 0, verified[target]
    assert {t: (r["target"], r["mismatches"], r["samples"]) for t, r in verified.items()} == {
        t: (t, 0, 2) for t in TARGETS
    }
