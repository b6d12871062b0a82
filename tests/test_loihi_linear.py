"""The linear nodes between two neuron layers, composed into Loihi synapses (targets/loihi2/affine.py, linear.py,
layer.py's ``realize``): for each chain real CNNs have between a spike source and the next neuron, the realized
synapses (float weights, before quantization) applied to the source plus the bias equal the chain evaluated by
the interpreter. Chains no single synapse computes are refused naming why."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spikec.interp import evaluate
from spikec.ir import Graph, Input, Output, ann, tensor
from spikec.ir.node import Node
from spikec.targets.loihi2.affine import LINEAR
from spikec.targets.loihi2.layer import realize
from spikec.targets.loihi2.linear import ConvMap, NotOneSynapse, as_matrix, compose
from spikec.targets.loihi2.signals import Affine, Signal, lift

RNG = np.random.default_rng(0)
C, H, W = 4, 8, 8


def _conv(cin: int, cout: int, k: int, **kw: object) -> ann.Conv:
    groups = int(kw.get("groups", 1))  # type: ignore[call-overload]
    return ann.Conv(weight=RNG.normal(size=(cout, cin // groups, k, k)), bias=RNG.normal(size=cout),
                    padding=(k // 2, k // 2) if kw.pop("same", True) else (0, 0), **kw)  # type: ignore[arg-type]  # fmt: skip


def _shuffle(channels: int, groups: int) -> list[Node]:
    """torchvision's channel_shuffle as the ONNX exporter writes it: Reshape, Transpose, Reshape."""
    return [ann.Reshape(shape=(groups, channels // groups, H, W)), ann.Transpose(perm=(1, 0, 2, 3)),
            ann.Reshape(shape=(channels, H, W))]  # fmt: skip


def _chain(*nodes: Node) -> tuple[dict[str, Node], list[tuple[str, str]]]:
    named = {f"n{i}": n for i, n in enumerate(nodes)}
    names = ["x", *named]
    return named, list(itertools.pairwise(names))


def _graph(nodes: dict[str, Node], edges: list[tuple[str, str]], shape: tuple[int, ...] = (C, H, W)) -> Graph:
    last = list(nodes)[-1]
    return Graph({"x": Input(shape=shape), **nodes, "y": Output()}, [*edges, (last, "y")])


def _residual_then_pointwise() -> Graph:
    """MobileNetV2's linear bottleneck: x + project(h) with no ReLU, read by the next block's 1×1 expand."""
    nodes = {"a": _conv(C, C, 1), "sum": ann.Add(), "expand": _conv(C, 8, 1)}
    return _graph(nodes, [("x", "a"), ("a", "sum"), ("x", "sum"), ("sum", "expand")])


def _dense_concat() -> Graph:
    """DenseNet: concat(x, conv3x3(x)) -> BatchNorm (a depthwise 1×1 after fold-batchnorm)."""
    nodes = {"c": _conv(C, 2, 3), "cat": ann.Concat(), "bn": _conv(C + 2, C + 2, 1, groups=C + 2)}
    return _graph(nodes, [("x", "cat"), ("x", "c"), ("c", "cat"), ("cat", "bn")])


def _shuffle_unit() -> Graph:
    """ShuffleNetV2: concat of two branches, channel shuffle, a depthwise 3×3 stride 2 (no ReLU), then a 1×1."""
    shuffle = dict(zip(("r1", "t", "r2"), _shuffle(2 * C, 2), strict=True))
    dw = _conv(2 * C, 2 * C, 3, groups=2 * C, stride=(2, 2))
    nodes = {"b": _conv(C, C, 1), "cat": ann.Concat(), **shuffle, "dw": dw, "pw": _conv(2 * C, 6, 1)}
    edges = [("x", "cat"), ("x", "b"), ("b", "cat"), ("cat", "r1"), ("r1", "t"), ("t", "r2"), ("r2", "dw")]
    edges.append(("dw", "pw"))
    return _graph(nodes, edges)


CHAINS = {
    "pool then padded conv": lambda: _graph(*_chain(ann.SumPool(kernel_size=(2, 2)), _conv(C, 3, 3))),
    "conv then avgpool (DenseNet transition)": lambda: _graph(*_chain(_conv(C, 3, 1), ann.AvgPool(kernel_size=(2, 2)))),
    "strided conv then unpadded conv": lambda: _graph(
        *_chain(_conv(C, 3, 3, stride=(2, 2), same=False), _conv(3, 2, 3, same=False))
    ),
    "depthwise then pointwise": lambda: _graph(*_chain(_conv(C, C, 3, groups=C), _conv(C, 5, 1))),
    "grouped then pointwise": lambda: _graph(*_chain(_conv(C, C, 3, groups=2, dilation=(2, 2)), _conv(C, 3, 1))),
    "global average pool then classifier": lambda: _graph(
        *_chain(ann.AvgPool(kernel_size=(H, W)), ann.Flatten(), ann.Dense(weight=RNG.normal(size=(5, C))))
    ),
    "mean over H, W then classifier (ShuffleNet)": lambda: _graph(
        *_chain(tensor.Reduce(op="mean", axes=(1, 2), keepdims=0), ann.Dense(weight=RNG.normal(size=(5, C))))
    ),
    "conv, flatten, dense": lambda: _graph(
        *_chain(_conv(C, 2, 3, stride=(2, 2)), ann.Flatten(), ann.Dense(weight=RNG.normal(size=(3, 2 * 4 * 4))))
    ),
    "channel slice then conv": lambda: _graph(*_chain(tensor.Slice(axes=(0,), starts=(1,), ends=(3,)), _conv(2, 3, 3))),
    "per-channel scale then pool then flatten": lambda: _graph(
        *_chain(ann.Scale(scale=RNG.normal(size=(C, 1, 1))), ann.SumPool(kernel_size=(4, 4)), ann.Flatten())
    ),
    "channel shuffle": lambda: _graph(*_chain(*_shuffle(C, 2))),
    "pool of an odd map, flatten, dense (rows the pool drops)": lambda: _graph(
        *_chain(ann.AvgPool(kernel_size=(2, 2)), ann.Flatten(), ann.Dense(weight=RNG.normal(size=(3, 3 * 4 * 4)))),
        shape=(3, 9, 9),
    ),
    "pool of an odd map then unpadded conv": lambda: _graph(
        *_chain(ann.SumPool(kernel_size=(2, 2)), _conv(3, 2, 3, same=False)), shape=(3, 9, 9)
    ),
    "MobileNetV2 residual into the next 1×1": _residual_then_pointwise,
    "DenseNet concat into BatchNorm": _dense_concat,
    "ShuffleNet unit": _shuffle_unit,
}


def _value(graph: Graph) -> Affine:
    """The value the Output reads, from the input as a spike source (the quantizer's rules, no quantization)."""
    values: dict[str, object] = {"x": Signal("x", graph.types["x"], 1.0, 0)}
    for name in graph.order:
        node = graph.nodes[name]
        if name == "x" or isinstance(node, Output):
            continue
        edges = graph.in_edges(name)
        values[name] = LINEAR[type(node)](node, [values[e.src] for e in edges], [graph.types[e.src] for e in edges],
                                          graph.types[name])  # type: ignore[arg-type]  # fmt: skip
    (edge,) = graph.in_edges("y")
    return lift(values[edge.src])  # type: ignore[arg-type]


def _apply(value: Affine, x: np.ndarray) -> np.ndarray:
    total = np.zeros((x.shape[0], *value.shape))
    for syn in realize(value, value.shape, lambda why: AssertionError(why)):
        if syn.geometry is None:
            total += (x.reshape(x.shape[0], -1) @ syn.weight.T).reshape(total.shape)
            continue
        g = syn.geometry
        conv = ann.Conv(weight=syn.weight, stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups)
        total += evaluate(_graph({"c": conv}, [("x", "c")], x.shape[1:]), x).outputs["y"]
    return total + (0.0 if value.bias is None else value.bias)


@pytest.mark.parametrize("chain", list(CHAINS))
def test_composed_synapses_equal_the_chain(chain: str) -> None:
    graph = CHAINS[chain]()
    x = RNG.random((3, *graph.types["x"]))
    value = _value(graph)
    np.testing.assert_allclose(_apply(value, x), evaluate(graph, x).outputs["y"], rtol=1e-10, atol=1e-10)


def test_depthwise_stays_depthwise_and_a_concat_splits_the_conv() -> None:
    """After composition the groups are found again (memory of a depthwise conv is C·k², not C²·k²); a conv
    reading a Concat of two sources becomes one synapse per source with its columns of the weights."""
    (syn,) = realize(_value(_graph(*_chain(ann.Scale(scale=RNG.normal(size=(C, 1, 1))), _conv(C, C, 3, groups=C)))),
                     (C, H, W), AssertionError)  # fmt: skip
    assert syn.geometry is not None and syn.geometry.groups == C and syn.weight.shape == (C, 1, 3, 3)
    nodes = {"a": _conv(C, 2, 1), "cat": ann.Concat(), "conv": _conv(C + 2, 3, 3)}
    graph = _graph(nodes, [("x", "a"), ("x", "cat"), ("a", "cat"), ("cat", "conv")])
    value = _value(graph)
    assert len(value.terms) == 2  # x directly, and x through a: two maps of one source, merged when realized
    (merged,) = realize(value, (3, H, W), AssertionError)
    assert merged.geometry is not None and merged.geometry.padding == (1, 1)


def test_as_matrix_is_the_convolution() -> None:
    m = ConvMap(RNG.normal(size=(4, 2, 3, 3)), (4, 7, 6), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    x = RNG.random((2, 4, 7, 6))
    conv = ann.Conv(weight=m.weight, stride=m.stride, padding=m.padding, dilation=m.dilation, groups=2)
    want = evaluate(_graph({"c": conv}, [("x", "c")], (4, 7, 6)), x).outputs["y"].reshape(2, -1)
    np.testing.assert_allclose(x.reshape(2, -1) @ as_matrix(m).T, want, rtol=1e-12)


def test_chains_that_are_not_one_synapse_are_refused() -> None:
    with pytest.raises(NotOneSynapse, match=r"padded correlation .* after another one"):
        _value(_graph(*_chain(_conv(C, C, 3), _conv(C, 2, 3))))
    with pytest.raises(NotOneSynapse, match=r"padded correlation .* after another one"):  # the pool drops a row
        _value(_graph(*_chain(ann.SumPool(kernel_size=(2, 2)), _conv(3, 2, 3)), shape=(3, 9, 9)))
    with pytest.raises(NotOneSynapse, match=r"neither a channel permutation"):
        _value(_graph(*_chain(ann.Transpose(perm=(0, 2, 1)), _conv(C, 2, 1))))
    with pytest.raises(NotOneSynapse, match=r"concatenates on axis 1"):
        graph = _graph({"cat": ann.Concat(axis=1)}, [("x", "cat"), ("x", "cat")])
        _value(graph)
    with pytest.raises(NotOneSynapse, match="two dilated"):
        compose(ConvMap(np.ones((1, 1, 2, 2)), (1, 4, 4), dilation=(2, 2)), ConvMap(np.ones((1, 1, 2, 2)), (1, 5, 5)))
