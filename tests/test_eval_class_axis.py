"""``spikec eval`` of classifiers whose class scores keep trailing axes of 1: a head ending in a 1×1 Conv,
(N, 1000, 1, 1) as the ONNX zoo's ImageNet models export it, with no Flatten. Accuracy takes the argmax
over the flattened output; an output with several axes longer than 1 is refused with one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from spikec.cli import main

CLASSES = 1000
SHAPE = (3, 6, 6)


def _files(tmp: Path, model: torch.nn.Module) -> dict[str, Path]:
    """The model exported by torch.onnx (dynamo), 60 samples, and torch's own argmax as the labels."""
    data = np.random.default_rng(0).normal(size=(60, *SHAPE)).astype(np.float32)
    with torch.no_grad():
        scores = model.eval()(torch.from_numpy(data))
    files = {"model": tmp / "model.onnx", "data": tmp / "x.npy", "labels": tmp / "y.npy"}
    batch = torch.export.Dim("batch")
    torch.onnx.export(model, (torch.zeros(2, *SHAPE),), str(files["model"]), dynamo=True, verbose=False,
                      dynamic_shapes=({0: batch},))  # fmt: skip
    np.save(files["data"], data)
    np.save(files["labels"], scores.flatten(1).argmax(1).numpy())
    return files


@pytest.fixture(scope="module")
def conv_head(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Conv–ReLU–AvgPool–Conv 1×1: class scores (N, 1000, 1, 1)."""
    torch.manual_seed(0)
    head = [
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(6),
        torch.nn.Conv2d(16, CLASSES, 1),
    ]
    return _files(tmp_path_factory.mktemp("conv_head"), torch.nn.Sequential(*head))


def _eval(files: dict[str, Path], capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    args = ["eval", str(files["model"]), "--data", str(files["data"]), "--labels", str(files["labels"])]
    code = main([*args, "--calib", str(files["data"]), "--timesteps", "32", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_eval_takes_the_argmax_over_a_1x1_conv_head(
    conv_head: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    labels = np.load(conv_head["labels"])
    assert len(set(labels.tolist())) >= 4 and not np.any(labels == 0)  # an argmax over an axis of 1 scores 0 %
    code, r = _eval(conv_head, capsys)
    assert code == 0, r
    assert r["ann"]["accuracy"] == 1.0  # the labels are torch's argmax over the 1000 classes
    assert r["snn"]["accuracy"] >= 0.95  # measured 1.0


def test_eval_exact_takes_the_argmax_over_a_1x1_conv_head(
    conv_head: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, r = _eval(conv_head, capsys, "--method", "exact")
    assert code == 0, r
    assert r["ann"]["accuracy"] == 1.0
    assert r["qann"]["accuracy"] >= 0.95  # measured 0.983 (16 levels)
    assert r["snn"]["equal_to_qann_by_timesteps"]["32"] == 1.0
    assert r["snn"]["accuracy"] == r["qann"]["accuracy"]


@pytest.mark.parametrize("method", ["percentile", "exact"])
def test_eval_refuses_an_output_with_several_long_axes(
    method: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    files = _files(
        tmp_path, torch.nn.Sequential(torch.nn.Conv2d(3, 10, 3), torch.nn.ReLU(), torch.nn.Conv2d(10, 10, 1))
    )
    code, r = _eval(files, capsys, "--method", method)
    assert code == 1 and r["error_type"] == "InputError"
    assert "per-sample shape (10, 4, 4)" in r["error"] and "one class axis" in r["error"]
