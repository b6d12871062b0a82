"""The models partition is measured on (targets/loihi2/docs/loihi2-mapping.md; tests/test_partition.py uses them too).

Each builder returns a spiking SIR graph: the sinabs NIR CNN, the sinabs MNIST ANN converted by
``spikec.convert``, a large VGG-style conv net on 3×64×64, the netx tiny and oxford networks (Loihi
dialect), and a transformer-width MLP over tokens (Dense over the feature axis of a (T, D) layer).
Weights are seeded random where the model has no trained ones: partition reads shapes and non-zero
counts, never weight values.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spikec.ir import IF, Conv, Dense, Graph, Input, Output, SumPool
from spikec.ir.node import Node

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def chain(input_shape: tuple[int, ...], layers: list[tuple[str, Node]]) -> Graph:
    nodes: dict[str, Node] = {"input": Input(shape=input_shape), **dict(layers), "output": Output()}
    return Graph(nodes, list(itertools.pairwise(list(nodes))))


def large_conv(seed: int = 0) -> Graph:
    """3×64×64 → conv3×3 64, 64, pool, 128, 128, pool, 128 (stride 1, pad 1), pool 4 → Dense 10: ~0.95M neurons."""
    rng = np.random.default_rng(seed)
    layers: list[tuple[str, Node]] = []
    c_in, size = 3, 64
    plan: list[int | str] = [64, 64, "pool", 128, 128, "pool", 128]
    for i, step in enumerate(plan):
        if step == "pool":
            layers.append((f"pool{i}", SumPool(kernel_size=(2, 2))))
            layers.append((f"pif{i}", IF()))
            size //= 2
            continue
        w = rng.normal(size=(int(step), c_in, 3, 3)).astype(np.float32)
        layers += [(f"conv{i}", Conv(weight=w, padding=(1, 1))), (f"if{i}", IF())]
        c_in = int(step)
    from spikec.ir import Flatten

    layers += [("gpool", SumPool(kernel_size=(4, 4))), ("gif", IF())]  # 128x4x4 = 2,048 inputs per class neuron
    size //= 4
    layers += [("flat", Flatten()), ("fc", Dense(weight=rng.normal(size=(10, c_in * size * size)).astype(np.float32)))]
    layers.append(("out", IF()))
    return chain((3, 64, 64), layers)


def wide_mlp(tokens: int = 64, width: int = 768, hidden: int = 3072, seed: int = 0) -> Graph:
    """Transformer-width MLP block over (tokens, width): Dense width→hidden, IF, Dense hidden→width, IF."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(hidden, width)).astype(np.float32)
    w2 = rng.normal(size=(width, hidden)).astype(np.float32)
    layers: list[tuple[str, Node]] = [
        ("embed_if", IF()),
        ("fc1", Dense(weight=w1)),
        ("if1", IF()),
        ("fc2", Dense(weight=w2)),
        ("if2", IF()),
    ]
    return chain((tokens, width), layers)


def random_sparse_mlp(layers: int = 80, seed: int = 0) -> Graph:
    """``layers`` Dense + IF layers of 50…3,000 neurons from 256 inputs, 5 % of the weights non-zero: a deep
    graph of uneven layers, whose slabs the packing must fit into each other's gaps."""
    rng = np.random.default_rng(seed)
    chained: list[tuple[str, Node]] = []
    prev = 256
    for i, n in enumerate(int(s) for s in rng.integers(50, 3000, size=layers)):
        weight = rng.normal(size=(n, prev)) * (rng.random((n, prev)) < 0.05)
        chained += [(f"fc{i}", Dense(weight=weight)), (f"n{i}", IF())]
        prev = n
    return chain((256,), chained)


def sinabs_cnn() -> Graph:
    from spikec.models import load_model

    return load_model(DATA / "nir" / "cnn" / "cnn_sinabs.nir")


def netx(name: str) -> Graph:
    from spikec.models import load_model

    path = {"tiny": DATA / "netx" / "tiny" / "tiny.net", "oxford": DATA / "netx" / "oxford" / "network.net"}[name]
    return load_model(path)


def mnist_conv() -> Graph:
    """The sinabs MNIST ANN (examples/convert_mnist.py) converted by spikec.convert on 64 MNIST images."""
    import importlib.util

    from spikec.convert import convert
    from spikec.data.mnist import load_mnist

    path = Path(__file__).resolve().parents[2] / "examples" / "convert_mnist.py"
    spec = importlib.util.spec_from_file_location("convert_mnist_example", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images, _ = load_mnist(DATA / "mnist", "test")
    ann = module.sinabs_mnist(DATA / "sinabs" / "mnist_params.pt")
    snn, _ = convert(ann, images[:64, None].astype(np.float64), timesteps=8)
    return snn


MODELS: dict[str, Callable[[], Graph]] = {
    "sinabs-cnn": sinabs_cnn,
    "mnist-conv": mnist_conv,
    "large-conv": large_conv,
    "netx-tiny": lambda: netx("tiny"),
    "netx-oxford": lambda: netx("oxford"),
    "wide-mlp": lambda: wide_mlp(16, 256, 1024),
    "vit-b-mlp": wide_mlp,
    "random-sparse-mlp": random_sparse_mlp,
}
CHIPS = {"vit-b-mlp": 16}  # needs 10 chips: more than one 8-chip board (the resource file's default)
