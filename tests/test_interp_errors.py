"""Interpreter failures name the node, its kind and origin; bad user inputs are InputErrors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spikec.errors import InputError, InterpError, SpikecError
from spikec.interp import KERNELS, run
from spikec.interp.kernels import KernelContext
from spikec.ir import LIF, Delay, Dense, Graph, Input, Node, Output, ReLU

BACKENDS = ["numpy", "torch"]


def _graph(dt: float = 1e-3, **overrides: Node) -> Graph:
    nodes: dict[str, Node] = {
        "x": Input(shape=(3, 4)),
        "act": ReLU(origin="model.onnx:Relu_7"),
        "fc": Dense(weight=np.ones((2, 4))),
        "lif": LIF(tau=np.array(5e-3)),
        "out": Output(),
    }
    nodes.update(overrides)
    names = list(nodes)
    return Graph(nodes, list(itertools.pairwise(names)), dt=dt)


def _run(graph: Graph, x: object, backend: str = "numpy", **kwargs: object) -> object:
    if backend == "torch":
        kwargs.setdefault("device", "cpu")
    return run(graph, x, backend=backend, **kwargs)  # type: ignore[arg-type]


GOOD = np.ones((5, 2, 3, 4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_failure_names_node_kind_and_origin(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(node: Node, x: object, state: dict, ctx: KernelContext) -> tuple:
        raise ValueError("boom")

    monkeypatch.setitem(KERNELS, ReLU, broken)
    with pytest.raises(InterpError) as info:
        _run(_graph(), GOOD, backend)
    message = str(info.value)
    assert "while executing node 'act' (ReLU) from model.onnx:Relu_7" in message
    assert "ValueError: boom" in message
    assert isinstance(info.value.__cause__, ValueError)
    assert isinstance(info.value, SpikecError)


def test_kernel_failure_from_the_backend_itself_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A genuine numpy error inside a kernel (here: a weight that no longer fits) is wrapped too."""
    graph = _graph()
    wrong = Dense(weight=np.ones((2, 5)))
    original = KERNELS[Dense]

    def swapped(node: Node, x: object, state: dict, ctx: KernelContext) -> tuple:
        ctx.node = wrong  # parameters are read from ctx.node
        return original(wrong, x, state, ctx)

    monkeypatch.setitem(KERNELS, Dense, swapped)
    with pytest.raises(InterpError, match=r"while executing node 'fc' \(Dense\): ValueError"):
        run(graph, GOOD)


def test_missing_kernel_names_the_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(KERNELS, ReLU)
    with pytest.raises(InterpError, match=r"node 'act' \(ReLU\) from model.onnx:Relu_7: no interpreter kernel"):
        run(_graph(), GOOD)


@pytest.mark.parametrize(
    "shape",
    [(5, 2, 4, 3), (5, 2, 12), (5, 3), (5,), (5, 2, 3, 4, 1)],
)
def test_wrong_input_shape_names_input_and_layout(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError) as info:
        run(_graph(), np.ones(shape))
    message = str(info.value)
    assert "input 'x'" in message
    assert f"has shape {shape}" in message
    assert "(T, batch, 3, 4)" in message and "(T, 3, 4)" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected(bad: float) -> None:
    x = GOOD.copy()
    x[2, 1, 0, 3] = bad
    with pytest.raises(InputError, match="input 'x' holds NaN or inf"):
        run(_graph(), x)


def test_non_numeric_input_is_rejected() -> None:
    with pytest.raises(InputError, match=r"input 'x': dtype .* is not numeric"):
        run(_graph(), np.full((5, 3, 4), "a"))


def test_inputs_by_name_must_match_the_graph() -> None:
    with pytest.raises(InputError, match=r"\['y'\] are not graph inputs and inputs \['x'\] are missing"):
        run(_graph(), {"y": GOOD})
    with pytest.raises(InputError, match=r"^inputs \['x'\] are missing; graph inputs: \['x'\]"):
        run(_graph(), {})
    with pytest.raises(InputError, match="steps must be >= 1"):
        run(_graph(), GOOD, steps=0)


def test_integer_and_bool_inputs_are_accepted() -> None:
    a = run(_graph(), GOOD.astype(np.int32)).outputs["out"]
    b = run(_graph(), GOOD.astype(bool)).outputs["out"]
    c = run(_graph(), GOOD).outputs["out"]
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("backend", BACKENDS)
def test_delay_not_a_whole_number_of_steps_names_the_node(backend: str) -> None:
    graph = _graph(act=Delay(delay=np.array([0.0, 1e-3, 1.5e-3, 2e-3]), origin="net.py:12"))
    with pytest.raises(InterpError) as info:
        _run(graph, GOOD, backend)
    message = str(info.value)
    assert "while executing node 'act' (Delay) from net.py:12" in message
    assert "not a whole number of steps of dt=0.001" in message
    assert "0.0015" in message
    # the same delays are fine at a finer dt
    _run(graph.replace(dt=5e-4), GOOD, backend)


def test_trace_of_an_unknown_node_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"cannot trace \['nope'\]: no such nodes; nodes: \['x', 'act'"):
        run(_graph(), GOOD, trace=["lif", "nope"])
    with pytest.raises(InputError, match=r"cannot trace \['lif.v'\]"):  # states come with their node
        run(_graph(), GOOD, trace=["lif.v"])


def test_unknown_backend() -> None:
    with pytest.raises(SpikecError, match="unknown interpreter backend 'jax'"):
        run(_graph(), GOOD, backend="jax")
