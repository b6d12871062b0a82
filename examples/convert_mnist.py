"""Convert the sinabs MNIST ANN to an SNN and measure both on MNIST (the numbers of docs/conversion.md).

    python examples/convert_mnist.py                       # 9,000 test images, T up to 32, numpy
    python examples/convert_mnist.py --eval 500 --configs default,channel --backend torch

The ANN (synsense/sinabs tests/mnist_params.pt, ../shared/data/sinabs) is rebuilt here as a SIR graph:
Conv(1→20,5)–ReLU–AvgPool2–Conv(20→32,5)–ReLU–AvgPool2–Conv(32→128,3)–ReLU–AvgPool2–Flatten–
Dense(128→500)–ReLU–Dense(500→10), bias-free, raw 0..255 pixels. Calibration: the first 1,000 MNIST
test images; evaluation: the next ``--eval`` ones. Each configuration is one ``spikec.convert.convert``
call; the ``maxpool-*`` ones swap the AvgPools for MaxPools (same weights; a different ANN).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from spikec.compare import compare
from spikec.convert import convert
from spikec.data.mnist import load_mnist
from spikec.ir import AvgPool, Conv, Dense, Flatten, Graph, Input, MaxPool, Output, ReLU
from spikec.ir.node import Node

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SINABS_KEYS = ("0.weight", "3.weight", "6.weight", "10.weight", "12.weight")
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},  # layer-wise 99.9th percentile, v_init = θ/2, reset by subtraction, membrane readout
    "channel": {"granularity": "channel"},
    "p99.99": {"percentile": 99.99},
    "max": {"method": "max"},
    "init0": {"init": 0.0},
    "spikes": {"decoding": "spikes"},
    "poisson": {"encoding": "poisson"},
    "maxpool-rate": {"maxpool": "rate"},
    "maxpool-current": {"maxpool": "current"},
    "maxpool-spikes": {"maxpool": "spikes"},
}


def sinabs_mnist(params: Path, *, pool: type = AvgPool) -> Graph:
    """The sinabs MNIST ANN as SIR (``pool=MaxPool`` swaps its pooling for max-pooling)."""
    import torch

    state = torch.load(params, weights_only=True, map_location="cpu")
    w = [state[k].numpy() for k in SINABS_KEYS]
    origin = "torch:mnist_params.pt#"
    layers: list[tuple[str, Node]] = [
        ("conv1", Conv(weight=w[0], origin=origin + "0")),
        ("relu1", ReLU(origin=origin + "1")),
        ("pool1", pool(kernel_size=(2, 2), origin=origin + "2")),
        ("conv2", Conv(weight=w[1], origin=origin + "3")),
        ("relu2", ReLU(origin=origin + "4")),
        ("pool2", pool(kernel_size=(2, 2), origin=origin + "5")),
        ("conv3", Conv(weight=w[2], origin=origin + "6")),
        ("relu3", ReLU(origin=origin + "7")),
        ("pool3", pool(kernel_size=(2, 2), origin=origin + "8")),
        ("flat", Flatten(origin=origin + "9")),
        ("fc1", Dense(weight=w[3], origin=origin + "10")),
        ("relu4", ReLU(origin=origin + "11")),
        ("fc2", Dense(weight=w[4], origin=origin + "12")),
    ]
    nodes: dict[str, Node] = {"input": Input(shape=(1, 28, 28)), **dict(layers), "output": Output()}
    names = list(nodes)
    return Graph(nodes, list(itertools.pairwise(names)))


def mnist_test(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images (N, 28, 28) uint8 and their labels (N,)."""
    return load_mnist(data / "mnist", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with mnist/ and sinabs/ (../shared/data)")
    parser.add_argument("--eval", type=int, default=9000, help="test images after the 1,000 calibration ones")
    parser.add_argument("--timesteps", type=int, default=32, help="longest T (accuracy is read at 1, 2, 4, ... T)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {list(CONFIGS)}")
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    images, labels = mnist_test(args.data)
    x = images[:, None].astype(np.float64)
    calib, test, truth = x[:1000], x[1000 : 1000 + args.eval], labels[1000 : 1000 + args.eval]
    params = args.data / "sinabs" / "mnist_params.pt"
    results: dict[str, Any] = {}
    for name in args.configs.split(","):
        graph = sinabs_mnist(params, pool=MaxPool if name.startswith("maxpool") else AvgPool)
        start = time.perf_counter()
        snn, report = convert(graph, calib, timesteps=args.timesteps, measure_rates=False, **CONFIGS[name])
        result = compare(graph, snn, report, test, truth, backend=args.backend, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        results[name] = {**result.to_dict(), "seconds": round(seconds, 1)}
        snn_at = "  ".join(f"T={t}: {100 * a:.2f}%" for t, a in result.by_timesteps.items() if t >= 4)
        drift = min(d.drift for d in result.layers if d.drift is not None)
        print(
            f"{name:<16} ANN {100 * result.ann_accuracy:.2f}%  SNN {snn_at}  min drift {drift:.4f}  "
            f"({result.samples} images, {seconds:.0f} s)",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
