"""Hugging Face ``transformers`` CNNs (built from config objects, random weights, exported by torch's
TorchScript exporter at batch 1, as in the model corpus) compiled for Loihi 2 with the short command.
MobileNetV2 pads its strided convs TF-style with an explicit ``Pad`` (``fuse`` folds it into the conv)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from corpus.export import VARIANTS, export
from corpus.models import MODELS

from spikec.cli import main


def _compile(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    model = MODELS[name]
    export(model, VARIANTS["torchscript-b1"], tmp_path / "model.onnx")
    np.save(tmp_path / "calib.npy", model.inputs(8, seed=2))
    out = tmp_path / "art"
    code = main(["compile", str(tmp_path / "model.onnx"), "--target", "loihi2", "--calib", str(tmp_path / "calib.npy"),
                 "--timesteps", "32", "-o", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return out


@pytest.mark.slow
def test_hf_mobilenet_v2_compiles_for_loihi_with_the_short_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _compile("hf-mobilenetv2", tmp_path, capsys)
    report = json.loads((out / "report.json").read_text())
    assert report["artifact"]["core_map"]["system"] == "Oheo Gulch (1 chip)"
    processes = {n["process"] for n in json.loads((out / "network.json").read_text())["nodes"]}
    assert "Conv" in processes


@pytest.mark.slow
def test_hf_resnet_compiles_for_loihi_and_verifies_in_lava(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _compile("hf-resnet", tmp_path, capsys)
    code = main(["verify", str(out), "--samples", "1", "--steps", "40", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0 and r["mismatches"] == 0 and r["compared"] > 1000, r
