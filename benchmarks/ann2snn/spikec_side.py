"""spikec's side of the ANN→SNN benchmark: the same models, images, split and T as peers.py.

Imports both models through spikec's own front ends (mnist-conv from ONNX; the sinabs net from
PyTorch via ``from_torch``), converts with ``spikec.convert.convert`` calibrated on MNIST test
images [0, 1000), and evaluates on [1000, 10000) for T ∈ {4, 8, 16, 32, 64}, read from one 64-step
run per configuration (as peers.py does). Writes results/spikec.json; prints a table and the
per-layer drift of the worst T. Measures and prints; asserts nothing.

    .venv/bin/python benchmarks/ann2snn/spikec_side.py [--eval 9000] [--backend torch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import spikec
from spikec.compare import compare
from spikec.convert import convert
from spikec.data.mnist import load_mnist
from spikec.frontends.torch_import import from_torch
from spikec.ir.graph import Graph
from spikec.models import load_model

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
TIMESTEPS = (4, 8, 16, 32, 64)
CONFIGS: dict[str, dict[str, Any]] = {
    "spikec": {},  # defaults: layer-wise 99.9th percentile, θ/2 init, reset by subtraction, direct input
    "spikec-channel": {"granularity": "channel"},
}


def sinabs_graph() -> Graph:
    import torch

    spec = importlib.util.spec_from_file_location("sinabs_mnist", REPO / "examples" / "sinabs_mnist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build()
    state = torch.load(DATA / "sinabs" / "mnist_params.pt", weights_only=True, map_location="cpu")
    net.load_state_dict(state)
    return from_torch(net, torch.zeros(1, 1, 28, 28))


MODELS = {
    "onnx-mnist-conv": lambda: load_model(DATA / "onnx" / "mnist-conv" / "model.onnx"),
    "sinabs-mnist": sinabs_graph,
}


def worst_t_drift(ann: Graph, calib: np.ndarray, data: np.ndarray, truth: np.ndarray, args: Any) -> dict[str, Any]:
    """Per-layer drift of the default conversion at the smallest T (where accuracy is lowest)."""
    t = min(TIMESTEPS)
    snn, report = convert(ann, calib, timesteps=t, backend=args.backend)
    result = compare(ann, snn, report, data, truth, backend=args.backend, batch_size=500)
    for layer in result.layers:
        print(f"    T={t} {layer.name:<22} drift {layer.drift}  error {layer.error}  rate {layer.rate:.3f}")
    return {"T": t, "accuracy": result.snn_accuracy, "layers": [vars(layer) for layer in result.layers]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval", type=int, default=9000, help="evaluation images after the 1,000 calibration ones")
    parser.add_argument("--backend", default="torch", choices=["numpy", "torch"])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    images, labels = load_mnist(DATA / "mnist")
    x = images.reshape(-1, 1, 28, 28).astype(np.float32)
    calib, data, truth = x[:1000], x[1000 : 1000 + args.eval], labels[1000 : 1000 + args.eval]
    rows: list[dict[str, Any]] = []
    for model in args.models.split(","):
        ann = MODELS[model]()
        for config in args.configs.split(","):
            start = time.perf_counter()
            snn, report = convert(ann, calib, timesteps=max(TIMESTEPS), backend=args.backend, **CONFIGS[config])
            converted = time.perf_counter() - start
            result = compare(ann, snn, report, data, truth, backend=args.backend, batch_size=500)
            seconds = time.perf_counter() - start - converted
            rows.append({
                "model": model, "peer": config, "ann_accuracy": result.ann_accuracy, "samples": result.samples,
                "accuracy": {t: result.by_timesteps[t] for t in TIMESTEPS}, "convert_seconds": round(converted, 2),
                "eval_seconds": round(seconds, 2), "options": CONFIGS[config],
                "layers_at_T64": [vars(layer) for layer in result.layers],
            })  # fmt: skip
            accs = "  ".join(f"T={t}: {100 * result.by_timesteps[t]:.2f}" for t in TIMESTEPS)
            print(
                f"{model:<16} {config:<15} ANN {100 * result.ann_accuracy:.2f}  {accs}  ({seconds:.0f} s)", flush=True
            )
        rows[-len(args.configs.split(",")) :][0]["layers_at_worst_T"] = worst_t_drift(ann, calib, data, truth, args)
    RESULTS.mkdir(exist_ok=True)
    meta = {"spikec": spikec.__version__, "python": platform.python_version(), "backend": args.backend}
    out = {"protocol": {"calibration": "[0, 1000)", "evaluation": f"[1000, {1000 + args.eval})"}, "environment": meta}
    (RESULTS / "spikec.json").write_text(json.dumps({**out, "results": rows}, indent=1, default=float) + "\n")
    print(f"wrote {RESULTS / 'spikec.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
