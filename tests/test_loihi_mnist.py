"""The issue's end-to-end check: the ONNX zoo MNIST CNN, converted, quantized to Loihi 2 and emitted,
runs in Lava (fixed_pt) identically to the interpreter on 10 images × 32 steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikec.cli import main
from spikec.data.mnist import load_mnist

STEPS = 32


@pytest.mark.slow
def test_mnist_conv_compiles_for_loihi2_and_verifies_in_lava(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, _ = load_mnist(data_dir / "mnist")
    x = images[:, None].astype(np.float32)  # the model zoo CNN takes raw 0..255 pixels
    np.save(tmp_path / "calib.npy", x[:100])
    held = np.broadcast_to(x[9000:9010], (STEPS, 10, 1, 28, 28))  # direct input: pixels held every step
    np.save(tmp_path / "inputs.npy", held)
    out = tmp_path / "mnist_loihi"
    options = ["quantize.input_max=255", "quantize.reset_to_zero=true", f"quantize.timesteps={STEPS}"]
    code = main([
        "compile", str(data_dir / "onnx" / "mnist-conv" / "model.onnx"), "--target", "loihi2",
        "--calib", str(tmp_path / "calib.npy"), "--timesteps", str(STEPS), "--maxpool", "spikes",
        *[a for o in options for a in ("--pass-option", o)], "--inputs", str(tmp_path / "inputs.npy"),
        "-o", str(out), "--json",
    ])  # fmt: skip
    compiled = json.loads(capsys.readouterr().out)
    assert code == 0, compiled
    assert {"run_lava.py", "weights.npz", "network.json", "core_map.json", "report.json", "inputs.npz"} <= set(
        compiled["files"]
    )
    report = json.loads((out / "report.json").read_text())
    assert [step["status"] for step in report["pipeline"]] == ["ran"] * 7
    core_map = json.loads((out / "core_map.json").read_text())
    assert core_map["cores_used"] >= core_map["lower_bound"] >= 1

    code = main(["verify", str(out), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0, r
    assert r["target"] == "loihi2" and r["samples"] == 10 and r["steps"] == STEPS
    assert r["mismatches"] == 0 and r["agreement"] == 1.0
    # the readout's u and v are compared too, not only its (silent) output spikes
    assert any(name.endswith(".v") for name in r["values"]) and r["compared"] > 3 * STEPS * 10 * 10 - 1
    print(f"\nmnist-conv on Loihi 2 (Lava fixed_pt vs interpreter), 10 images x {STEPS} steps: {r['timing']}")
