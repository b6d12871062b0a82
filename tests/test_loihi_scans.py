"""The Loihi dialect's scans (targets/loihi2/scans.py) against its kernels, step by step, bit for bit.

Every network tests/test_loihi_lava.py checks against Lava runs in the multi-step schedule (synapses as one
product over a chunk, delay lines, the LIF loop on float64) and in the stepwise one (each kernel once per step),
on numpy and torch, whole and cut into chunks of a few steps (state carried across chunk boundaries): every
output, u and v must be identical. The stepwise kernels are what the Lava test pins.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from loihi_networks import NETWORKS

from spikec.interp import run
from spikec.interp import schedule as schedule_module
from spikec.interp.kernels import KERNELS
from spikec.ir import Flatten, Graph, Input, Output
from spikec.targets.loihi2 import scans as loihi_scans
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDelta, LoihiDense, LoihiLIF, LoihiSigma, LoihiSigmaDelta

BACKENDS = ["numpy", "torch"]


def _batched(feeds: dict[str, np.ndarray], batch: int = 3) -> dict[str, np.ndarray]:
    """Three samples: the network's own feed and two shuffles of it along time (other spike trains, same values)."""
    rng = np.random.default_rng(0)
    return {k: np.stack([v, *(v[rng.permutation(v.shape[0])] for _ in range(batch - 1))], 1) for k, v in feeds.items()}


def _assert_identical(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    assert expected.keys() == got.keys() and expected
    for key, values in expected.items():
        assert got[key].dtype == values.dtype == np.float64, key
        np.testing.assert_array_equal(got[key], values, err_msg=key)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_scans_equal_the_kernels_step_by_step(name: str, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    graph, feeds, steps = NETWORKS[name]()
    x = _batched(feeds)
    device = "cpu" if backend == "torch" else None
    stepwise = run(graph, x, steps=steps, backend=backend, device=device, trace=True, schedule="step")
    whole = run(graph, x, steps=steps, backend=backend, device=device, trace=True)
    largest = max(int(np.prod(shape)) for shape in graph.types.values())
    monkeypatch.setattr(schedule_module, "CHUNK_BYTES", 4 * 3 * 8 * largest)  # chunks of 4 steps, 3 samples
    chunked = run(graph, x, steps=steps, backend=backend, device=device, trace=True)
    for result in (whole, chunked):
        _assert_identical(stepwise.traces, result.traces)
        _assert_identical(stepwise.outputs, result.outputs)
    assert all(stepwise.traces[n].any() for n in graph.outputs), "every output should move"


@pytest.mark.parametrize("name", ["sdnn_graded_chain", "sigma_delta_unit_cum_error"])
def test_sigma_delta_kinds_scan_instead_of_a_kernel_call_per_step(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = (LoihiDelta, LoihiSigmaDelta, LoihiSigma, LoihiDense)
    calls = _count_calls(monkeypatch, kinds)
    graph, feeds, steps = NETWORKS[name]()
    run(graph, _batched(feeds), steps=steps)
    assert calls == {}
    run(graph, _batched(feeds), steps=steps, schedule="step")
    present = [type(node).kind for node in graph.nodes.values() if isinstance(node, kinds)]
    assert calls == {kind: steps * present.count(kind) for kind in present} and "LoihiSigmaDelta" in present


def _count_calls(monkeypatch: pytest.MonkeyPatch, kinds: tuple[type, ...]) -> dict[str, int]:
    """Kernel calls by kind name, counted from now on."""
    calls: dict[str, int] = {}
    for kind in kinds:
        kernel = KERNELS[kind]

        def counted(node: object, *args: object, kernel: object = kernel, kind: type = kind) -> object:
            calls[kind.kind] = calls.get(kind.kind, 0) + 1
            return kernel(node, *args)  # type: ignore[operator]

        monkeypatch.setitem(KERNELS, kind, counted)
    return calls


def test_loihi_synapses_and_neurons_scan_instead_of_a_kernel_call_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A conv, a dense and their LIF layers: no kernel call per step in the multi-step schedule."""
    calls = _count_calls(monkeypatch, (LoihiConv, LoihiDense, LoihiLIF))
    rng = np.random.default_rng(4)
    nodes = {
        "x": Input(shape=(2, 6, 6)),
        "conv": LoihiConv(weight=2 * rng.integers(-30, 60, (3, 2, 3, 3)), padding=(1, 1), delay=2),
        "a": LoihiLIF(du=4095, dv=0, vth=np.array(40)),
        "flat": Flatten(),
        "fc": LoihiDense(weight=rng.integers(-100, 200, (5, 3 * 6 * 6))),
        "b": LoihiLIF(du=3000, dv=500, vth=np.array(90)),
        "out": Output(),
    }
    graph = Graph(nodes, list(itertools.pairwise(nodes)))
    x = (rng.random((20, 2, 2, 6, 6)) < 0.4).astype(np.float64)
    multi = run(graph, x, trace=True)
    assert calls == {}
    stepwise = run(graph, x, trace=True, schedule="step")
    assert calls == {"LoihiConv": 20, "LoihiDense": 20, "LoihiLIF": 40}
    _assert_identical(stepwise.traces, multi.traces)
    assert multi.traces["a"].any() and multi.traces["b"].any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_lif_scan_wraps_and_clips_where_its_bounds_say_it_may(backend: str) -> None:
    """Inputs large enough that u wraps at 24 bits and v saturates (the bounds cannot rule either out, so the loop
    wraps and clips): the kernel's values at every step."""
    lif = LoihiLIF(du=1000, dv=0, vth=np.array(1 << 17))
    graph = Graph({"x": Input(shape=(4,)), "n": lif, "y": Output()}, [("x", "n"), ("n", "y")])
    big = np.array([(1 << 17) + 5, -(1 << 17), 1 << 16, 3], np.float64)
    x = np.concatenate([np.tile(big, (6, 1)), np.zeros((6, 4))])[:, None]
    device = "cpu" if backend == "torch" else None
    stepwise = run(graph, x, backend=backend, device=device, trace=True, schedule="step")
    multi = run(graph, x, backend=backend, device=device, trace=True)
    _assert_identical(stepwise.traces, multi.traces)
    assert np.abs(stepwise.traces["n.v"]).max() == (1 << 23) - 1
    assert (stepwise.traces["n.i"][0, 0] != big * 64).any()  # wrapped


# -- the exact narrow carriers: int8 products on torch, float32 convolutions ------------------------------------
def test_weights_split_into_int8_times_a_shared_power_of_two() -> None:
    """Lava's 8-bit mixed-sign weights are even (its truncation drops the lowest bit): int8 after one shift."""
    mixed = np.array([[-256, 254, 0], [6, -2, 128]])
    q, exp = loihi_scans._as_int8(mixed)
    assert exp == 1 and q is not None and q.dtype == np.int8
    np.testing.assert_array_equal(q.astype(np.int64) << exp, mixed)
    q, exp = loihi_scans._as_int8(np.array([[8, -12], [0, 4]]))
    assert exp == 2 and q is not None and q.tolist() == [[2, -3], [0, 1]]
    assert loihi_scans._as_int8(np.array([[255, 1]]))[0] is None  # excitatory 8-bit weights: float32 instead
    q, exp = loihi_scans._as_int8(np.zeros((2, 3)))
    assert exp == 0 and q is not None and not q.any()


def _count_returns(monkeypatch: pytest.MonkeyPatch, name: str) -> list[bool]:
    """Whether each call of loihi2.scans's ``name`` returned a value (the narrow route) or None (fallen back)."""
    calls: list[bool] = []
    original = getattr(loihi_scans, name)

    def counted(*args: object) -> object:
        result = original(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(loihi_scans, name, counted)
    return calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_dense_synapses_take_int8_products_on_torch(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every binary dense layer of mixed-sign weights goes through torch's int8 GEMM (numpy has none: float32),
    and the results are the kernels' step by step."""
    calls = _count_returns(monkeypatch, "_int8_sum")
    graph, feeds, steps = NETWORKS["dense_mixed_lif_bias"]()
    device = "cpu" if backend == "torch" else None
    multi = run(graph, _batched(feeds), steps=steps, backend=backend, device=device, trace=True)
    assert calls and all(calls) == (backend == "torch") and any(calls) == (backend == "torch")
    stepwise = run(graph, _batched(feeds), steps=steps, backend=backend, device=device, trace=True, schedule="step")
    _assert_identical(stepwise.traces, multi.traces)


@pytest.mark.parametrize("backend", BACKENDS)
def test_graded_conv_beyond_float32_falls_back_exactly(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A graded conv whose sums may pass 2**24 is not computed in float32 (it would round): the float64 route, exact;
    the same conv on small values takes float32."""
    calls = _count_returns(monkeypatch, "_float32_conv_sums")
    rng = np.random.default_rng(7)
    conv = LoihiConv(weight=rng.integers(-120, 120, (3, 2, 3, 3)), padding=(1, 1), num_message_bits=24)
    graph = Graph({"x": Input(shape=(2, 5, 5)), "c": conv, "y": Output()}, [("x", "c"), ("c", "y")])
    device = "cpu" if backend == "torch" else None
    for peak, narrow in ((1 << 20, False), (100, True)):
        calls.clear()
        x = rng.integers(-peak, peak, (6, 2, 2, 5, 5)).astype(np.float64)
        multi = run(graph, x, backend=backend, device=device, trace=True)
        assert calls == [narrow]
        stepwise = run(graph, x, backend=backend, device=device, trace=True, schedule="step")
        _assert_identical(stepwise.traces, multi.traces)
        assert np.abs(multi.traces["c"]).max() > (1 << 22 if not narrow else 0)  # wrapped at 24 bits


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_conv_sums_are_exact_on_a_wide_layer(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ResNet-sized layer (64 → 64 channels, 3×3, 16×16; torch's blocked oneDNN kernels, not the small cases'
    reference ones): the float32 sums equal float64's, every one, near the 2**24 bound."""
    rng = np.random.default_rng(11)
    weight = 2 * rng.integers(-128, 128, (64, 64, 3, 3))
    conv = LoihiConv(weight=weight, padding=(1, 1), num_message_bits=8)
    graph = Graph({"x": Input(shape=(64, 16, 16)), "c": conv, "y": Output()}, [("x", "c"), ("c", "y")])
    x = rng.integers(-100, 101, (3, 2, 64, 16, 16)).astype(np.float64)
    assert 1 << 22 < np.abs(weight).reshape(64, -1).sum(1).max() * 100 < 1 << 24
    calls = _count_returns(monkeypatch, "_float32_conv_sums")
    device = "cpu" if backend == "torch" else None
    multi = run(graph, x, backend=backend, device=device, trace=True)
    assert calls == [True]
    stepwise = run(graph, x, backend=backend, device=device, trace=True, schedule="step")
    _assert_identical(stepwise.traces, multi.traces)
