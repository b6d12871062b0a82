"""Models for the report tests (tests/test_report_*.py), written by torch's own ONNX exporter from torch's own
modules, and their calibration images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def export(net: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """``net`` (eval mode) exported by ``torch.onnx.export(dynamo=True)`` to ``path``."""
    torch.onnx.export(net.eval(), (example,), str(path), dynamo=True)
    return path


def small_cnn(folder: Path) -> tuple[Path, Path]:
    """A conv - ReLU - max-pool - conv - ReLU - linear CNN on 1×12×12 images, and 16 calibration images."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 4),
    )
    model = export(net, torch.rand(1, 1, 12, 12), folder / "cnn.onnx")
    calib = folder / "calib.npy"
    np.save(calib, np.random.default_rng(0).random((16, 1, 12, 12)).astype(np.float32))
    return model, calib
