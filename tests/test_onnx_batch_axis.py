"""The batch axis tracked through models torch writes: the sequence-first ``nn.MultiheadAttention`` (the batch
moves to axis 1, merges with the heads and the tokens, and splits out again), static batches above 1, a
dynamic batch on axis 1, token ids looked up in an embedding on the host. Every model is exported by torch's
own exporters and compared with onnxruntime; the commands are the ones a user types first.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from spikec.cli import main
from spikec.errors import FrontendError
from spikec.frontends.onnx import import_onnx
from spikec.interp import evaluate
from spikec.ir import TokenInput

E, HEADS, L, VOCAB = 16, 2, 5, 40


class SelfAttention(nn.Module):
    """torch's own attention block, batch first or sequence first, with a causal mask."""

    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(E, HEADS, batch_first=batch_first)
        self.register_buffer("mask", torch.triu(torch.ones(L, L, dtype=torch.bool), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, attn_mask=self.mask, need_weights=False)[0]


class TinyBert(nn.Module):
    """Token, position and segment embeddings, a LayerNorm and a post-norm encoder layer, then a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, E)
        self.positions = nn.Embedding(L, E)
        self.norm = nn.LayerNorm(E)
        self.encoder = nn.TransformerEncoderLayer(E, HEADS, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(E, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1])
        x = self.norm(self.tokens(ids) + self.positions(positions))
        return self.head(self.encoder(x)[:, 0])


def _export(module: nn.Module, example: torch.Tensor, path: Path, **options: Any) -> Path:
    torch.manual_seed(0)
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), **options)
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("exports")
    seq_first, batch_first, bert = SelfAttention(False), SelfAttention(True), TinyBert()
    x = torch.randn(2, L, E)
    ids = torch.randint(0, VOCAB, (1, L))
    batch = torch.export.Dim("batch")
    return {
        "seq-first dynamo": _export(seq_first, x.transpose(0, 1), root / "sf.onnx", dynamo=True),
        "seq-first dynamic batch": _export(
            seq_first, x.transpose(0, 1), root / "sf_dyn.onnx", dynamo=True, dynamic_shapes=({1: batch},)
        ),
        "batch-first static batch 2": _export(batch_first, x, root / "bf2.onnx", dynamo=False),
        "batch-first dynamic batch": _export(
            batch_first, x, root / "bf_dyn.onnx", dynamo=True, dynamic_shapes=({0: batch},)
        ),
        "bert dynamo": _export(bert, ids, root / "bert.onnx", dynamo=True),
        "bert torchscript": _export(bert, ids, root / "bert_ts.onnx", dynamo=False),
    }


def _onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (feed,) = session.get_inputs()
    return np.asarray(session.run(None, {feed.name: x})[0])


def _spikec(path: Path, x: np.ndarray, **options: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = import_onnx(path, **options)
    (name,) = graph.inputs
    (out,) = graph.outputs
    return evaluate(graph, {name: x}).outputs[out], graph.types[name]


def test_sequence_first_attention_keeps_one_sample_per_row(exports: dict[str, Path]) -> None:
    """Static (L, 2, E): axis 0 (L) would mix its entries in the attention, so the whole tensor is one sample;
    ``--batch-axis 1`` says where the batch is, and then each of the two samples is one row."""
    x = np.random.default_rng(1).normal(size=(L, 2, E)).astype(np.float32)
    want = _onnxruntime(exports["seq-first dynamo"], x)
    got, shape = _spikec(exports["seq-first dynamo"], x[None])
    assert shape == (L, 2, E)
    np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-6)
    got, shape = _spikec(exports["seq-first dynamo"], x.transpose(1, 0, 2), batch_axis=1)
    assert shape == (L, E)
    np.testing.assert_allclose(got, want.transpose(1, 0, 2), rtol=1e-4, atol=1e-6)


def test_a_dynamic_batch_on_axis_1_is_found(exports: dict[str, Path]) -> None:
    x = np.random.default_rng(2).normal(size=(L, 3, E)).astype(np.float32)
    want = _onnxruntime(exports["seq-first dynamic batch"], x)
    got, shape = _spikec(exports["seq-first dynamic batch"], x.transpose(1, 0, 2))
    assert shape == (L, E)
    np.testing.assert_allclose(got, want.transpose(1, 0, 2), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", ["batch-first static batch 2", "batch-first dynamic batch"])
def test_batch_first_attention_with_a_batch_above_one(exports: dict[str, Path], case: str) -> None:
    x = np.random.default_rng(3).normal(size=(2, L, E)).astype(np.float32)
    want = _onnxruntime(exports[case], x)
    got, shape = _spikec(exports[case], x)
    assert shape == (L, E)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_an_axis_that_is_not_there_names_the_input_and_the_option(exports: dict[str, Path]) -> None:
    with pytest.raises(FrontendError, match=r"--batch-axis 3, but input '.*' has only 3 axes"):
        import_onnx(exports["seq-first dynamo"], batch_axis=3)


def test_an_op_that_mixes_samples_is_named(exports: dict[str, Path]) -> None:
    """Forced onto axis 0 (the tokens), the attention's Softmax over them mixes "samples": the error names
    the node and how to choose another axis."""
    with pytest.raises(FrontendError, match=r"ONNX node '.*' \(\w+\): .*mixes samples.*--batch-axis"):
        import_onnx(exports["seq-first dynamic batch"], batch_axis=0, input_shapes={"x": [L, 3, E]})


# -- token ids ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["bert dynamo", "bert torchscript"])
def test_token_ids_become_a_host_side_input_encoder(exports: dict[str, Path], case: str) -> None:
    ids = np.random.default_rng(4).integers(0, VOCAB, size=(1, L)).astype(np.int64)
    want = _onnxruntime(exports[case], ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = import_onnx(exports[case])
    (name,) = graph.inputs
    node = graph.nodes[name]
    assert isinstance(node, TokenInput) and node.table.shape == (VOCAB, E) and node.feed_shape() == (L,)
    got = evaluate(graph, {name: ids}).outputs[graph.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_token_ids_from_the_command_line(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(exports["bert dynamo"])
    ids = np.random.default_rng(5).integers(0, VOCAB, size=(4, L)).astype(np.int64)
    np.save(tmp_path / "ids.npy", ids)
    code, imported = _cli(["import", model, "-o", str(tmp_path / "bert.sir")], capsys)
    assert code == 0 and "embedding lookup of token ids" in imported["host_side"][0]
    assert list(imported["inputs"].values()) == [[L]]
    code, ran = _cli(["run", model, "--input", str(tmp_path / "ids.npy"), "-o", str(tmp_path / "y.npz")], capsys)
    assert code == 0 and ran["batch"] == 4
    (out,) = np.load(tmp_path / "y.npz").values()
    want = np.concatenate([_onnxruntime(exports["bert dynamo"], row[None]) for row in ids])
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-6)


def test_token_ids_out_of_range_name_the_input_and_the_range(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "ids.npy", np.full((2, L), VOCAB + 3, np.int64))
    code, report = _cli(["run", str(exports["bert dynamo"]), "--input", str(tmp_path / "ids.npy")], capsys)
    assert code == 1
    range_error = r"input '\w+' holds token ids 43\.\.43, outside the embedding table's range 0\.\.39"
    assert re.search(range_error, report["error"])
