"""The general tensor kinds the ONNX front end adds (spikec/ir/tensor.py, spatial.py): shapes,
parameter checks, and a bit-exact round trip through the .sir text form."""

from __future__ import annotations

import numpy as np
import pytest

from spikec.errors import VerifyError
from spikec.ir import (
    GELU,
    Bias,
    Binary,
    Constant,
    ConvTranspose,
    Gather,
    Graph,
    Input,
    LayerNorm,
    MatMul,
    Node,
    Output,
    Pad,
    Pool,
    Reduce,
    Reshape,
    Slice,
    Softmax,
    Unary,
    Where,
)
from spikec.ir.tensor import slice_range
from spikec.text import parse_graph, print_graph, to_text


def every_kind() -> Graph:
    rng = np.random.default_rng(0)
    nodes: dict[str, Node] = {
        "x": Input(shape=(2, 6, 6)),
        "pad": Pad(pads=(0, 1, 0, 0, 0, 1), value=-0.5),
        "pool": Pool(mode="avg", kernel_size=(2, 2), stride=(2, 2), pads=(0, 1, 1, 0), ceil_mode=1),
        "up": ConvTranspose(weight=rng.normal(size=(2, 3, 2, 2)), bias=np.ones(3), stride=(2, 2), pads=(1, 0, 0, 1)),
        "ln": LayerNorm(axis=1, weight=rng.normal(size=(7, 7)), bias=None, eps=1e-3),
        "gelu": GELU(approximate="tanh"),
        "u": Unary(op="leaky_relu", alpha=0.1),
        "sm": Softmax(axis=-1),
        "c": Constant(value=np.array([[0.0, -np.inf] * 3 + [0.0]])),
        "masked": Binary(op="add"),
        "cond": Binary(op="gt"),
        "w": Where(),
        "mm": MatMul(),
        "b": Bias(bias=np.full((7, 1), 0.25)),
        "g": Gather(indices=np.array([[0, 6], [3, 3]]), axis=-1),
        "s": Slice(axes=(0,), starts=(-1,), ends=(-10,), steps=(-2,)),
        "r": Reduce(op="max", axes=(-1,), keepdims=0),
        "flat": Reshape(shape=(28,)),
        "out": Output(origin="onnx:y"),
    }
    edges = [
        ("x", "pad"), ("pad", "pool"), ("pool", "up"), ("up", "ln"), ("ln", "gelu"), ("gelu", "u"), ("u", "sm"),
        ("sm", "masked"), ("c", "masked"), ("masked", "cond"), ("sm", "cond"), ("cond", "w"), ("sm", "w"),
        ("masked", "w"), ("w", "mm"), ("sm", "mm"), ("mm", "b"), ("b", "g"), ("g", "s"), ("s", "r"),
        ("r", "flat"), ("flat", "out"),
    ]  # fmt: skip
    return Graph(nodes, edges)


def test_shapes_of_every_kind() -> None:
    g = every_kind()
    expected = {"pad": (2, 7, 7), "pool": (2, 4, 4), "up": (3, 7, 7), "mm": (3, 7, 7), "g": (3, 7, 2, 2)}
    assert {k: g.types[k] for k in expected} == expected
    assert g.types["s"] == (2, 7, 2, 2) and g.types["r"] == (2, 7, 2)


def test_text_round_trip_is_bit_exact() -> None:
    g = every_kind()
    text, tensors = print_graph(g, sidecar_name="m.npz")
    back = parse_graph(text, tensors=tensors)
    assert back == g
    assert to_text(parse_graph(to_text(g))) == to_text(g)


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        (Unary(op="cube"), "is not one of"),
        (Binary(op="xor"), "is not one of"),
        (Reduce(op="mean", axes=()), "at least one axis"),
        (Gather(indices=np.array([0.5])), "must be integers"),
        (Gather(indices=np.array([-1])), ">= 0"),
        (Slice(axes=(0,), starts=(0,), ends=(1,), steps=(0,)), "must not be 0"),
        (Pad(pads=(1, -1)), ">= 0"),
        (Pool(mode="median", kernel_size=(2,)), "is not one of"),
        (Pool(mode="max", kernel_size=(2,), pads=(1,)), "must have 2 entries"),
        (ConvTranspose(weight=np.ones((3, 2, 2)), groups=2), "groups=2"),
        (LayerNorm(eps=-1.0), "eps"),
        (GELU(approximate="fast"), "approximate"),
        (Constant(value=np.array([1.0, np.nan])), "NaN"),
        (Bias(bias=np.array([np.inf])), "NaN/inf"),
    ],
)
def test_problems_are_reported(node: Node, problem: str) -> None:
    with pytest.raises(VerifyError, match=problem):
        node.verify("n")


def test_shape_errors_name_both_ends() -> None:
    nodes: dict[str, Node] = {"a": Input(shape=(3, 4)), "b": Input(shape=(5, 2)), "mm": MatMul(), "o": Output()}
    with pytest.raises(VerifyError, match=r"'a' gives \(3, 4\), 'b' gives \(5, 2\).*inner sizes 4 and 5"):
        Graph(nodes, [("a", "mm"), ("b", "mm"), ("mm", "o")])
    nodes["mm"] = Binary(op="add")
    with pytest.raises(VerifyError, match="do not broadcast"):
        Graph(nodes, [("a", "mm"), ("b", "mm"), ("mm", "o")])


@pytest.mark.parametrize(
    ("size", "start", "end", "step"),
    [(10, 2, 8, 3), (10, -1, -100, -1), (10, 100, 0, -3), (5, -2, 100, 1), (5, 0, -6, 1), (4, 3, -5, -2)],
)
def test_slice_range_is_python_slicing_with_onnx_clamping(size: int, start: int, end: int, step: int) -> None:
    py_end = None if (step < 0 and end < -size) else end  # python has no "before 0" end when counting down
    assert list(slice_range(size, start, end, step)) == list(range(size))[start:py_end:step]
