"""ANN graphs for the conversion tests: the sinabs MNIST net rebuilt as SIR and MNIST (both from
examples/convert_mnist.py), and small random nets with every structure conversion must handle.

Not a test module: helpers imported by tests/test_passes_*.py, tests/test_convert*.py and
tests/test_cli_compile.py.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import numpy as np

from spikec.ir import (
    Add,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Dense,
    Flatten,
    Graph,
    Input,
    MaxPool,
    Output,
    ReLU,
)
from spikec.ir.node import Node


def _example() -> ModuleType:
    """examples/convert_mnist.py, which rebuilds the sinabs net and reads MNIST (imported by path)."""
    path = Path(__file__).resolve().parents[1] / "examples" / "convert_mnist.py"
    spec = importlib.util.spec_from_file_location("convert_mnist_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_EXAMPLE = _example()
sinabs_mnist = _EXAMPLE.sinabs_mnist  # (params path, *, pool=AvgPool) -> Graph
mnist_test = _EXAMPLE.mnist_test  # (data dir) -> (images (N, 28, 28) uint8, labels (N,))


def chain(*layers: tuple[str, Node], input_shape: tuple[int, ...]) -> Graph:
    """Input -> layers in order -> Output."""
    nodes: dict[str, Node] = {"input": Input(shape=input_shape)}
    nodes.update(layers)
    nodes["output"] = Output()
    names = list(nodes)
    return Graph(nodes, list(itertools.pairwise(names)))


def _bn(rng: np.random.Generator, c: int) -> BatchNorm:
    return BatchNorm(
        mean=rng.normal(0, 0.2, c),
        var=rng.uniform(0.5, 2.0, c),
        weight=rng.uniform(0.5, 1.5, c),
        bias=rng.normal(0, 0.2, c),
    )


def residual_net(seed: int = 0) -> Graph:
    """Conv–BN–ReLU, a residual block (Conv–BN–ReLU–Conv–BN + skip, Add, ReLU), a two-branch Concat,
    MaxPool, AvgPool, Flatten, Dense–ReLU–Dense: every structure the conversion must balance."""
    rng = np.random.default_rng(seed)

    def conv(cin: int, cout: int, k: int = 3) -> Conv:
        w = rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        return Conv(weight=w, bias=rng.normal(0, 0.05, cout), padding=(k // 2, k // 2))

    nodes: dict[str, Node] = {
        "x": Input(shape=(2, 8, 8)),
        "c1": conv(2, 4),
        "bn1": _bn(rng, 4),
        "r1": ReLU(),
        "c2": conv(4, 4),
        "bn2": _bn(rng, 4),
        "r2": ReLU(),
        "c3": conv(4, 4),
        "bn3": _bn(rng, 4),
        "add": Add(),
        "r3": ReLU(),
        "b1": conv(4, 3, 1),
        "rb1": ReLU(),
        "b2": conv(4, 5),
        "rb2": ReLU(),
        "cat": Concat(axis=0),
        "mp": MaxPool(kernel_size=(2, 2)),
        "ap": AvgPool(kernel_size=(2, 2)),
        "flat": Flatten(),
        "fc1": Dense(weight=rng.normal(0, 0.3, (16, 8 * 2 * 2)), bias=rng.normal(0, 0.05, 16)),
        "r4": ReLU(),
        "fc2": Dense(weight=rng.normal(0, 0.3, (5, 16)), bias=rng.normal(0, 0.05, 5)),
        "y": Output(),
    }
    edges = [
        ("x", "c1"), ("c1", "bn1"), ("bn1", "r1"), ("r1", "c2"), ("c2", "bn2"), ("bn2", "r2"), ("r2", "c3"),
        ("c3", "bn3"), ("bn3", "add"), ("r1", "add"), ("add", "r3"), ("r3", "b1"), ("b1", "rb1"), ("r3", "b2"),
        ("b2", "rb2"), ("rb1", "cat"), ("rb2", "cat"), ("cat", "mp"), ("mp", "ap"), ("ap", "flat"),
        ("flat", "fc1"), ("fc1", "r4"), ("r4", "fc2"), ("fc2", "y"),
    ]  # fmt: skip
    return Graph(nodes, edges)
