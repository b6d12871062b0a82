"""``fuse`` folds a zero Pad into the Conv after it (TF-style "same" padding, ONNX asymmetric pads): exact, and
the Pad no Loihi lowering takes is gone — Hugging Face's MobileNetV2 pads its strided convs this way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from spikec.frontends.onnx import import_onnx
from spikec.interp import evaluate
from spikec.passes.fuse import fuse_graph


class PaddedConv(nn.Module):
    """``F.pad`` with uneven sides, then a strided, dilated conv with its own padding."""

    def __init__(self, pads: tuple[int, int, int, int], dilation: int, padding: int) -> None:
        super().__init__()
        self.pads = pads
        self.conv = nn.Conv2d(3, 4, 3, stride=2, dilation=dilation, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(nn.functional.pad(x, self.pads)))


@pytest.mark.parametrize(
    ("pads", "dilation", "padding", "folded"),
    [
        ((0, 1, 0, 1), 1, 0, True),  # TF "same" for a stride-2 3x3 conv on an even input
        ((2, 0, 1, 3), 1, 1, True),
        ((0, 2, 2, 0), 2, 0, True),  # widened sides are multiples of the dilation
        ((0, 1, 0, 1), 2, 0, False),  # one side short by 1 of a dilation-2 tap: the Pad stays
    ],
)
def test_a_zero_pad_before_a_conv_folds_exactly(
    tmp_path: Path, pads: tuple[int, int, int, int], dilation: int, padding: int, folded: bool
) -> None:
    torch.manual_seed(0)
    path = tmp_path / "m.onnx"
    torch.onnx.export(PaddedConv(pads, dilation, padding).eval(), (torch.randn(1, 3, 10, 9),), str(path),
                      dynamo=False, input_names=["x"])  # fmt: skip
    graph, _ = fuse_graph(import_onnx(str(path)))
    assert ("Pad" not in {n.kind for n in graph.nodes.values()}) == folded
    x = np.random.default_rng(1).normal(size=(2, 3, 10, 9)).astype(np.float32)
    expected = np.concatenate([ort.InferenceSession(str(path)).run(None, {"x": x[i : i + 1]})[0] for i in range(2)])
    got = evaluate(graph, {graph.inputs[0]: x}).outputs[graph.outputs[0]]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
