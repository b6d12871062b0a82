"""The cached benchmark ViT (benchmarks/vit): its ONNX file imports, and spikec's interpreter computes
what onnxruntime does on held-out MNIST images; the cached state_dict is the same model in torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from spikec.data.mnist import load_mnist
from spikec.frontends.onnx import import_onnx
from spikec.interp import evaluate
from spikec.ir import Graph

REPO = Path(__file__).resolve().parents[1]
VIT = REPO / "benchmarks" / "vit"
N_IMAGES = 16


@pytest.fixture(scope="module")
def images(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_mnist(data_dir / "mnist")
    held_out = slice(8000, 8000 + N_IMAGES)  # the benchmark evaluates on the last 2,000 images
    return (x[held_out, None] / np.float32(255)).astype(np.float32), y[held_out]


@pytest.fixture(scope="module")
def reference(images: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(VIT / "vit_mnist.onnx"), providers=["CPUExecutionProvider"])
    x, _ = images
    return np.concatenate([session.run(None, {"image": x[i : i + 1]})[0] for i in range(len(x))])


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_onnx(VIT / "vit_mnist.onnx")


def test_imports_as_a_transformer(graph: Graph) -> None:
    assert graph.types[graph.inputs[0]] == (1, 28, 28)  # batch 1 at export: axis 0 is the batch axis
    kinds = [n.kind for n in graph.nodes.values()]
    assert kinds.count("Softmax") == 4 and kinds.count("LayerNorm") == 9  # GELU: Erf form at opset 18
    assert graph.types[graph.outputs[0]] == (10,)


def test_spikec_matches_onnxruntime(graph: Graph, images: tuple[np.ndarray, np.ndarray], reference: np.ndarray) -> None:
    x, labels = images
    got = evaluate(graph, x).outputs[graph.outputs[0]]
    np.testing.assert_array_equal(got.argmax(1), reference.argmax(1))
    scale = np.abs(reference).max(axis=1, keepdims=True)
    assert np.all(np.abs(got - reference) <= 1e-4 * scale)
    assert (got.argmax(1) == labels).mean() >= 0.8  # a trained model, not random weights


def test_the_state_dict_is_the_same_model(images: tuple[np.ndarray, np.ndarray], reference: np.ndarray) -> None:
    spec = importlib.util.spec_from_file_location("vit_model", VIT / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.mnist_vit()
    model.load_state_dict(torch.load(VIT / "vit_mnist.pt", weights_only=True))
    with torch.no_grad():
        logits = model.eval()(torch.as_tensor(images[0])).numpy()
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4)
