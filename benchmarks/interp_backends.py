"""Interpreter throughput: numpy reference vs torch (CPU, and CUDA when present), one run.

Runs the Sinabs N-MNIST spiking CNN (examples/models/cnn_sinabs.nir) on random events and prints
sample-steps per second per backend and the ratio to the numpy reference. It measures and prints;
it asserts nothing. Usage: python benchmarks/interp_backends.py [--batch 32] [--steps 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from spikec.interp import run
from spikec.models import load_model

MODEL = Path(__file__).resolve().parents[1] / "examples" / "models" / "cnn_sinabs.nir"


def measure(graph: object, x: np.ndarray, backend: str, dtype: str, device: str | None, repeats: int) -> float:
    run(graph, x[:2], backend=backend, dtype=dtype, device=device)  # warm-up (allocations, CUDA init)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(graph, x, backend=backend, dtype=dtype, device=device)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    graph = load_model(MODEL)
    x = (np.random.default_rng(0).uniform(size=(args.steps, args.batch, 2, 34, 34)) < 0.1).astype(np.float32)
    configs = [
        ("numpy", "float64", None),
        ("numpy", "float32", None),
        ("torch", "float64", "cpu"),
        ("torch", "float32", "cpu"),
    ]
    try:
        import torch

        if torch.cuda.is_available():
            configs += [("torch", "float64", "cuda"), ("torch", "float32", "cuda")]
    except ImportError:
        pass
    work = args.steps * args.batch
    print(f"cnn_sinabs.nir, T={args.steps}, batch={args.batch} (best of {args.repeats})")
    print(f"{'backend':<8} {'dtype':<8} {'device':<6} {'seconds':>8} {'sample-steps/s':>15} {'vs numpy f64':>13}")
    reference = None
    for backend, dtype, device in configs:
        seconds = measure(graph, x, backend, dtype, device, args.repeats)
        reference = reference or seconds
        rate, ratio = work / seconds, reference / seconds
        print(f"{backend:<8} {dtype:<8} {device or '-':<6} {seconds:8.3f} {rate:15.0f} {ratio:12.1f}x")


if __name__ == "__main__":
    main()
