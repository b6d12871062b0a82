"""Softmax/LogSoftmax at a classifier's output is decoding on the host (argmax unchanged, stated in the report);
inside the network it stops rate coding with an error naming each blocking node, its origin and the method
that converts it. Models from torch.onnx.export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spikec.cli import main
from spikec.convert import RateCodingBlocked, convert
from spikec.frontends.onnx import import_onnx as load_onnx
from spikec.interp import evaluate
from spikec.passes.output_softmax import output_softmax


class Classifier(nn.Module):
    def __init__(self, final: str) -> None:
        super().__init__()
        self.final = final
        self.conv, self.fc = nn.Conv2d(1, 6, 3), nn.Linear(6 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(torch.relu(self.conv(x)).flatten(1))
        return torch.log_softmax(y, 1) if self.final == "log" else torch.softmax(y, 1)


class SoftmaxInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.softmax(self.a(x), 1))


def _export(module: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    torch.manual_seed(0)
    torch.onnx.export(module.eval(), (torch.rand(1, *shape),), str(path), dynamo=False)
    return path


@pytest.mark.parametrize("final", ["softmax", "log"])
def test_a_final_softmax_is_left_to_the_host_and_the_argmax_is_unchanged(final: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    graph = load_onnx(_export(Classifier(final), (1, 8, 8), tmp_path / "m.onnx"))
    x = np.random.default_rng(0).random((64, 1, 8, 8))
    kind = "LogSoftmax" if final == "log" else "Softmax"
    result = output_softmax(graph)
    assert result.changed and [d["kind"] for d in result.decoded] == [kind]
    assert result.decoded[0]["origin"].startswith("onnx:") and kind not in {n.kind for n in result.graph.nodes.values()}
    before = next(iter(evaluate(graph, x).outputs.values()))
    after = next(iter(evaluate(result.graph, x).outputs.values()))
    assert np.array_equal(before.argmax(-1), after.argmax(-1)) and not np.allclose(before, after)

    snn, report = convert(graph, x, timesteps=32)
    assert [d["kind"] for d in report.host_decoding] == [kind]
    assert kind not in {n.kind for n in snn.nodes.values()}


def test_a_softmax_inside_the_network_names_the_node_its_origin_and_the_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _export(SoftmaxInside(), (8,), tmp_path / "mid.onnx")
    np.save(tmp_path / "c.npy", np.random.default_rng(0).random((16, 8)).astype(np.float32))
    named = r"Softmax x1 \(node 'Softmax' \(Softmax\) from onnx:/Softmax; --method exact"
    with pytest.raises(RateCodingBlocked, match=named):
        convert(load_onnx(model), np.load(tmp_path / "c.npy"), timesteps=8)
    out = tmp_path / "art"
    code = main(["compile", str(model), "--target", "loihi2", "--calib", str(tmp_path / "c.npy"), "--timesteps", "8",
                 "-o", str(out), "--json"])  # fmt: skip
    r = json.loads(capsys.readouterr().out)
    assert code == 1 and not out.exists(), r
    assert "onnx:/Softmax" in r["error"] and "--method exact" in r["error"] and "host-side" in r["error"]


def test_a_transformer_for_loihi_lists_each_blocking_kind_with_its_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch's own nn.TransformerEncoder: the error names the attention's MatMuls, Softmax and LayerNorms (not a
    Bias) and the method for each."""

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.enc, self.head = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False), nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.enc(x)[:, 0])

    model = _export(Encoder(), (6, 16), tmp_path / "tr.onnx")
    np.save(tmp_path / "c.npy", np.random.default_rng(0).random((16, 6, 16)).astype(np.float32))
    out = tmp_path / "art"
    code = main(["compile", str(model), "--target", "loihi2", "--calib", str(tmp_path / "c.npy"), "--timesteps", "8",
                 "-o", str(out), "--json"])  # fmt: skip
    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 1 and not out.exists()
    assert "MatMul x2" in error and "Softmax x1" in error and "LayerNorm x2" in error, error
    assert "self_attn" in error and "--method binary for Spikformer-style attention" in error
    assert "Bias" not in error
