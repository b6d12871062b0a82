"""The short command for Loihi 2: the target chooses conversion settings its chip runs (reset to zero with a
threshold searched at --timesteps, OR max-pooling, a membrane readout, graded inputs from the calibration range),
each overridable, each recorded in report.json's ``conversion_settings`` with who chose it and why; a user's
value the chip cannot run is refused with what Loihi does instead (exit 1, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spikec.cli import main
from spikec.methods import METHODS, ConversionConflict, ConversionOptions
from spikec.plugins import load_target

STEPS = 32


class PlainCNN(nn.Module):
    """conv-relu-pool twice, a linear classifier and the softmax every zoo classifier ends with."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.pool, self.fc = nn.MaxPool2d(2), nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.c1(x)))
        x = self.pool(torch.relu(self.c2(x)))
        return torch.softmax(self.fc(x.flatten(1)), 1)


@pytest.fixture(scope="module")
def plain_cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The CNN exported by torch.onnx.export, and 64 calibration images in [0, 1)."""
    folder = tmp_path_factory.mktemp("plain")
    torch.manual_seed(0)
    torch.onnx.export(PlainCNN().eval(), (torch.rand(1, 1, 16, 16),), str(folder / "m.onnx"), dynamo=False)
    np.save(folder / "c.npy", np.random.default_rng(0).random((64, 1, 16, 16)).astype(np.float32))
    return folder / "m.onnx", folder / "c.npy"


def _compile(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["compile", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_without_a_target_spikecs_defaults_apply_and_are_recorded() -> None:
    method = METHODS["percentile"]
    options, record = method.settle(ConversionOptions(timesteps=8))
    assert (options.reset, options.init, options.threshold, options.maxpool) == ("subtract", 0.5, "1", "rate")
    assert {r["by"] for r in record.values()} == {"spikec"}
    zero, record = method.settle(ConversionOptions(timesteps=8, reset="zero"))
    assert (zero.init, zero.threshold) == (0.0, "auto") and record["reset"]["by"] == "user"


def test_the_target_chooses_and_the_user_overrides() -> None:
    target, method = load_target("loihi2"), METHODS["percentile"]
    samples = np.random.default_rng(0).random((8, 1, 4, 4))
    given = ConversionOptions(timesteps=8, threshold="0.9")
    options, record = method.settle(given, target.conversion_defaults("percentile", samples, given), "loihi2")
    assert (options.reset, options.maxpool, options.encoding, options.threshold) == ("zero", "spikes", "graded", "0.9")
    assert record["reset"]["by"] == "target loihi2" and "resets v to 0" in record["reset"]["reason"]
    assert record["threshold"] == {"value": "0.9", "by": "user"}
    pixels = np.round(samples * 255)  # integer samples enter as graded spikes of their own size
    pixels[0, 0, 0, 0] = 255
    chosen = target.conversion_defaults("percentile", pixels, given)
    assert chosen.settings["encoding"].value == "direct" and chosen.pass_options["quantize.input_max"].value == 255
    with pytest.raises(ConversionConflict, match=r"--reset subtract: target 'loihi2' cannot run it: Lava's LIF resets"):
        method.settle(ConversionOptions(timesteps=8, reset="subtract"), chosen, "loihi2")


def test_an_override_the_chip_cannot_run_exits_1_and_writes_nothing(
    plain_cnn: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, calib = plain_cnn
    out = tmp_path / "art"
    base = [str(model), "--target", "loihi2", "--calib", str(calib), "--timesteps", "8", "-o", str(out)]
    code, r = _compile(capsys, *base, "--reset", "subtract")
    assert code == 1 and not out.exists(), r
    assert "Lava's LIF resets v to 0" in r["error"] and "Leave --reset out (the target chooses zero)" in r["error"]
    code, r = _compile(capsys, *base, "--maxpool", "rate")
    assert code == 1 and "OR layer" in r["error"] and not out.exists(), r
    code, r = _compile(capsys, *base, "--encoding", "direct")
    assert code == 1 and "not integers" in r["error"] and not out.exists(), r


@pytest.mark.slow
def test_the_short_command_compiles_a_torch_cnn_with_softmax_and_verifies_in_lava(
    plain_cnn: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, calib = plain_cnn
    out = tmp_path / "art"
    code, r = _compile(capsys, str(model), "--target", "loihi2", "--calib", str(calib), "--timesteps", str(STEPS),
                       "-o", str(out))  # fmt: skip
    assert code == 0, r
    report = json.loads((out / "report.json").read_text())
    settings = report["conversion_settings"]
    assert {k: settings[k]["value"] for k in ("reset", "init", "maxpool", "encoding", "decoding")} == {
        "reset": "zero", "init": 0.0, "maxpool": "spikes", "encoding": "graded", "decoding": "membrane",
    }  # fmt: skip
    assert all(settings[k]["by"] == "target loihi2" and settings[k]["reason"] for k in ("reset", "maxpool"))
    assert settings["threshold"]["value"] == "auto" and f"{report['threshold']:g}" in report["threshold_search"]
    assert settings["threshold"]["chosen"] == report["threshold"] and "agreement" in settings["threshold"]["reason"]
    assert settings["quantize.input_max"]["value"] == 255 and settings["quantize.timesteps"]["value"] == STEPS
    assert any("Softmax" in note and "host" in note and "argmax unchanged" in note for note in report["host_side"])
    assert report["host_side"] == r["host_side"]

    code, v = 0, {}
    code = main(["verify", str(out), "--json"])
    v = json.loads(capsys.readouterr().out)
    assert code == 0 and v["mismatches"] == 0 and v["compared"] > 0, v


def test_eval_with_a_target_converts_with_its_choices(
    plain_cnn: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, calib = plain_cnn
    x = np.random.default_rng(1).random((24, 1, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros(24, np.int64))
    argv = ["eval", str(model), "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
            "--calib", str(calib), "--timesteps", "8", "--threshold", "1", "--json"]  # fmt: skip
    assert main([*argv, "--target", "loihi2"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["settings"]["reset"] == "zero" and r["settings"]["maxpool"] == "spikes"
    assert r["conversion_settings"]["reset"]["by"] == "target loihi2"
    assert r["conversion_settings"]["threshold"] == {"value": "1", "by": "user"}
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["settings"]["reset"] == "subtract" and r["conversion_settings"]["reset"]["by"] == "spikec"


def test_a_wide_first_layer_gets_fewer_graded_input_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ResNet's 7×7×3 stem (147 inputs per neuron): at 255 input levels the worst-case input sum leaves its weights
    a handful of levels in Lava's 24-bit u and the quantizer refuses it; the target feeds fewer levels (a larger
    input scale, recorded with its reason), and a user's own --input-scale is used as given."""
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()  # fmt: skip
    model, calib = tmp_path / "stem.onnx", tmp_path / "c.npy"
    torch.onnx.export(stem, (torch.randn(1, 3, 32, 32),), str(model), dynamo=False)
    x = np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
    np.save(calib, x)
    common = ["compile", str(model), "--target", "loihi2", "--calib", str(calib), "--timesteps", "16", "--json"]
    assert main([*common, "-o", str(tmp_path / "art")]) == 0, capsys.readouterr()
    report = json.loads(capsys.readouterr().out)
    chosen = report["conversion_settings"]["input_scale"]
    assert chosen["by"] == "target loihi2" and "147 inputs per neuron" in chosen["reason"]
    assert chosen["value"] == pytest.approx(float(np.abs(x).max()) * 255 / 83)
    assert report["conversion_settings"]["quantize.input_max"]["value"] == 83
    peak = str(float(np.abs(x).max()))
    assert main([*common, "--input-scale", peak, "-o", str(tmp_path / "full")]) == 1
    assert "quantize{target=loihi2}" in json.loads(capsys.readouterr().out)["error"]
    assert not (tmp_path / "full").exists()
