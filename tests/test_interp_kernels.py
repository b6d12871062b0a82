"""Each interpreter kernel against an independent reference.

Linear algebra and windows are checked against numpy / ``torch.nn.functional``; neurons against
plain scalar loops over the equations in the kind docstrings of spikec/ir/snn.py. Every case runs
on the numpy reference and on the torch backend (CPU): both must match the reference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

from spikec.interp import run
from spikec.ir import (
    IF,
    LI,
    LIF,
    Add,
    AvgPool,
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
    MaxPool,
    Node,
    Output,
    ReLU,
    Reshape,
    Scale,
    Subgraph,
    SumPool,
    Threshold,
    Transpose,
)

F = torch.nn.functional

BACKENDS = ["numpy", "torch"]
T, B = 12, 3


def chain(shape: tuple[int, ...], *nodes: Node, dt: float = 1e-3) -> Graph:
    """x -> n0 -> n1 -> ... -> out, nodes named n0, n1, ..."""
    named: dict[str, Node] = {"x": Input(shape=shape)}
    named.update({f"n{i}": n for i, n in enumerate(nodes)})
    named["out"] = Output()
    names = list(named)
    return Graph(named, list(itertools.pairwise(names)), dt=dt)


def run_chain(
    backend: str, x: np.ndarray, *nodes: Node, dt: float = 1e-3, trace: bool = True
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    g = chain(x.shape[2:], *nodes, dt=dt)
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    r = run(g, x, backend=backend, trace=trace, **kwargs)
    assert r.outputs["out"].shape == (x.shape[0], x.shape[1], *g.types["out"])
    return r.outputs["out"], r.traces


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- ann ----------------------------------------------------------------------------------------
def test_dense_is_a_matmul_over_the_last_axis(backend: str) -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 5)), rng.normal(size=4)
    x = rng.normal(size=(T, B, 5))
    y, _ = run_chain(backend, x, Dense(weight=w, bias=b))
    expected = np.einsum("tbi,oi->tbo", x, w) + b
    close(y, expected)
    # leading per-sample axes pass through; no bias
    x2 = rng.normal(size=(T, B, 7, 5))
    y2, _ = run_chain(backend, x2, Dense(weight=w))
    expected2 = np.array([[[w @ x2[t, n, k] for k in range(7)] for n in range(B)] for t in range(T)])
    close(y2, expected2)


CONV_CASES = [
    # (nd, c_in, c_out, kernel, stride, padding, dilation, groups, spatial)
    (1, 3, 4, (3,), (1,), (0,), (1,), 1, (11,)),
    (1, 4, 6, (3,), (2,), (2,), (2,), 2, (13,)),
    (1, 4, 4, (1,), (3,), (1,), (1,), 4, (10,)),
    (2, 3, 5, (3, 3), (1, 1), (0, 0), (1, 1), 1, (8, 9)),
    (2, 4, 6, (3, 2), (2, 1), (1, 2), (1, 2), 2, (9, 8)),
    (2, 6, 6, (3, 3), (1, 2), (3, 1), (2, 1), 3, (7, 10)),
    (2, 4, 8, (2, 2), (2, 2), (1, 1), (1, 1), 4, (6, 6)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-s{c[4]}p{c[5]}d{c[6]}g{c[7]}")
@pytest.mark.parametrize("bias", [True, False])
def test_conv_matches_torch_functional(backend: str, case: tuple, bias: bool) -> None:
    nd, c_in, c_out, k, s, p, d, groups, spatial = case
    rng = np.random.default_rng(1)
    w = rng.normal(size=(c_out, c_in // groups, *k))
    b = rng.normal(size=c_out) if bias else None
    x = rng.normal(size=(4, B, c_in, *spatial))
    node = Conv(weight=w, bias=b, stride=s, padding=p, dilation=d, groups=groups)
    y, _ = run_chain(backend, x, node)
    conv = F.conv1d if nd == 1 else F.conv2d
    tb = None if b is None else torch.from_numpy(b)
    ref = conv(torch.from_numpy(x.reshape(-1, c_in, *spatial)), torch.from_numpy(w), tb, s, p, d, groups).numpy()
    close(y, ref.reshape(4, B, *ref.shape[1:]))


def test_synapses_compute_a_repeated_input_once_and_a_silent_one_as_the_bias() -> None:
    from spikec.interp.backend import NumpyBackend
    from spikec.interp.interpreter import Interpreter

    class Counting(NumpyBackend):
        calls = 0

        def conv(self, *args: object, **kwargs: object) -> np.ndarray:
            Counting.calls += 1
            return super().conv(*args, **kwargs)  # type: ignore[arg-type]

    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)
    g = chain((3, 6, 6), Conv(weight=w, bias=b, padding=(1, 1)))
    sample = rng.normal(size=(B, 3, 6, 6))

    def reference(x: np.ndarray) -> np.ndarray:
        return F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1).numpy()

    direct = np.broadcast_to(sample, (T, *sample.shape))  # a direct input: the same sample every step
    out, _ = Interpreter(g, Counting()).run({"x": direct}, T)
    assert Counting.calls == 1
    close(out["out"], np.broadcast_to(reference(sample), (T, *out["out"].shape[1:])))
    # silent steps (every product 0: the bias, computed without the product), then spikes, then silence again
    spikes = (rng.random(size=(3, B, 3, 6, 6)) < 0.1).astype(np.float64)
    trains = np.concatenate([np.zeros((2, *sample.shape)), spikes, np.zeros((2, *sample.shape))])
    out, _ = Interpreter(g, NumpyBackend()).run({"x": trains}, len(trains))
    close(out["out"], np.stack([reference(x) for x in trains]))
    assert np.array_equal(out["out"][-1], np.broadcast_to(b.reshape(5, 1, 1), out["out"][-1].shape))


POOL_CASES = [
    # (kernel, stride, padding, spatial)
    ((2,), (2,), (0,), (9,)),
    ((3,), (1,), (1,), (8,)),
    ((3,), (2,), (2,), (7,)),  # padding wider than half the kernel
    ((2, 2), (2, 2), (0, 0), (6, 7)),
    ((3, 3), (2, 1), (1, 1), (7, 6)),
    ((3, 2), (1, 2), (1, 0), (5, 8)),
    ((2, 3), (1, 1), (1, 2), (4, 5)),  # padding wider than half the kernel on both axes
]


def _torch_pool(mode: str, x: np.ndarray, k: tuple, s: tuple, p: tuple) -> np.ndarray:
    """Reference pooling on (N, C, *spatial) with torch; padding is applied explicitly when torch
    would refuse it (more than half the kernel), which keeps the reference meaning the same."""
    nd = len(k)
    t = torch.from_numpy(x)
    if any(2 * pi > ki for pi, ki in zip(p, k, strict=True)):
        pads = [w for width in reversed(p) for w in (width, width)]
        t = F.pad(t, pads, value=-math.inf if mode == "max" else 0.0)
        p = (0,) * nd
    if mode == "max":
        return (F.max_pool1d if nd == 1 else F.max_pool2d)(t, k, s, p).numpy()
    avg = (F.avg_pool1d if nd == 1 else F.avg_pool2d)(t, k, s, p, count_include_pad=True).numpy()
    return avg * math.prod(k) if mode == "sum" else avg


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"k{c[0]}s{c[1]}p{c[2]}")
@pytest.mark.parametrize(("mode", "kind"), [("sum", SumPool), ("avg", AvgPool), ("max", MaxPool)])
def test_pool_matches_torch_functional(backend: str, case: tuple, mode: str, kind: type) -> None:
    k, s, p, spatial = case
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, B, 3, *spatial))
    if mode == "max":
        x = x - 10.0  # all negative: a zero-padded max would be wrong, padding must never win
    y, _ = run_chain(backend, x, kind(kernel_size=k, stride=s, padding=p))
    ref = _torch_pool(mode, x.reshape(-1, 3, *spatial), k, s, p)
    close(y, ref.reshape(3, B, *ref.shape[1:]))


def test_sum_pool_of_spikes_is_an_exact_count(backend: str) -> None:
    """Window sums of 0/1 spikes are exact integers (no avg × area rounding), on every backend."""
    rng = np.random.default_rng(3)
    x = (rng.random(size=(20, B, 2, 10, 10)) < 0.3).astype(np.float64)
    y, _ = run_chain(backend, x, SumPool(kernel_size=(5, 5)))
    counts = x.reshape(20, B, 2, 2, 5, 2, 5).sum(axis=(4, 6))
    np.testing.assert_array_equal(y, counts)


def test_flatten_reshape_transpose(backend: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(T, B, 2, 3, 4))
    y, _ = run_chain(backend, x, Flatten())
    np.testing.assert_array_equal(y, x.reshape(T, B, 24))
    y, _ = run_chain(backend, x, Flatten(start_dim=1, end_dim=-1))
    np.testing.assert_array_equal(y, x.reshape(T, B, 2, 12))
    y, _ = run_chain(backend, x, Flatten(start_dim=0, end_dim=1))
    np.testing.assert_array_equal(y, x.reshape(T, B, 6, 4))
    y, _ = run_chain(backend, x, Reshape(shape=(4, 6)))
    np.testing.assert_array_equal(y, x.reshape(T, B, 4, 6))
    y, _ = run_chain(backend, x, Transpose(perm=(2, 0, 1)))
    np.testing.assert_array_equal(y, np.stack([[x[t, n].transpose(2, 0, 1) for n in range(B)] for t in range(T)]))
    assert y.shape == (T, B, 4, 2, 3)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_joins_edges_in_edge_order(backend: str, axis: int) -> None:
    rng = np.random.default_rng(5)
    shapes = {"a": [2, 3], "b": [2, 3], "c": [2, 3]}
    sizes = {"a": 1, "b": 2, "c": 3}
    for name in shapes:
        shapes[name][axis] = sizes[name]
    nodes: dict[str, Node] = {n: Input(shape=tuple(s)) for n, s in shapes.items()}
    nodes |= {"cat": Concat(axis=axis), "out": Output()}
    edges = [("c", "cat"), ("a", "cat"), ("b", "cat"), ("cat", "out")]  # c first: edge order rules
    feeds = {n: rng.normal(size=(T, B, *s)) for n, s in shapes.items()}
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    y = run(Graph(nodes, edges), feeds, backend=backend, **kwargs).outputs["out"]
    ax = axis % 2 + 2
    np.testing.assert_array_equal(y, np.concatenate([feeds["c"], feeds["a"], feeds["b"]], axis=ax))


def test_scale_relu_clip(backend: str) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(T, B, 3, 4))
    s = rng.normal(size=(3, 1))
    y, _ = run_chain(backend, x, Scale(scale=s))
    np.testing.assert_array_equal(y, x * s)
    y, _ = run_chain(backend, x, ReLU())
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0.0))
    y, _ = run_chain(backend, x, Clip(min=-0.5, max=0.25))
    np.testing.assert_array_equal(y, np.minimum(np.maximum(x, -0.5), 0.25))
    y, _ = run_chain(backend, x, Clip(max=0.1))
    np.testing.assert_array_equal(y, np.minimum(x, 0.1))
    y, _ = run_chain(backend, x, Clip(min=0.1))
    np.testing.assert_array_equal(y, np.maximum(x, 0.1))


def test_several_edges_into_a_node_are_summed(backend: str) -> None:
    rng = np.random.default_rng(7)
    w = rng.normal(size=(3, 3))
    nodes: dict[str, Node] = {
        "a": Input(shape=(3,)),
        "b": Input(shape=(3,)),
        "r": ReLU(),
        "add": Add(),
        "id": Identity(),
        "dense": Dense(weight=w),
        "out": Output(),
    }
    edges = [
        ("a", "add"),
        ("b", "add"),
        ("a", "r"),
        ("r", "add"),  # Add of three edges
        ("a", "dense"),
        ("add", "dense"),  # a Dense fed by two edges sums them first
        ("b", "id"),
        ("dense", "id"),  # an Identity too
        ("id", "out"),
        ("add", "out"),
    ]  # and so does an Output
    feeds = {"a": rng.normal(size=(T, B, 3)), "b": rng.normal(size=(T, B, 3))}
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    r = run(Graph(nodes, edges), feeds, backend=backend, trace=["add", "dense", "id"], **kwargs)
    add = feeds["a"] + feeds["b"] + np.maximum(feeds["a"], 0)
    close(r.traces["add"], add)
    dense = np.einsum("tbi,oi->tbo", feeds["a"] + add, w)
    close(r.traces["dense"], dense)
    close(r.traces["id"], feeds["b"] + dense)
    close(r.outputs["out"], feeds["b"] + dense + add)


# -- snn: scalar loops over the documented equations -------------------------------------------
def _scalar_loop(
    x: np.ndarray, params: dict[str, np.ndarray], step: Callable[..., tuple[float, ...]], n_state: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run ``step(x, *state, **params) -> (y, *state)`` element by element, with Python floats.

    Returns y (T, B, *shape) and each state variable after the step (T, B, *shape).
    """
    steps, batch, *shape = x.shape
    y = np.zeros_like(x)
    states = [np.zeros_like(x) for _ in range(n_state)]
    for n in range(batch):
        for idx in np.ndindex(*shape):
            p = {k: float(np.broadcast_to(v, shape)[idx]) for k, v in params.items()}
            state = [0.0] * n_state
            for t in range(steps):
                out, *state = step(float(x[(t, n, *idx)]), *state, **p)
                y[(t, n, *idx)] = out
                for j, s in enumerate(state):
                    states[j][(t, n, *idx)] = s
    return y, states


def _reset(v: float, z: float, how: str, v_th: float, v_reset: float) -> float:
    if not z:
        return v
    if how == "value":
        return v_reset
    if how == "subtract":
        return v - v_th
    return v


def _ref_if(x: float, v: float, *, r: float, v_threshold: float, v_reset: float, how: str) -> tuple:
    v = v + r * x
    z = 1.0 if v > v_threshold else 0.0
    return z, _reset(v, z, how, v_threshold, v_reset)


def _ref_lif(
    x: float,
    v: float,
    *,
    dt: float,
    tau: float,
    r: float,
    v_leak: float,
    v_threshold: float,
    v_reset: float,
    how: str,
) -> tuple:
    v = v + dt / tau * (v_leak - v) + dt / tau * r * x
    z = 1.0 if v > v_threshold else 0.0
    return z, _reset(v, z, how, v_threshold, v_reset)


def _ref_cuba_lif(
    x: float,
    i: float,
    v: float,
    *,
    dt: float,
    tau_syn: float,
    tau_mem: float,
    r: float,
    v_leak: float,
    v_threshold: float,
    v_reset: float,
    w_in: float,
    how: str,
) -> tuple:
    i = i + dt / tau_syn * (w_in * x - i)  # the synapse first ...
    v = v + dt / tau_mem * (v_leak - v + r * i)  # ... then the membrane sees the new current
    z = 1.0 if v > v_threshold else 0.0
    return z, i, _reset(v, z, how, v_threshold, v_reset)


RESETS = ["value", "subtract", "none"]
SHAPE = (2, 3)


def _params(rng: np.random.Generator, **ranges: tuple[float, float]) -> dict[str, np.ndarray]:
    """Per-element parameters for some fields (broadcast over batch), scalars for the others."""
    out = {}
    for j, (name, (lo, hi)) in enumerate(ranges.items()):
        shape = (SHAPE[1],) if j % 2 else SHAPE  # alternate full and broadcast shapes
        out[name] = rng.uniform(lo, hi, size=shape)
    return out


def _check_spikes(z: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_array_equal(z, ref)
    assert 0 < z.sum() < z.size, "the case should spike somewhere, but not everywhere"


@pytest.mark.parametrize("how", RESETS)
def test_if_matches_scalar_loop(backend: str, how: str) -> None:
    rng = np.random.default_rng(10)
    p = _params(rng, r=(0.5, 1.5), v_threshold=(0.8, 1.5), v_reset=(-0.3, 0.2))
    x = rng.uniform(-0.2, 0.6, size=(30, B, *SHAPE))
    z, traces = run_chain(backend, x, IF(reset=how, **p))
    ref_z, (ref_v,) = _scalar_loop(x, p, lambda x, v, **q: _ref_if(x, v, how=how, **q), 1)
    _check_spikes(z, ref_z)
    close(traces["n0.v"], ref_v)


def test_if_fires_strictly_above_threshold(backend: str) -> None:
    x = np.full((4, 1, 1), 0.5)  # v: 0.5, 1.0 (== threshold: no spike), 1.5 (spike), 0.5
    z, traces = run_chain(backend, x, IF(v_threshold=np.array(1.0)))
    np.testing.assert_array_equal(z[:, 0, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(traces["n0.v"][:, 0, 0], [0.5, 1.0, 0.0, 0.5])


@pytest.mark.parametrize("how", RESETS)
def test_lif_matches_scalar_loop(backend: str, how: str) -> None:
    dt = 1e-3
    rng = np.random.default_rng(11)
    p = _params(
        rng,
        tau=(4e-3, 2e-2),
        r=(0.8, 1.5),
        v_leak=(-0.2, 0.3),
        v_threshold=(0.6, 1.2),
        v_reset=(-0.2, 0.1),
    )
    x = rng.uniform(0.0, 3.0, size=(40, B, *SHAPE))
    z, traces = run_chain(backend, x, LIF(reset=how, **p), dt=dt)
    ref_z, (ref_v,) = _scalar_loop(x, p, lambda x, v, **q: _ref_lif(x, v, dt=dt, how=how, **q), 1)
    _check_spikes(z, ref_z)
    close(traces["n0.v"], ref_v)


@pytest.mark.parametrize("how", RESETS)
def test_cuba_lif_matches_scalar_loop(backend: str, how: str) -> None:
    dt = 1e-3
    rng = np.random.default_rng(12)
    p = _params(
        rng,
        tau_syn=(2e-3, 1e-2),
        tau_mem=(4e-3, 2e-2),
        r=(0.8, 1.5),
        v_leak=(-0.2, 0.3),
        v_threshold=(0.5, 1.0),
        v_reset=(-0.2, 0.1),
        w_in=(0.5, 2.0),
    )
    x = rng.uniform(0.0, 3.0, size=(40, B, *SHAPE))
    z, traces = run_chain(backend, x, CubaLIF(reset=how, **p), dt=dt)
    ref_z, (ref_i, ref_v) = _scalar_loop(x, p, lambda x, i, v, **q: _ref_cuba_lif(x, i, v, dt=dt, how=how, **q), 2)
    _check_spikes(z, ref_z)
    close(traces["n0.i"], ref_i)
    close(traces["n0.v"], ref_v)


def test_cuba_lif_membrane_uses_the_updated_current(backend: str) -> None:
    """One input at step 0 moves the membrane at step 0 already (i is updated first)."""
    x = np.zeros((3, 1, 1))
    x[0] = 1.0
    node = CubaLIF(tau_syn=np.array(2e-3), tau_mem=np.array(4e-3), v_threshold=np.array(10.0))
    _, traces = run_chain(backend, x, node, dt=1e-3)
    i0 = 1e-3 / 2e-3 * 1.0
    close(traces["n0.i"][0, 0], [i0])
    close(traces["n0.v"][0, 0], [1e-3 / 4e-3 * i0])


def test_li_and_cuba_li_and_i_match_scalar_loops(backend: str) -> None:
    dt = 1e-3
    rng = np.random.default_rng(13)
    x = rng.normal(size=(25, B, *SHAPE))

    p = _params(rng, tau=(3e-3, 2e-2), r=(0.5, 2.0), v_leak=(-0.5, 0.5))
    y, traces = run_chain(backend, x, LI(**p), dt=dt)

    def li(x: float, v: float, *, tau: float, r: float, v_leak: float) -> tuple:
        v = v + dt / tau * (v_leak - v + r * x)
        return v, v

    ref, _ = _scalar_loop(x, p, li, 1)
    close(y, ref)
    close(traces["n0.v"], ref)

    p = _params(rng, tau_syn=(2e-3, 1e-2), tau_mem=(3e-3, 2e-2), r=(0.5, 2.0), v_leak=(-0.5, 0.5), w_in=(0.5, 2.0))
    y, traces = run_chain(backend, x, CubaLI(**p), dt=dt)

    def cuba_li(
        x: float, i: float, v: float, *, tau_syn: float, tau_mem: float, r: float, v_leak: float, w_in: float
    ) -> tuple:
        i = i + dt / tau_syn * (w_in * x - i)
        v = v + dt / tau_mem * (v_leak - v + r * i)
        return v, i, v

    ref, (ref_i, _) = _scalar_loop(x, p, cuba_li, 2)
    close(y, ref)
    close(traces["n0.i"], ref_i)

    p = _params(rng, r=(0.5, 2.0))
    y, traces = run_chain(backend, x, I(**p), dt=dt)
    ref, _ = _scalar_loop(x, p, lambda x, v, *, r: (v + r * x, v + r * x), 1)
    close(y, ref)
    close(traces["n0.v"], ref)


def test_threshold_is_stateless_and_strict(backend: str) -> None:
    rng = np.random.default_rng(14)
    theta = rng.uniform(-0.5, 0.5, size=SHAPE)
    x = rng.normal(size=(T, B, *SHAPE))
    x[0, 0] = theta  # exactly at the threshold: no spike
    z, traces = run_chain(backend, x, Threshold(threshold=theta))
    _check_spikes(z, (x > theta).astype(float))
    assert not z[0, 0].any()
    assert "n0.v" not in traces


@pytest.mark.parametrize("dt", [1e-3, 1e-4])
def test_delay_shifts_each_element_by_its_own_steps(backend: str, dt: float) -> None:
    n = np.array([[0, 1], [2, 3]])
    rng = np.random.default_rng(15)
    x = rng.normal(size=(10, B, 2, 2))
    y, _ = run_chain(backend, x, Delay(delay=n * dt), dt=dt)
    expected = np.zeros_like(x)
    for t in range(10):
        for a, b in np.ndindex(2, 2):
            k = int(n[a, b])
            if t - k >= 0:
                expected[t, :, a, b] = x[t - k, :, a, b]
    np.testing.assert_array_equal(y, expected)


def test_delay_with_one_scalar_delay(backend: str) -> None:
    x = np.arange(1.0, 7.0).reshape(6, 1, 1)
    y, _ = run_chain(backend, x, Delay(delay=np.array(2e-3)), dt=1e-3)
    np.testing.assert_array_equal(y[:, 0, 0], [0, 0, 1, 2, 3, 4])
    y, _ = run_chain(backend, x, Delay(delay=np.array(0.0)), dt=1e-3)
    np.testing.assert_array_equal(y, x)


# -- recurrence, subgraphs, traces -----------------------------------------------------------------
def test_recurrent_edge_delivers_the_previous_step(backend: str) -> None:
    """h[t] = x[t] + W h[t-1], h[-1] = 0, through a recurrent edge Dense ~> Add."""
    rng = np.random.default_rng(20)
    w = rng.normal(size=(3, 3)) * 0.5
    nodes: dict[str, Node] = {"x": Input(shape=(3,)), "h": Add(), "w": Dense(weight=w), "out": Output()}
    edges = [Edge("x", "h"), Edge("h", "w"), Edge("w", "h", recurrent=True), Edge("h", "out")]
    x = rng.normal(size=(T, B, 3))
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    y = run(Graph(nodes, edges), x, backend=backend, **kwargs).outputs["out"]
    h = np.zeros((B, 3))
    expected = []
    for t in range(T):
        h = x[t] + h @ w.T
        expected.append(h)
    close(y, np.stack(expected))


def test_recurrent_spiking_loop(backend: str) -> None:
    """A recurrent LIF layer: the synaptic input of step t holds its own spikes of step t-1."""
    dt = 1e-3
    rng = np.random.default_rng(21)
    w_in, w_rec = rng.normal(size=(4, 3)) * 2, rng.normal(size=(4, 4))
    nodes: dict[str, Node] = {
        "x": Input(shape=(3,)),
        "fc": Dense(weight=w_in),
        "lif": LIF(tau=np.array(5e-3)),
        "rec": Dense(weight=w_rec),
        "out": Output(),
    }
    edges = [("x", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif", True), ("lif", "out")]
    x = rng.uniform(0, 4, size=(30, B, 3))
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    z = run(Graph(nodes, edges, dt=dt), x, backend=backend, **kwargs).outputs["out"]
    v = np.zeros((B, 4))
    s = np.zeros((B, 4))
    expected = []
    for t in range(30):
        current = x[t] @ w_in.T + s @ w_rec.T
        v = v + dt / 5e-3 * (0.0 - v) + dt / 5e-3 * 1.0 * current
        s = (v > 1.0).astype(float)
        v = np.where(s > 0, 0.0, v)
        expected.append(s)
    _check_spikes(z, np.stack(expected))


def _mlp_nodes(rng: np.random.Generator) -> dict[str, Node]:
    return {
        "fc": Dense(weight=rng.normal(size=(5, 4)), bias=rng.normal(size=5)),
        "lif": LIF(tau=np.array(5e-3), v_threshold=np.array(0.5)),
        "li": LI(tau=np.array(1e-2)),
    }


def test_subgraph_is_the_flat_graph(backend: str) -> None:
    rng = np.random.default_rng(22)
    inner_nodes = _mlp_nodes(rng)
    inner = Graph(
        {"i": Input(shape=(4,)), **inner_nodes, "o": Output()},
        [("i", "fc"), ("fc", "lif"), ("lif", "li"), ("li", "o")],
        dt=1e-3,
    )
    w2 = rng.normal(size=(2, 5))
    nested = Graph(
        {"x": Input(shape=(4,)), "block": Subgraph(graph=inner), "head": Dense(weight=w2), "out": Output()},
        [("x", "block"), ("block", "head"), ("head", "out")],
        dt=1e-3,
    )
    flat = Graph(
        {
            "x": Input(shape=(4,)),
            **{f"block.{k}": v for k, v in inner_nodes.items()},
            "head": Dense(weight=w2),
            "out": Output(),
        },
        [
            ("x", "block.fc"),
            ("block.fc", "block.lif"),
            ("block.lif", "block.li"),
            ("block.li", "head"),
            ("head", "out"),
        ],
        dt=1e-3,
    )
    x = rng.uniform(0, 3, size=(T, B, 4))
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    a = run(nested, x, backend=backend, trace=True, **kwargs)
    b = run(flat, x, backend=backend, trace=True, **kwargs)
    np.testing.assert_array_equal(a.outputs["out"], b.outputs["out"])
    assert a.traces.keys() == b.traces.keys()
    assert {"block.lif", "block.lif.v", "block.li", "block.li.v"} <= a.traces.keys()
    for key in a.traces:
        np.testing.assert_array_equal(a.traces[key], b.traces[key], err_msg=key)
    assert a.traces["block.lif"].any()


def test_traces_hold_every_node_and_state_by_name(backend: str) -> None:
    rng = np.random.default_rng(23)
    nodes: dict[str, Node] = {
        "x": Input(shape=(4,)),
        "fc": Dense(weight=rng.normal(size=(3, 4))),
        "cuba": CubaLIF(tau_syn=np.array(5e-3), tau_mem=np.array(1e-2)),
        "thr": Threshold(threshold=np.array(0.0)),
        "out": Output(),
    }
    g = Graph(nodes, [("x", "fc"), ("fc", "cuba"), ("cuba", "thr"), ("thr", "out")], dt=1e-3)
    x = rng.normal(size=(7, 2, 4))
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    r = run(g, x, backend=backend, trace=True, **kwargs)
    assert set(r.traces) == {"x", "fc", "cuba", "cuba.i", "cuba.v", "thr", "out"}
    for key, a in r.traces.items():
        node = key.split(".")[0]
        assert a.shape == (7, 2, *g.types[node]), key
    np.testing.assert_array_equal(r.traces["x"], x)
    np.testing.assert_array_equal(r.traces["out"], r.outputs["out"])

    some = run(g, x, backend=backend, trace=["cuba"], **kwargs)
    assert set(some.traces) == {"cuba", "cuba.i", "cuba.v"}
    one = run(g, x, backend=backend, trace="fc", **kwargs)  # a single name, not its letters
    assert set(one.traces) == {"fc"}
    none = run(g, x, backend=backend, **kwargs)
    assert none.traces == {}
    np.testing.assert_array_equal(none.outputs["out"], r.outputs["out"])


def test_batch_elements_are_independent(backend: str) -> None:
    rng = np.random.default_rng(24)
    nodes: Sequence[Node] = [
        Conv(weight=rng.normal(size=(3, 2, 3, 3)), padding=(1, 1)),
        IF(reset="subtract"),
        SumPool(kernel_size=(2, 2)),
        Flatten(),
        Dense(weight=rng.normal(size=(4, 12))),
        LIF(tau=np.array(5e-3)),
    ]
    x = rng.uniform(0, 1, size=(8, 3, 2, 4, 4))
    whole, _ = run_chain(backend, x, *nodes, trace=False)
    for n in range(3):
        alone, _ = run_chain(backend, x[:, n : n + 1], *nodes, trace=False)
        close(whole[:, n : n + 1], alone)


def test_batch_norm_matches_torch() -> None:
    import torch
    import torch.nn.functional as F

    from spikec.ir import BatchNorm

    rng = np.random.default_rng(5)
    mean, var, w, b = rng.normal(size=4), rng.uniform(0.1, 3, 4), rng.normal(size=4), rng.normal(size=4)
    x = rng.normal(size=(3, 2, 4, 5, 5))
    graph = Graph(
        {"x": Input(shape=(4, 5, 5)), "bn": BatchNorm(mean=mean, var=var, weight=w, bias=b, eps=1e-3), "o": Output()},
        [("x", "bn"), ("bn", "o")],
    )
    got = run(graph, x).outputs["o"]
    t = [torch.tensor(a) for a in (mean, var, w, b)]
    want = F.batch_norm(torch.tensor(x.reshape(6, 4, 5, 5)), *t[:2], t[2], t[3], False, 0.0, 1e-3).numpy()
    np.testing.assert_allclose(got, want.reshape(x.shape), rtol=1e-12, atol=1e-12)


# -- general tensor kinds (spikec/ir/tensor.py, spatial.py) against independent references ------------
def _per_sample(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to every (t, b) sample and stack the results back to (T, B, ...)."""
    return np.stack([np.stack([fn(x[t, b]) for b in range(x.shape[1])]) for t in range(x.shape[0])])


def test_unary_ops_match_scalar_math(backend: str) -> None:
    from spikec.ir.tensor import UNARY_OPS, Unary

    def sig(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    def softplus(v: float) -> float:
        return math.log1p(math.exp(v))

    a, b = 0.7, 1.3
    scalar: dict[str, Callable[[float], float]] = {
        "abs": abs,
        "neg": lambda v: -v,
        "exp": math.exp,
        "log": math.log,
        "sqrt": math.sqrt,
        "reciprocal": lambda v: 1 / v,
        "tanh": math.tanh,
        "sigmoid": sig,
        "erf": math.erf,
        "sin": math.sin,
        "cos": math.cos,
        "floor": math.floor,
        "ceil": math.ceil,
        "round": round,  # half to even, as numpy and torch
        "sign": lambda v: float(np.sign(v)),
        "softplus": softplus,
        "softsign": lambda v: v / (1 + abs(v)),
        "leaky_relu": lambda v: v if v >= 0 else a * v,
        "elu": lambda v: v if v > 0 else a * (math.exp(v) - 1),
        "selu": lambda v: b * v if v > 0 else b * a * (math.exp(v) - 1),
        "celu": lambda v: max(0.0, v) + min(0.0, a * (math.exp(v / a) - 1)),
        "thresholded_relu": lambda v: v if v > a else 0.0,
        "hard_sigmoid": lambda v: max(0.0, min(1.0, a * v + b)),
        "hard_swish": lambda v: v * max(0.0, min(1.0, v / 6 + 0.5)),
        "swish": lambda v: v * sig(a * v),
        "mish": lambda v: v * math.tanh(softplus(v)),
        "pow": lambda v: v**a,
        "isnan": lambda v: float(math.isnan(v)),
        "isinf": lambda v: float(math.isinf(v)),
        "not": lambda v: 1.0 - v,
        "nonzero": lambda v: float(v != 0),
        "trunc": lambda v: float(math.trunc(v)),
    }
    assert scalar.keys() == UNARY_OPS.keys()
    rng = np.random.default_rng(20)
    x = np.concatenate([rng.normal(0, 3, size=(2, B, 10)), np.full((1, B, 10), 2.5)])  # 2.5: a tie for round
    x[0, 0, :3] = 0.0  # zeros for nonzero
    positive = np.abs(x) + 0.1
    for op, fn in scalar.items():
        data = positive if op in ("log", "sqrt", "reciprocal", "pow") else x
        y, _ = run_chain(backend, data, Unary(op=op, alpha=a, beta=b))
        np.testing.assert_allclose(y, np.vectorize(fn)(data), rtol=1e-12, atol=1e-14, err_msg=op)


def test_binary_ops_broadcast_like_numpy(backend: str) -> None:
    from spikec.ir.tensor import BINARY_OPS, Binary

    rng = np.random.default_rng(21)
    a = rng.normal(size=(T, B, 3, 4))
    b = np.round(rng.uniform(0.5, 2.0, size=(T, B, 4)), 1)  # positive: pow and div either way round
    a[..., 0, :] = b  # some equal entries for eq/ge/le
    reference = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.divide,
        "pow": np.power,
        "max": np.maximum,
        "min": np.minimum,
        "gt": np.greater,
        "ge": np.greater_equal,
        "lt": np.less,
        "le": np.less_equal,
        "eq": np.equal,
    }
    assert reference.keys() == BINARY_OPS.keys()
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    for op, fn in reference.items():
        nodes: dict[str, Node] = {"a": Input(shape=(3, 4)), "b": Input(shape=(4,)), "op": Binary(op=op), "o": Output()}
        feeds = {"a": np.abs(a) if op == "pow" else a, "b": b}
        graph = Graph(nodes, [("a", "op"), ("b", "op"), ("op", "o")])
        y = run(graph, feeds, backend=backend, **kwargs).outputs["o"]
        want = fn(feeds["a"], b[:, :, None, :]).astype(np.float64)
        np.testing.assert_allclose(y, want, rtol=1e-12, err_msg=op)
        # operands in the other order: b first (lower rank), a second
        swapped = Graph(nodes, [("b", "op"), ("a", "op"), ("op", "o")])
        y = run(swapped, feeds, backend=backend, **kwargs).outputs["o"]
        np.testing.assert_allclose(y, fn(b[:, :, None, :], feeds["a"]).astype(np.float64), rtol=1e-12, err_msg=op)


def test_matmul_follows_numpy_matmul(backend: str) -> None:
    from spikec.ir.tensor import MatMul

    rng = np.random.default_rng(22)
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    for sa, sb in [((3, 4), (4, 2)), ((4,), (2, 4, 3)), ((2, 1, 3, 4), (5, 4, 2)), ((2, 3, 4), (4,)), ((4,), (4,))]:
        nodes: dict[str, Node] = {"a": Input(shape=sa), "b": Input(shape=sb), "mm": MatMul(), "o": Output()}
        feeds = {"a": rng.normal(size=(2, B, *sa)), "b": rng.normal(size=(2, B, *sb))}
        y = run(Graph(nodes, [("a", "mm"), ("b", "mm"), ("mm", "o")]), feeds, backend=backend, **kwargs).outputs["o"]
        want = np.stack([np.stack([np.matmul(feeds["a"][t, n], feeds["b"][t, n]) for n in range(B)]) for t in range(2)])
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12, err_msg=f"{sa} @ {sb}")


def test_softmax_layer_norm_gelu_match_torch(backend: str) -> None:
    from spikec.ir.tensor import GELU, LayerNorm, Softmax

    rng = np.random.default_rng(23)
    x = rng.normal(0, 3, size=(T, B, 3, 4, 5))
    t = torch.from_numpy(x)
    y, _ = run_chain(backend, x, Softmax(axis=1))
    np.testing.assert_allclose(y, F.softmax(t, dim=3).numpy(), rtol=1e-12, atol=1e-15)
    w, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    y, _ = run_chain(backend, x, LayerNorm(axis=-2, weight=w, bias=b, eps=1e-3))
    want = F.layer_norm(t, (4, 5), torch.from_numpy(w), torch.from_numpy(b), eps=1e-3).numpy()
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    for approximate in ("none", "tanh"):
        y, _ = run_chain(backend, x, GELU(approximate=approximate))
        np.testing.assert_allclose(y, F.gelu(t, approximate=approximate).numpy(), rtol=1e-12, atol=1e-15)
    masked = x.copy()
    masked[..., 0, :] = -np.inf  # rows of -inf give zeros (attention's fully masked rows), not NaN
    y, _ = run_chain(backend, np.where(np.isinf(masked), -50.0, masked), Softmax())
    assert np.all(np.isfinite(y))


def test_reduce_gather_slice_match_numpy(backend: str) -> None:
    from spikec.ir.tensor import REDUCE_OPS, Gather, Reduce, Slice

    rng = np.random.default_rng(24)
    x = rng.uniform(0.5, 1.5, size=(T, B, 3, 4, 5))
    for op in REDUCE_OPS:
        fn = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod}[op]
        y, _ = run_chain(backend, x, Reduce(op=op, axes=(0, -1)))
        np.testing.assert_allclose(y, fn(x, axis=(2, 4), keepdims=True), rtol=1e-12, err_msg=op)
        y, _ = run_chain(backend, x, Reduce(op=op, axes=(1,), keepdims=0))
        np.testing.assert_allclose(y, fn(x, axis=3), rtol=1e-12, err_msg=op)
    idx = np.array([[4, 0, 4], [1, 2, 3]])
    y, _ = run_chain(backend, x, Gather(indices=idx, axis=2))
    np.testing.assert_array_equal(y, x[:, :, :, :, idx])
    y, _ = run_chain(backend, x, Gather(indices=np.array(1), axis=0))
    np.testing.assert_array_equal(y, x[:, :, 1])
    node = Slice(axes=(2, 0), starts=(-1, 0), ends=(-100, 10), steps=(-2, 2))
    y, _ = run_chain(backend, x, node)
    np.testing.assert_array_equal(y, x[:, :, 0:10:2, :, ::-2])
    y, _ = run_chain(backend, x, Slice(axes=(1,), starts=(1,), ends=(3,)))
    np.testing.assert_array_equal(y, x[:, :, :, 1:3])


def test_pad_and_conv_transpose_match_torch(backend: str) -> None:
    from spikec.ir.spatial import ConvTranspose, Pad

    rng = np.random.default_rng(25)
    x = rng.normal(size=(2, B, 4, 5, 6))
    y, _ = run_chain(backend, x, Pad(pads=(0, 1, 2, 1, 0, 3), value=-1.5))
    want = np.pad(x, [(0, 0), (0, 0), (0, 1), (1, 0), (2, 3)], constant_values=-1.5)
    np.testing.assert_array_equal(y, want)
    convs = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
    cases = [  # (spatial, kernel, stride, dilation, groups, output_padding, symmetric pads)
        ((7,), (3,), (2,), (1,), 1, (1,), (1,)),
        ((5, 6), (3, 2), (2, 1), (1, 2), 2, (1, 0), (1, 0)),
        ((3, 4, 2), (2, 2, 3), (1, 2, 2), (2, 1, 1), 1, (0, 1, 0), (0, 1, 1)),
    ]
    for spatial, k, s, d, g, op, p in cases:
        nd = len(spatial)
        w, bias = rng.normal(size=(4, 6 // g, *k)), rng.normal(size=6)
        xs = rng.normal(size=(2, B, 4, *spatial))
        node = ConvTranspose(weight=w, bias=bias, stride=s, pads=(*p, *p), output_padding=op, dilation=d, groups=g)
        y, _ = run_chain(backend, xs, node)
        flat = torch.from_numpy(xs.reshape(-1, 4, *spatial))
        want = convs[nd](flat, torch.from_numpy(w), torch.from_numpy(bias), s, p, op, g, d).numpy()
        np.testing.assert_allclose(y, want.reshape(2, B, *want.shape[1:]), rtol=1e-10, atol=1e-12)
    # asymmetric pads crop the full output unevenly
    w = rng.normal(size=(4, 2, 3, 3))
    y, _ = run_chain(backend, x[:, :, :, :, :5], ConvTranspose(weight=w, stride=(2, 2), pads=(2, 0, 1, 3)))
    full = F.conv_transpose2d(torch.from_numpy(x[:, :, :, :, :5].reshape(-1, 4, 5, 5)), torch.from_numpy(w), stride=2)
    want = full.numpy()[:, :, 2 : full.shape[2] - 1, 0 : full.shape[3] - 3]
    np.testing.assert_allclose(y, want.reshape(2, B, *want.shape[1:]), rtol=1e-10, atol=1e-12)


POOL_ND_CASES = [
    # (mode, kernel, stride, dilation, pads, ceil_mode, count_include_pad, spatial)
    ("max", (3, 2), (2, 2), (1, 2), (1, 0, 2, 1), 1, 0, (9, 10)),
    ("avg", (2, 2), (1, 1), (1, 1), (1, 1, 0, 1), 0, 0, (5, 6)),
    ("avg", (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 1, 1, (6, 6)),
    ("avg", (3,), (2,), (2,), (2, 1), 1, 0, (11,)),
    ("max", (2, 2, 2), (2, 1, 2), (1, 1, 1), (0, 1, 0, 1, 0, 1), 1, 0, (5, 4, 5)),
]


@pytest.mark.parametrize("case", POOL_ND_CASES, ids=lambda c: f"{c[0]}-k{c[1]}-p{c[4]}-ceil{c[5]}-inc{c[6]}")
def test_pool_nd_matches_onnx_reference(backend: str, case: tuple) -> None:
    """Against onnx.reference's MaxPool/AveragePool (an independent, loop-based implementation)."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    from spikec.ir.spatial import Pool

    mode, k, s, d, p, ceil, include, spatial = case
    rng = np.random.default_rng(26)
    x = rng.normal(size=(2, B, 2, *spatial))
    node = Pool(mode=mode, kernel_size=k, stride=s, dilation=d, pads=p, ceil_mode=ceil, count_include_pad=include)
    y, _ = run_chain(backend, x, node)
    attrs = {"kernel_shape": k, "strides": s, "pads": p, "ceil_mode": ceil, "dilations": d}
    if mode == "avg":
        attrs["count_include_pad"] = include
    op = helper.make_node("MaxPool" if mode == "max" else "AveragePool", ["x"], ["y"], **attrs)
    graph = helper.make_graph([op], "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, None)], [])
    graph.output.append(helper.make_tensor_value_info("y", TensorProto.DOUBLE, None))
    ref = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]))
    (want,) = ref.run(None, {"x": x.reshape(-1, 2, *spatial)})
    np.testing.assert_allclose(y, want.reshape(2, B, *want.shape[1:]), rtol=1e-12, atol=1e-12)
