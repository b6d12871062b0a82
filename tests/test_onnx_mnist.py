"""A real model: the ONNX model zoo MNIST CNN (../shared/data/onnx/mnist-conv) against its stored
output and against onnxruntime on MNIST test images; and the IDX reader (spikec.data.mnist)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from spikec.cli import main
from spikec.data.mnist import load_mnist, read_idx
from spikec.errors import InputError
from spikec.frontends.onnx import import_onnx
from spikec.frontends.onnx.conformance import load_case
from spikec.interp import evaluate
from spikec.ir import Graph

N_IMAGES = 100


@pytest.fixture(scope="module")
def model_dir(data_dir: Path) -> Path:
    return data_dir / "onnx" / "mnist-conv"


@pytest.fixture(scope="module")
def graph(model_dir: Path) -> Graph:
    return import_onnx(model_dir / "model.onnx")


@pytest.fixture(scope="module")
def images(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    x, labels = load_mnist(data_dir / "mnist")
    return x[:N_IMAGES, None].astype(np.float32), labels[:N_IMAGES]  # raw 0..255 pixels, (N, 1, 28, 28)


def test_imports_as_the_expected_layers(graph: Graph) -> None:
    assert graph.types[graph.inputs[0]] == (1, 28, 28)  # (1, 1, 28, 28): the batch axis is stripped
    kinds = [n.kind for n in graph.nodes.values()]
    assert kinds == [
        "Input", "Conv", "Bias", "ReLU", "MaxPool", "Conv", "Bias", "ReLU", "MaxPool", "Reshape", "Dense", "Bias",
        "Output",
    ]  # fmt: skip
    assert graph.nodes["Convolution28"].padding == (2, 2)  # SAME_UPPER, 5x5
    assert all(n.origin.startswith("onnx:") for n in graph.nodes.values())


def test_matches_the_stored_output(model_dir: Path, graph: Graph) -> None:
    _, inputs, outputs = load_case(model_dir)
    (x,) = inputs.values()
    (want,) = outputs.values()
    assert x is not None and want is not None and x.shape == (1, 1, 28, 28)
    got = evaluate(graph, x).outputs[graph.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_matches_onnxruntime_on_mnist(model_dir: Path, graph: Graph, images: tuple[np.ndarray, np.ndarray]) -> None:
    x, labels = images
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    want = np.concatenate([session.run(None, {"Input3": x[i : i + 1]})[0] for i in range(len(x))])
    got = evaluate(graph, x).outputs[graph.outputs[0]]
    assert got.shape == want.shape == (N_IMAGES, 10)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    scale = np.abs(want).max(axis=1, keepdims=True)  # logits within 1e-4 of each image's logit range
    assert np.all(np.abs(got - want) <= 1e-4 * scale)
    assert (got.argmax(1) == labels).mean() >= 0.97


def test_cli_runs_the_onnx_file(
    model_dir: Path, images: tuple[np.ndarray, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, labels = images
    np.save(tmp_path / "x.npy", x[:10])
    code = main(["run", str(model_dir / "model.onnx"), "--input", str(tmp_path / "x.npy"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    (out,) = report["outputs"].values()
    assert out["shape"] == [10, 10] and np.mean(np.array(out["argmax"]) == labels[:10]) >= 0.9


# -- the IDX reader ----------------------------------------------------------------------------------------
def test_load_mnist_reads_the_test_set(data_dir: Path) -> None:
    x, y = load_mnist(data_dir / "mnist")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9] and x.max() == 255


def test_idx_reader_handles_plain_files_and_refuses_broken_ones(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    (tmp_path / "a.idx").write_bytes(header + data.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), data)
    with gzip.open(tmp_path / "a.idx.gz", "wb") as fh:
        fh.write(header + data.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), data)
    (tmp_path / "short.idx").write_bytes(header + data.tobytes()[:-1])
    with pytest.raises(InputError, match="header says"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "bad.idx").write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    with pytest.raises(InputError, match="no t10k-images"):
        load_mnist(tmp_path)
