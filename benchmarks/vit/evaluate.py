"""Float accuracy of the cached benchmark ViT on the 2,000 held-out images, three ways.

torch (the state_dict in ``vit_mnist.pt``), onnxruntime (``vit_mnist.onnx``) and spikec's numpy
interpreter on the ONNX model imported by ``spikec.frontends.onnx.import_onnx``. The three must
agree: same predictions, logits within 1e-4 of each image's logit range.

    .venv/bin/python benchmarks/vit/evaluate.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from benchmarks.vit.data import EVAL, mnist_split  # noqa: E402

WEIGHTS = HERE / "vit_mnist.pt"
ONNX = HERE / "vit_mnist.onnx"


def torch_logits(x: np.ndarray) -> np.ndarray:
    import torch

    from benchmarks.vit.model import mnist_vit

    model = mnist_vit()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    with torch.no_grad():
        return model.eval()(torch.as_tensor(x)).numpy()


def onnxruntime_logits(x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def spikec_logits(x: np.ndarray, chunk: int = 250) -> np.ndarray:
    from spikec.frontends.onnx import import_onnx
    from spikec.interp import evaluate

    graph = import_onnx(ONNX)
    out = graph.outputs[0]
    return np.concatenate([evaluate(graph, x[i : i + chunk]).outputs[out] for i in range(0, len(x), chunk)])


def evaluate_all() -> dict[str, Any]:
    x, y = mnist_split(EVAL)
    result: dict[str, Any] = {"images": len(x)}
    logits = {}
    for name, fn in (("torch", torch_logits), ("onnxruntime", onnxruntime_logits), ("spikec", spikec_logits)):
        start = time.perf_counter()
        logits[name] = fn(x)
        result[f"{name}_accuracy"] = float((logits[name].argmax(1) == y).mean())
        result[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
    scale = np.abs(logits["torch"]).max(axis=1, keepdims=True)
    for name in ("onnxruntime", "spikec"):
        result[f"{name}_max_logit_error"] = float((np.abs(logits[name] - logits["torch"]) / scale).max())
        result[f"{name}_same_predictions"] = bool(np.array_equal(logits[name].argmax(1), logits["torch"].argmax(1)))
    return result


if __name__ == "__main__":
    print(json.dumps(evaluate_all(), indent=2))
