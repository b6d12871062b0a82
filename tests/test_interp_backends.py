"""The numpy reference and the torch backend agree on every node kind.

Spike outputs must be identical; membrane, state and analog values agree within 1e-6 relative.
The torch backend runs on CPU, and on CUDA too where torch sees a GPU.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import numpy as np
import pytest
import torch
from akida_networks import backend_case as akida_case
from loihi_networks import BY_KIND, backend_case

from spikec.interp import RunResult, run
from spikec.ir import (
    IF,
    LI,
    LIF,
    LRN,
    NODE_KINDS,
    Add,
    AvgPool,
    BatchNorm,
    Clip,
    Concat,
    Conv,
    CubaLI,
    CubaLIF,
    Delay,
    Dense,
    Edge,
    Flatten,
    Graph,
    I,
    Identity,
    Input,
    Level,
    MaxPool,
    Node,
    Output,
    RateMaxPool,
    ReLU,
    Reshape,
    Scale,
    SumPool,
    Threshold,
    Transpose,
)
from spikec.ir.attention import HadamardColumnSum, SpikingSelfAttention, StochasticSpikingAttention
from spikec.ir.attention_rate import CompensatedSpikingSelfAttention
from spikec.ir.exact import STBIF, Accumulate, Difference, Quantize
from spikec.ir.spatial import ConvTranspose, Pad, Pool
from spikec.ir.tensor import (
    BINARY_OPS,
    GELU,
    REDUCE_OPS,
    UNARY_OPS,
    Bias,
    Binary,
    Constant,
    Gather,
    LayerNorm,
    LogSoftmax,
    MatMul,
    Reduce,
    Slice,
    Softmax,
    Unary,
    Where,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SPIKING = (IF, LIF, CubaLIF, Threshold)  # kinds whose output is 0/1 spikes
T, B = 20, 3
DT = 1e-3

Case = tuple[Graph, dict[str, np.ndarray]]
CASES: dict[str, Callable[[], Case]] = {}


def case(kind: type[Node]) -> Callable[[Callable[[], Case]], Callable[[], Case]]:
    def register(fn: Callable[[], Case]) -> Callable[[], Case]:
        CASES[kind.kind] = fn
        return fn

    return register


def _rng(kind: str) -> np.random.Generator:
    return np.random.default_rng(sum(map(ord, kind)))


def _chain(shape: tuple[int, ...], *nodes: Node, x: np.ndarray) -> Case:
    """x -> (Dense front, so neurons see analog currents from a reduction) -> nodes -> out."""
    named: dict[str, Node] = {"x": Input(shape=shape)}
    named |= {f"{type(n).kind.lower()}{i}": n for i, n in enumerate(nodes)}
    named["out"] = Output()
    names = list(named)
    return Graph(named, list(itertools.pairwise(names)), dt=DT), {"x": x}


def _neuron(node_of: Callable[[np.random.Generator], Node], kind: str, scale: float) -> Case:
    """Input spikes -> Dense (random, positive-biased) -> neuron: the neuron must spike."""
    rng = _rng(kind)
    w = rng.normal(0.3, 1.0, size=(6, 8)) * scale
    x = (rng.random(size=(T, B, 8)) < 0.4).astype(np.float64)
    return _chain((8,), Dense(weight=w, bias=rng.normal(size=6) * 0.1), node_of(rng), x=x)


# -- ann ----------------------------------------------------------------------------------------
@case(Dense)
def _dense() -> Case:
    rng = _rng("Dense")
    x = rng.normal(size=(T, B, 2, 5))
    return _chain((2, 5), Dense(weight=rng.normal(size=(4, 5)), bias=rng.normal(size=4)), x=x)


@case(Conv)
def _conv() -> Case:
    rng = _rng("Conv")
    x = rng.normal(size=(T, B, 4, 9, 8))
    c2 = Conv(
        weight=rng.normal(size=(6, 2, 3, 2)),
        bias=rng.normal(size=6),
        stride=(2, 1),
        padding=(1, 2),
        dilation=(1, 2),
        groups=2,
    )
    c1 = Conv(weight=rng.normal(size=(3, 6, 3)), stride=(2,), padding=(1,))
    return _chain((4, 9, 8), c2, Reshape(shape=(6, 50)), c1, x=x)


@case(SumPool)
def _sum_pool() -> Case:
    """Spike counts into an integer threshold: the sum must be exact for the spikes to agree."""
    rng = _rng("SumPool")
    x = (rng.random(size=(T, B, 2, 10, 10)) < 0.3).astype(np.float64)
    return _chain(
        (2, 10, 10),
        SumPool(kernel_size=(5, 5)),
        Threshold(threshold=np.array(7.0)),
        Flatten(),
        x=x,
    )


@case(AvgPool)
def _avg_pool() -> Case:
    rng = _rng("AvgPool")
    x = rng.normal(size=(T, B, 3, 7, 6))
    return _chain(
        (3, 7, 6),
        AvgPool(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1)),
        Reshape(shape=(3, 28)),
        AvgPool(kernel_size=(3,), padding=(2,)),
        x=x,
    )


@case(MaxPool)
def _max_pool() -> Case:
    rng = _rng("MaxPool")
    x = rng.normal(size=(T, B, 3, 7, 6)) - 5.0
    return _chain(
        (3, 7, 6),
        MaxPool(kernel_size=(2, 2), stride=(1, 2), padding=(1, 1)),
        Flatten(start_dim=1),
        MaxPool(kernel_size=(3,), stride=(2,), padding=(2,)),
        x=x,
    )


@case(Flatten)
def _flatten() -> Case:
    x = _rng("Flatten").normal(size=(T, B, 2, 3, 4))
    return _chain((2, 3, 4), Flatten(start_dim=1), Flatten(), x=x)


@case(Reshape)
def _reshape() -> Case:
    x = _rng("Reshape").normal(size=(T, B, 2, 6))
    return _chain((2, 6), Reshape(shape=(3, 4)), Reshape(shape=(12,)), x=x)


@case(Transpose)
def _transpose() -> Case:
    x = _rng("Transpose").normal(size=(T, B, 2, 3, 4))
    return _chain((2, 3, 4), Transpose(perm=(2, 0, 1)), Transpose(perm=(1, 2, 0)), x=x)


@case(Scale)
def _scale() -> Case:
    rng = _rng("Scale")
    x = rng.normal(size=(T, B, 3, 4))
    return _chain((3, 4), Scale(scale=rng.normal(size=(3, 1))), Scale(scale=np.array(0.5)), x=x)


@case(ReLU)
def _relu() -> Case:
    return _chain((3, 4), ReLU(), x=_rng("ReLU").normal(size=(T, B, 3, 4)))


@case(Clip)
def _clip() -> Case:
    x = _rng("Clip").normal(size=(T, B, 3, 4))
    return _chain((3, 4), Clip(min=-0.5, max=0.7), Clip(max=0.2), x=x)


@case(Add)
def _add() -> Case:
    rng = _rng("Add")
    nodes: dict[str, Node] = {
        "a": Input(shape=(5,)),
        "b": Input(shape=(5,)),
        "add": Add(),
        "fc": Dense(weight=rng.normal(size=(5, 5)) * 0.3),
        "out": Output(),
    }
    edges = [
        Edge("a", "add"),
        Edge("b", "add"),
        Edge("add", "fc"),
        Edge("fc", "add", recurrent=True),
        Edge("add", "out"),
    ]
    feeds = {"a": rng.normal(size=(T, B, 5)), "b": rng.normal(size=(T, B, 5))}
    return Graph(nodes, edges, dt=DT), feeds


@case(BatchNorm)
def _batch_norm() -> Case:
    rng = _rng("BatchNorm")
    x = rng.normal(size=(T, B, 3, 4, 4))
    bn = BatchNorm(
        mean=rng.normal(size=3), var=rng.uniform(0.5, 2, 3), weight=rng.normal(size=3), bias=rng.normal(size=3)
    )
    return _chain((3, 4, 4), bn, x=x)


@case(Identity)
def _identity() -> Case:
    rng = _rng("Identity")
    nodes: dict[str, Node] = {"a": Input(shape=(2, 3)), "b": Input(shape=(2, 3)), "id": Identity(), "out": Output()}
    feeds = {"a": rng.normal(size=(T, B, 2, 3)), "b": rng.normal(size=(T, B, 2, 3))}
    return Graph(nodes, [("a", "id"), ("b", "id"), ("id", "out")], dt=DT), feeds


@case(Concat)
def _concat() -> Case:
    rng = _rng("Concat")
    nodes: dict[str, Node] = {
        "a": Input(shape=(2, 3)),
        "b": Input(shape=(4, 3)),
        "cat": Concat(axis=0),
        "cat2": Concat(axis=-1),
        "out": Output(),
    }
    edges = [("b", "cat"), ("a", "cat"), ("cat", "cat2"), ("cat", "cat2"), ("cat2", "out")]
    feeds = {"a": rng.normal(size=(T, B, 2, 3)), "b": rng.normal(size=(T, B, 4, 3))}
    return Graph(nodes, edges, dt=DT), feeds


# -- general tensor kinds (spikec/ir/tensor.py, spatial.py) -------------------------------------
def _fan_in(shape: tuple[int, ...], branches: dict[str, tuple[Node, list[str]]], feeds: dict[str, np.ndarray]) -> Case:
    """Inputs named in ``feeds`` (per-sample ``shape`` unless given), branch nodes fed by the named
    nodes in order, every branch summed into one Add -> out."""
    nodes: dict[str, Node] = {k: Input(shape=v.shape[2:]) for k, v in feeds.items()}
    edges: list[tuple[str, str]] = []
    for name, (node, srcs) in branches.items():
        nodes[name] = node
        edges += [(src, name) for src in srcs]
    used = {src for _, srcs in branches.values() for src in srcs}
    sinks = [n for n in branches if n not in used]
    nodes |= {"sum": Add(), "out": Output()}
    edges += [(n, "sum") for n in sinks] + [("sum", "out")]
    return Graph(nodes, edges, dt=DT), feeds


@case(Binary)
def _binary() -> Case:
    rng = _rng("Binary")
    x = rng.normal(size=(T, B, 3, 4))
    y = rng.uniform(0.5, 2.0, size=(T, B, 4)) * rng.choice([-1.0, 1.0], size=(T, B, 4))
    branches: dict[str, tuple[Node, list[str]]] = {"base": (Constant(value=rng.uniform(0.5, 2.0, (3, 1))), [])}
    for op in BINARY_OPS:
        srcs = {"pow": ["base", "x"], "eq": ["x", "x"]}.get(op, ["x", "y"])
        branches[op] = (Binary(op=op), srcs)
    return _fan_in((3, 4), branches, {"x": x, "y": y})


@case(Constant)
def _constant() -> Case:
    rng = _rng("Constant")
    branches: dict[str, tuple[Node, list[str]]] = {
        "c": (Constant(value=rng.normal(size=(2, 3))), []),
        "scaled": (Scale(scale=np.array(2.0)), ["c"]),
        "mix": (Binary(op="mul"), ["x", "scaled"]),
    }
    return _fan_in((2, 3), branches, {"x": rng.normal(size=(T, B, 2, 3))})


@case(Bias)
def _bias() -> Case:
    rng = _rng("Bias")
    return _chain((3, 4), Bias(bias=rng.normal(size=(3, 1))), Bias(bias=np.array(0.5)), x=rng.normal(size=(T, B, 3, 4)))


@case(Unary)
def _unary() -> Case:
    rng = _rng("Unary")
    params = {"leaky_relu": (0.1, 0.0), "elu": (0.7, 0.0), "selu": (1.67, 1.05), "celu": (0.8, 0.0)}
    params |= {"thresholded_relu": (0.2, 0.0), "hard_sigmoid": (0.2, 0.5), "swish": (1.3, 0.0), "pow": (1.5, 0.0)}
    branches: dict[str, tuple[Node, list[str]]] = {
        "abs_x": (Unary(op="abs"), ["x"]),
        "positive": (Bias(bias=np.array(0.1)), ["abs_x"]),
        "nan_where_negative": (Unary(op="sqrt"), ["x"]),
        "inf_where_large": (Unary(op="exp"), ["big"]),
        "big": (Scale(scale=np.array(300.0)), ["x"]),
        "half": (Constant(value=np.array(0.5)), []),
        "bits": (Binary(op="gt"), ["x", "half"]),
    }
    sources = {"log": "positive", "sqrt": "positive", "reciprocal": "positive", "pow": "positive"}
    sources |= {"isnan": "nan_where_negative", "isinf": "inf_where_large", "not": "bits"}
    for op in UNARY_OPS:
        alpha, beta = params.get(op, (0.0, 0.0))
        src = sources.get(op, "x")
        branches[f"u_{op}"] = (Unary(op=op, alpha=alpha, beta=beta), [src])
    return _fan_in((3, 4), branches, {"x": 3.0 * rng.normal(size=(T, B, 3, 4))})


@case(Where)
def _where() -> Case:
    rng = _rng("Where")
    branches: dict[str, tuple[Node, list[str]]] = {
        "cond": (Binary(op="gt"), ["x", "y"]),
        "other": (Constant(value=rng.normal(size=(1, 4))), []),
        "pick": (Where(), ["cond", "x", "other"]),
    }
    return _fan_in((3, 4), branches, {"x": rng.normal(size=(T, B, 3, 4)), "y": rng.normal(size=(T, B, 4))})


@case(MatMul)
def _matmul() -> Case:
    rng = _rng("MatMul")
    branches: dict[str, tuple[Node, list[str]]] = {
        "ab": (MatMul(), ["a", "b"]),  # (2, 3, 4) @ (4, 5)
        "vb": (MatMul(), ["v", "b"]),  # (4,) @ (4, 5)
        "abv": (MatMul(), ["ab", "w"]),  # (2, 3, 5) @ (5,)
        "flat": (Reshape(shape=(6,)), ["abv"]),
        "fold": (Dense(weight=rng.normal(size=(5, 6))), ["flat"]),
    }
    feeds = {
        "a": rng.normal(size=(T, B, 2, 3, 4)),
        "b": rng.normal(size=(T, B, 4, 5)),
        "v": rng.normal(size=(T, B, 4)),
        "w": rng.normal(size=(T, B, 5)),
    }
    return _fan_in((5,), branches, feeds)


@case(Softmax)
def _softmax() -> Case:
    rng = _rng("Softmax")
    mask = np.zeros((3, 4))
    mask[1] = -np.inf  # a fully masked row gives zeros
    mask[2, 1] = -np.inf
    branches: dict[str, tuple[Node, list[str]]] = {
        "mask": (Constant(value=mask), []),
        "masked": (Binary(op="add"), ["x", "mask"]),
        "rows": (Softmax(axis=-1), ["masked"]),
        "cols": (Softmax(axis=0), ["x"]),
    }
    return _fan_in((3, 4), branches, {"x": 5.0 * rng.normal(size=(T, B, 3, 4))})


@case(LogSoftmax)
def _log_softmax() -> Case:
    rng = _rng("LogSoftmax")
    branches: dict[str, tuple[Node, list[str]]] = {
        "rows": (LogSoftmax(axis=-1), ["x"]),
        "cols": (LogSoftmax(axis=0), ["x"]),
    }
    return _fan_in((3, 4), branches, {"x": 5.0 * rng.normal(size=(T, B, 3, 4))})


@case(LayerNorm)
def _layer_norm() -> Case:
    rng = _rng("LayerNorm")
    return _chain(
        (3, 4, 5),
        LayerNorm(axis=1, weight=rng.normal(size=(4, 5)), bias=rng.normal(size=5), eps=1e-3),
        LayerNorm(axis=-1),
        x=rng.normal(size=(T, B, 3, 4, 5)),
    )


@case(GELU)
def _gelu() -> Case:
    return _chain((3, 4), GELU(), GELU(approximate="tanh"), x=3.0 * _rng("GELU").normal(size=(T, B, 3, 4)))


@case(Reduce)
def _reduce() -> Case:
    rng = _rng("Reduce")
    branches: dict[str, tuple[Node, list[str]]] = {}
    for op in REDUCE_OPS:
        branches[f"{op}_keep"] = (Reduce(op=op, axes=(0, 2)), ["x"])
        branches[f"{op}_drop"] = (Reduce(op=op, axes=(-1, 0), keepdims=0), ["x"])
        branches[f"{op}_back"] = (Reshape(shape=(1, 4, 1)), [f"{op}_drop"])
    return _fan_in((1, 4, 1), branches, {"x": rng.uniform(0.5, 1.5, size=(T, B, 3, 4, 2))})


@case(Gather)
def _gather() -> Case:
    rng = _rng("Gather")
    return _chain(
        (3, 4),
        Gather(indices=np.array([[3, 0], [1, 1]]), axis=1),
        Gather(indices=np.array(2), axis=0),
        x=rng.normal(size=(T, B, 3, 4)),
    )


@case(Slice)
def _slice() -> Case:
    rng = _rng("Slice")
    return _chain(
        (6, 5),
        Slice(axes=(0, -1), starts=(4, 0), ends=(-10, 5), steps=(-2, 2)),
        Slice(axes=(1,), starts=(1,), ends=(3,)),
        x=rng.normal(size=(T, B, 6, 5)),
    )


@case(Pad)
def _pad() -> Case:
    """Constant, then reflect (pads beyond one reflection too), edge and wrap."""
    return _chain(
        (2, 3, 4),
        Pad(pads=(0, 1, 2, 1, 0, 1), value=0.5),
        Pad(pads=(1, 0, 5, 0, 2, 1), mode="reflect"),
        Pad(pads=(0, 2, 1, 1, 0, 3), mode="edge"),
        Pad(pads=(1, 1, 0, 0, 7, 2), mode="wrap"),
        x=_rng("Pad").normal(size=(T, B, 2, 3, 4)),
    )


@case(LRN)
def _lrn() -> Case:
    """Odd and even windows, wider than the channels, on per-sample channel axes 0 and 1."""
    return _chain(
        (5, 3, 4),
        LRN(size=3, alpha=0.5, beta=0.75, k=1.0),
        LRN(size=4, alpha=2.0, beta=0.5, k=2.0, axis=1),
        LRN(size=7, alpha=1e-1, beta=1.3, k=0.5),
        x=3.0 * _rng("LRN").normal(size=(T, B, 5, 3, 4)),
    )


@case(ConvTranspose)
def _conv_transpose() -> Case:
    rng = _rng("ConvTranspose")
    two = ConvTranspose(
        weight=rng.normal(size=(4, 3, 3, 2)),
        bias=rng.normal(size=6),
        stride=(2, 1),
        pads=(1, 0, 0, 1),
        output_padding=(1, 0),
        dilation=(1, 2),
        groups=2,
    )
    one = ConvTranspose(weight=rng.normal(size=(6, 2, 3)), stride=(3,), pads=(2, 1))
    shape = two.infer_shape([(4, 5, 6)])
    return _chain(
        (4, 5, 6), two, Reshape(shape=(shape[0], shape[1] * shape[2])), one, x=rng.normal(size=(T, B, 4, 5, 6))
    )


@case(Pool)
def _pool() -> Case:
    rng = _rng("Pool")
    pools = [
        Pool(mode="max", kernel_size=(3, 2), stride=(2, 2), dilation=(1, 2), pads=(1, 0, 2, 1), ceil_mode=1),
        Pool(mode="avg", kernel_size=(2, 2), pads=(1, 1, 0, 1), count_include_pad=0),
        Pool(mode="avg", kernel_size=(2, 3), stride=(1, 2), pads=(0, 1, 1, 1), ceil_mode=1, count_include_pad=1),
    ]
    shape: tuple[int, ...] = (2, 9, 10)
    for p in pools:
        shape = p.infer_shape([shape])
    three_d = Pool(mode="max", kernel_size=(2, 2, 2), stride=(1, 2, 1), pads=(0, 1, 0, 1, 0, 1))
    return _chain((2, 9, 10), *pools, Reshape(shape=(1, *shape)), three_d, x=rng.normal(size=(T, B, 2, 9, 10)) - 3.0)


# -- snn ----------------------------------------------------------------------------------------
@case(IF)
def _if() -> Case:
    rng = _rng("IF")
    w = rng.normal(0.3, 1.0, size=(6, 8))
    x = (rng.random(size=(T, B, 8)) < 0.4).astype(np.float64)
    return _chain(
        (8,),
        Dense(weight=w),
        IF(v_threshold=rng.uniform(0.5, 1.5, size=6)),
        Dense(weight=rng.normal(0.5, 1.0, size=(6, 6))),
        IF(reset="subtract", r=np.array(0.7)),
        Dense(weight=rng.normal(0.5, 1.0, size=(6, 6))),
        IF(reset="none", v_reset=np.array(-0.2), v_threshold=np.array(0.3)),
        Dense(weight=rng.normal(0.0, 1.0, size=(6, 6))),
        IF(reset="subtract", polarity="bipolar", v_init=rng.uniform(0.0, 0.5, size=6)),
        x=x,
    )


@case(RateMaxPool)
def _rate_max_pool() -> Case:
    """Counts of spikes max-pooled per window: exact integers on every backend."""
    rng = _rng("RateMaxPool")
    x = (rng.random(size=(T, B, 2, 7, 7)) < 0.3).astype(np.float64)
    return _chain((2, 7, 7), RateMaxPool(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)), x=x)


@case(LIF)
def _lif() -> Case:
    return _neuron(
        lambda rng: LIF(
            tau=rng.uniform(3e-3, 2e-2, size=6),
            v_leak=np.array(0.1),
            v_threshold=rng.uniform(0.2, 0.6, size=6),
            v_reset=np.array(-0.1),
        ),
        "LIF",
        scale=2.0,
    )


def framework_neurons() -> Case:
    """SNN-framework semantics (docs/torch-frontend.md): SpikingJelly's v >= v_th on exact ties
    (dyadic weights onto an IF and a LIF started at v_init), snnTorch's undecayed subtract_next."""
    rng = np.random.default_rng(4321)
    x = (rng.random(size=(T, B, 8)) < 0.5).astype(np.float64)
    return _chain(
        (8,),
        Dense(weight=rng.integers(-2, 5, size=(6, 8)) / 4.0),
        IF(v_threshold=np.array(1.0), v_reset=np.array(0.25), v_init=np.array(0.25), firing="at_or_above"),
        Dense(weight=rng.integers(-1, 4, size=(6, 6)) / 2.0),
        LIF(tau=np.array(2 * DT), v_init=np.array(-0.5), v_reset=np.array(-0.5), firing="at_or_above"),
        Dense(weight=rng.normal(0.5, 0.5, size=(6, 6))),
        LIF(tau=np.array(4 * DT), r=np.array(4.0), v_threshold=np.array(0.7), reset="subtract_next"),
        Dense(weight=rng.normal(0.5, 0.5, size=(6, 6))),
        CubaLIF(tau_syn=np.array(2 * DT), tau_mem=np.array(3 * DT), reset="subtract_next"),
        x=x,
    )


CASES["framework_neurons"] = framework_neurons


@case(CubaLIF)
def _cuba_lif() -> Case:
    return _neuron(
        lambda rng: CubaLIF(
            tau_syn=rng.uniform(2e-3, 1e-2, size=6),
            tau_mem=np.array(8e-3),
            r=np.array(1.5),
            w_in=rng.uniform(0.5, 2.0, size=6),
            v_threshold=np.array(0.2),
            reset="subtract",
        ),
        "CubaLIF",
        scale=2.0,
    )


@case(LI)
def _li() -> Case:
    return _neuron(lambda rng: LI(tau=rng.uniform(3e-3, 2e-2, size=6), v_leak=np.array(0.2)), "LI", scale=1.0)


@case(CubaLI)
def _cuba_li() -> Case:
    return _neuron(
        lambda rng: CubaLI(tau_syn=np.array(4e-3), tau_mem=rng.uniform(3e-3, 2e-2, size=6), w_in=np.array(1.5)),
        "CubaLI",
        scale=1.0,
    )


@case(I)
def _i() -> Case:
    return _neuron(lambda rng: I(r=rng.uniform(0.5, 1.5, size=6)), "I", scale=1.0)


@case(Threshold)
def _threshold() -> Case:
    return _neuron(lambda rng: Threshold(threshold=rng.uniform(0.0, 1.0, size=6)), "Threshold", scale=1.0)


@case(Delay)
def _delay() -> Case:
    rng = _rng("Delay")
    x = (rng.random(size=(T, B, 2, 4)) < 0.5).astype(np.float64)
    steps = rng.integers(0, 4, size=(2, 4))
    return _chain(
        (2, 4),
        Delay(delay=steps * DT),
        Flatten(),
        Dense(weight=rng.normal(size=(3, 8))),
        Delay(delay=np.array(2 * DT)),
        x=x,
    )


def conv_snn() -> Case:
    """Conv -> IF -> SumPool -> Flatten -> Dense -> LIF, fed by random spikes."""
    rng = np.random.default_rng(1234)
    x = (rng.random(size=(T, B, 2, 12, 12)) < 0.3).astype(np.float64)
    return _chain(
        (2, 12, 12),
        Conv(weight=rng.normal(0.2, 0.5, size=(4, 2, 3, 3)), bias=np.full(4, 0.05), padding=(1, 1)),
        IF(v_threshold=np.array(1.0)),
        SumPool(kernel_size=(2, 2)),
        Flatten(),
        Dense(weight=rng.normal(0.0, 0.05, size=(10, 4 * 6 * 6))),
        LIF(tau=np.array(5e-3), v_threshold=np.array(0.5)),
        x=x,
    )


CASES["conv_snn"] = conv_snn


# -- spiking attention (spikec/ir/attention.py) -------------------------------------------------------
def _qkv_spikes(kind: str, shape: tuple[int, ...] = (5, 8)) -> dict[str, np.ndarray]:
    rng = _rng(kind)
    return {n: (rng.random(size=(T, B, *shape)) < 0.4).astype(np.float64) for n in ("q", "k", "v")}


@case(SpikingSelfAttention)
def _spiking_self_attention() -> Case:
    return _fan_in((5, 8), {"att": (SpikingSelfAttention(heads=2, scale=0.125), ["q", "k", "v"])}, _qkv_spikes("SSA"))


@case(HadamardColumnSum)
def _hadamard_column_sum() -> Case:
    feeds = _qkv_spikes("HadamardColumnSum")
    del feeds["v"]
    return _fan_in((5, 8), {"kv": (HadamardColumnSum(), ["q", "k"])}, feeds)


@case(StochasticSpikingAttention)
def _stochastic_spiking_attention() -> Case:
    rng = _rng("StochasticSpikingAttention")
    feeds = {n: rng.uniform(0.3, 1.0, size=(T, B, 5, 8)) for n in ("q", "k", "v")}
    return _fan_in((5, 8), {"att": (StochasticSpikingAttention(heads=2, seed=7), ["q", "k", "v"])}, feeds)


@case(CompensatedSpikingSelfAttention)
def _compensated_spiking_self_attention() -> Case:
    att = CompensatedSpikingSelfAttention(heads=2, scale=0.125)
    return _fan_in((5, 8), {"att": (att, ["q", "k", "v"])}, _qkv_spikes("CompensatedSSA"))


# -- exact conversion kinds (spikec/ir/exact.py) -------------------------------------------------
@case(Quantize)
def _quantize() -> Case:
    rng = _rng("Quantize")
    return _chain(
        (3, 4),
        Quantize(step=np.array(0.25), lo=0, hi=7),
        Dense(weight=rng.normal(size=(5, 4))),
        Quantize(step=rng.uniform(0.1, 0.3, size=5), lo=-3, hi=4),
        x=rng.normal(size=(T, B, 3, 4)),
    )


@case(STBIF)
def _st_bif() -> Case:
    """Signed IF with count bounds, one and several spikes per step: counts and outputs are exact."""
    rng = _rng("STBIF")
    return _chain(
        (6,),
        Dense(weight=rng.normal(size=(6, 6))),
        STBIF(v_threshold=rng.uniform(0.3, 1.0, size=6), lo=-2, hi=5),
        Dense(weight=rng.normal(size=(6, 6))),
        STBIF(v_threshold=np.array(0.5), lo=-7, hi=8, max_spikes=3),
        x=rng.normal(size=(T, B, 6)),
    )


@case(Accumulate)
def _accumulate() -> Case:
    return _chain((2, 3), Accumulate(), Softmax(), Difference(), x=_rng("Accumulate").normal(size=(T, B, 2, 3)))


@case(Difference)
def _difference() -> Case:
    return _chain((4,), Difference(), Difference(), Accumulate(), x=_rng("Difference").normal(size=(T, B, 4)))


# the Loihi dialect: the networks tests/test_loihi_lava.py checks against Lava (exact on both backends)
CASES.update({kind: functools.partial(backend_case, kind) for kind in BY_KIND})
# the Akida dialect: the networks tests/test_akida_semantics.py checks against akida's engine
CASES.update(
    {
        kind: functools.partial(akida_case, kind)
        for kind in ("AkidaConv", "AkidaDense", "AkidaAdd", "AkidaConcat", "AkidaV1Conv", "AkidaV1Dense")
    }
)


def _spinnaker2() -> Case:
    """The SpiNNaker2 dialect: int8 conv into an integer IF, flattened, int8 dense into a leaky current-based
    population, one-to-one into an IF, and a readout (the networks tests/test_spinnaker2*.py run on Brian2)."""
    from spikec.targets.spinnaker2.dialect import SpiNNaker2Conv, SpiNNaker2Dense, SpiNNaker2LIF, SpiNNaker2OneToOne

    rng = _rng("SpiNNaker2")
    return _chain(
        (2, 6, 6),
        SpiNNaker2Conv(weight=rng.integers(-127, 128, (3, 2, 3, 3)), padding=(1, 1)),
        SpiNNaker2LIF(threshold=np.asarray(150), bias=np.asarray(5), v_init=np.asarray(20)),
        Flatten(),
        SpiNNaker2Dense(weight=rng.integers(-127, 128, (5, 108))),
        SpiNNaker2LIF(threshold=np.asarray(200), reset="subtract", alpha_decay=0.9, syn_decay=0.6),
        SpiNNaker2OneToOne(weight=rng.integers(-127, 128, 5)),
        SpiNNaker2LIF(threshold=np.asarray(60)),
        SpiNNaker2Dense(weight=rng.integers(-127, 128, (4, 5))),
        SpiNNaker2LIF(readout=1),
        x=(rng.random(size=(T, B, 2, 6, 6)) < 0.4).astype(np.float64),
    )


CASES.update(
    {kind: _spinnaker2 for kind in ("SpiNNaker2Conv", "SpiNNaker2Dense", "SpiNNaker2OneToOne", "SpiNNaker2LIF")}
)


# -- the checks ---------------------------------------------------------------------------------
def test_every_node_kind_has_a_case() -> None:
    """A new (non-structure) node kind must come with a case here."""
    kinds = {
        name
        for name, cls in NODE_KINDS.items()
        if cls.level is not Level.STRUCTURE and cls.__module__.startswith("spikec.")
    }
    assert kinds, "no node kinds registered?"
    missing = kinds - set(CASES)
    assert not missing, f"node kinds without a numpy/torch agreement case: {sorted(missing)}"
    # and each case really holds its kind
    for kind in kinds:
        graph, _ = CASES[kind]()
        assert any(n.kind == kind for n in graph.nodes.values()), kind


@functools.cache
def _reference(name: str) -> RunResult:
    graph, feeds = CASES[name]()
    return run(graph, feeds, backend="numpy", trace=True)


def _assert_agree(graph: Graph, ref: RunResult, got: RunResult) -> None:
    assert ref.traces.keys() == got.traces.keys()
    assert ref.outputs.keys() == got.outputs.keys()
    for key, expected in [*ref.traces.items(), *(("out:" + k, v) for k, v in ref.outputs.items())]:
        actual = got.outputs[key[4:]] if key.startswith("out:") else got.traces[key]
        assert actual.shape == expected.shape, key
        assert actual.dtype == expected.dtype == np.float64, key
        node = graph.nodes.get(key.removeprefix("out:"))
        if isinstance(node, SPIKING):
            bipolar = getattr(node, "polarity", "") == "bipolar"
            assert set(np.unique(expected)) <= ({-1.0, 0.0, 1.0} if bipolar else {0.0, 1.0}), key
            np.testing.assert_array_equal(actual, expected, err_msg=f"spikes of {key} differ")
        else:
            np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_agrees_with_numpy(name: str, device: str) -> None:
    graph, feeds = CASES[name]()
    ref = _reference(name)
    given = {k: np.array(v, copy=True) for k, v in feeds.items()}
    got = run(graph, feeds, backend="torch", device=device, trace=True)
    assert got.backend == "torch"
    for key, value in given.items():  # the backend shares the caller's arrays: no kernel may write into them
        np.testing.assert_array_equal(feeds[key], value, err_msg=f"input {key} was written")
    _assert_agree(graph, ref, got)
    # the case exercises its nodes: spiking kinds spike (somewhere, not everywhere), values move
    for node_name, node in graph.nodes.items():
        trace = ref.traces[node_name]
        if isinstance(node, SPIKING):
            assert 0 < trace.sum() < trace.size, f"{node_name} should spike, but not always"
        else:
            assert np.any(trace != 0), f"{node_name} stays zero: the case tests nothing"


@pytest.mark.parametrize("device", DEVICES)
def test_float32_agrees_within_single_precision(device: str) -> None:
    """Lower precision runs too; analog values agree to float32 accuracy (spikes may not)."""
    graph, feeds = CASES["Dense"]()
    ref = run(graph, feeds, backend="numpy", dtype="float32")
    got = run(graph, feeds, backend="torch", device=device, dtype="float32")
    assert got.outputs["out"].dtype == ref.outputs["out"].dtype == np.float32
    np.testing.assert_allclose(got.outputs["out"], ref.outputs["out"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", *(f"torch:{d}" for d in DEVICES)])
@pytest.mark.parametrize("name", sorted(CASES))
def test_multistep_schedule_agrees_with_stepwise(name: str, backend: str) -> None:
    """The default multi-step schedule (stateless nodes on all steps at once) against every node once per step:
    spikes identical, other values within 1e-6 relative, fixed-point graphs bit for bit."""
    graph, feeds = CASES[name]()
    kind, _, device = backend.partition(":")
    stepwise = run(graph, feeds, backend=kind, device=device or None, trace=True, schedule="step")
    multistep = run(graph, feeds, backend=kind, device=device or None, trace=True)
    _assert_agree(graph, stepwise, multistep)
    if any(node.level is Level.FIXED for node in graph.nodes.values()):
        for key, expected in stepwise.traces.items():
            np.testing.assert_array_equal(multistep.traces[key], expected, err_msg=key)
