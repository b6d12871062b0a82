"""The IR: node kinds are frozen and registered, graphs verify structure and shapes on construction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spikec.errors import VerifyError
from spikec.ir import (
    IF,
    LIF,
    NODE_KINDS,
    Add,
    Concat,
    Conv,
    Dense,
    Edge,
    Flatten,
    Graph,
    Input,
    Output,
    Subgraph,
    SumPool,
)

REQUIRED_KINDS = {
    "Input",
    "Output",
    "Subgraph",
    "Dense",
    "Conv",
    "AvgPool",
    "SumPool",
    "MaxPool",
    "Flatten",
    "Reshape",
    "Transpose",
    "Add",
    "Concat",
    "Scale",
    "ReLU",
    "Clip",
    "IF",
    "LIF",
    "CubaLIF",
    "LI",
    "CubaLI",
    "I",
    "Threshold",
    "Delay",
}


def test_every_required_kind_is_registered_with_docs() -> None:
    assert set(NODE_KINDS) >= REQUIRED_KINDS
    for kind, cls in NODE_KINDS.items():
        assert cls.__doc__ and len(cls.__doc__) > 20, f"{kind} needs a docstring with its equations"
        assert all(f.kw_only for f in dataclasses.fields(cls)), kind


def test_nodes_are_frozen_with_read_only_arrays() -> None:
    w = np.ones((2, 3))
    node = Dense(weight=w)
    w[0, 0] = 5  # the node holds a copy
    assert node.weight[0, 0] == 1
    with pytest.raises(ValueError):
        node.weight[0, 0] = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.weight = w  # type: ignore[misc]
    with pytest.raises(TypeError):
        Dense(np.ones((2, 2)))  # type: ignore[misc]  # keyword-only


def test_shape_inference_through_conv_pool_flatten_dense() -> None:
    g = Graph(
        {
            "in": Input(shape=(2, 9, 9)),
            "c": Conv(weight=np.ones((4, 1, 3, 3)), stride=(2, 2), padding=(1, 1), groups=2),
            "p": SumPool(kernel_size=(2, 2)),
            "f": Flatten(),
            "d": Dense(weight=np.ones((3, 16))),
            "o": Output(),
        },
        [("in", "c"), ("c", "p"), ("p", "f"), ("f", "d"), ("d", "o")],
    )
    assert g.types == {"in": (2, 9, 9), "c": (4, 5, 5), "p": (4, 2, 2), "f": (16,), "d": (3,), "o": (3,)}


def test_edge_shape_mismatch_names_both_ends() -> None:
    with pytest.raises(VerifyError, match=r"'fc' \(Dense\).*'in' gives \(5,\).*last axis is 4"):
        Graph(
            {"in": Input(shape=(5,)), "fc": Dense(weight=np.ones((3, 4))), "o": Output()}, [("in", "fc"), ("fc", "o")]
        )


def test_summed_edges_must_agree() -> None:
    with pytest.raises(
        VerifyError, match=r"edges into node 'add' \(Add\) disagree: 'a' gives \(2,\) but 'b' gives \(3,\)"
    ):
        Graph(
            {"a": Input(shape=(2,)), "b": Input(shape=(3,)), "add": Add(), "o": Output()},
            [("a", "add"), ("b", "add"), ("add", "o")],
        )


def test_concat_keeps_edge_order() -> None:
    g = Graph(
        {"a": Input(shape=(2, 4)), "b": Input(shape=(3, 4)), "cat": Concat(axis=0), "o": Output()},
        [("b", "cat"), ("a", "cat"), ("cat", "o")],
    )
    assert g.types["cat"] == (5, 4)
    assert [e.src for e in g.in_edges("cat")] == ["b", "a"]


def test_dangling_and_unknown_nodes() -> None:
    with pytest.raises(VerifyError, match=r"node 'x' \(IF\) has no outgoing edge"):
        Graph({"i": Input(shape=(1,)), "x": IF(), "o": Output()}, [("i", "x"), ("i", "o")])
    with pytest.raises(VerifyError, match=r"node 'x' \(IF\) has no incoming edge"):
        Graph({"i": Input(shape=(1,)), "x": IF(), "o": Output()}, [("x", "o"), ("i", "o")])
    with pytest.raises(VerifyError, match="no node named 'ghost'"):
        Graph({"i": Input(shape=(1,)), "o": Output()}, [("i", "ghost"), ("i", "o")])
    with pytest.raises(VerifyError, match="no Output node"):
        Graph({"i": Input(shape=(1,)), "x": IF()}, [("i", "x")])


def test_forward_cycle_needs_a_recurrent_edge() -> None:
    nodes = {"i": Input(shape=(2,)), "n": LIF(tau=np.ones(1)), "w": Dense(weight=np.eye(2)), "o": Output()}
    with pytest.raises(VerifyError, match=r"cycle.*mark the feedback edge recurrent"):
        Graph(nodes, [("i", "n"), ("n", "w"), ("w", "n"), ("n", "o")])
    g = Graph(nodes, [("i", "n"), ("n", "w"), Edge("w", "n", recurrent=True), ("n", "o")])
    assert g.order == ("i", "n", "w", "o")


def test_bad_parameters_name_the_node() -> None:
    with pytest.raises(VerifyError, match=r"node 'n' \(LIF\).*'tau' must be non-zero"):
        Graph({"i": Input(shape=(2,)), "n": LIF(tau=np.array([0.0])), "o": Output()}, [("i", "n"), ("n", "o")])
    with pytest.raises(VerifyError, match=r"node 'n' \(IF\).*reset 'sideways'"):
        Graph({"i": Input(shape=(2,)), "n": IF(reset="sideways"), "o": Output()}, [("i", "n"), ("n", "o")])
    with pytest.raises(
        VerifyError,
        match=r"node 'n' \(IF\).*'v_threshold' of shape \(3,\) does not broadcast to the input shape \(2,\)",
    ):
        Graph({"i": Input(shape=(2,)), "n": IF(v_threshold=np.ones(3)), "o": Output()}, [("i", "n"), ("n", "o")])


def test_immutable_updates() -> None:
    g = Graph({"i": Input(shape=(2,)), "n": IF(), "o": Output()}, [("i", "n"), ("n", "o")])
    g2 = g.with_node("n", IF(v_threshold=np.array(2.0)))
    assert float(g.nodes["n"].v_threshold) == 1.0 and float(g2.nodes["n"].v_threshold) == 2.0  # type: ignore[attr-defined]
    assert g2.replace(dt=1e-3).dt == 1e-3 and g.dt == 1e-4
    with pytest.raises(TypeError):
        g.nodes["n"] = IF()  # type: ignore[index]


def test_subgraph_inlines_with_recurrent_edges() -> None:
    inner = Graph({"i": Input(shape=(3,)), "l": LIF(tau=np.ones(1)), "o": Output()}, [("i", "l"), ("l", "o")])
    g = Graph(
        {"in": Input(shape=(3,)), "s": Subgraph(graph=inner), "rec": Dense(weight=np.eye(3)), "o": Output()},
        [("in", "s"), ("s", "o"), ("s", "rec"), Edge("rec", "s", recurrent=True)],
    )
    flat = g.inline_subgraphs()
    assert set(flat.nodes) == {"in", "s.l", "rec", "o"}
    assert Edge("rec", "s.l", recurrent=True) in flat.edges


def test_recurrent_edge_into_concat_is_rejected() -> None:
    nodes = {"x": Input(shape=(2,)), "cat": Concat(axis=0), "fc": Dense(weight=np.ones((2, 4))), "o": Output()}
    with pytest.raises(VerifyError, match=r"node 'cat' \(Concat\).*cannot take a recurrent edge"):
        Graph(nodes, [("x", "cat"), Edge("fc", "cat", recurrent=True), ("cat", "fc"), ("fc", "o")])
