"""The Loihi fixed-point kernels: corner cases of Lava's arithmetic, and exact numpy/torch agreement.

The general agreement with Lava itself is tests/test_loihi_lava.py; these pin the corners by hand
(values worked out from lava/proc/{lif,dense,conv,sdn}/models.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from loihi_networks import NETWORKS

from spikec.interp import run
from spikec.ir import Graph, Input, Output
from spikec.ir.node import Node
from spikec.models import load_model, save_model
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, LoihiLIF
from spikec.targets.loihi2.kernels import dense_weights


def _one(node: Node, x: np.ndarray, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    graph = Graph({"x": Input(shape=shape), "n": node, "y": Output()}, [("x", "n"), ("n", "y")])
    return run(graph, {"x": x}, trace=True).traces


def test_lif_current_wraps_and_voltage_saturates_at_24_bits() -> None:
    # du = 4095: u is this step's a_in << 6; 2**23 stays, 2**23 + 64 wraps to 64 - 2**23, -2**23 to +2**23
    lif = LoihiLIF(du=4095, dv=4095, vth=np.array(1 << 17))
    t = _one(lif, np.array([[1 << 17], [(1 << 17) + 1], [-(1 << 17)]], np.float64), (1,))
    assert t["n.i"][:, 0, 0].tolist() == [1 << 23, 64 - (1 << 23), 1 << 23]
    # v = rs(v * 1, 12) + u, clipped to ±(2**23 - 1)
    assert t["n.v"][0, 0, 0] == (1 << 23) - 1


def test_lif_decay_rounds_the_magnitude_and_bias_exponent_floors() -> None:
    # v: rs(-100 * (4096 - 2048), 12) = -50 (toward zero); bias -5 with exponent -1: floor(-2.5) = -3
    lif = LoihiLIF(du=4095, dv=2048, vth=np.array(100), bias_mant=np.array(-5), bias_exp=np.array(-1))
    t = _one(lif, np.zeros((3, 1)), (1,))
    assert t["n.v"][:, 0, 0].tolist() == [-3, -3 + -1, -2 + -3]  # rs(-3/2) = -1, rs(-4/2) = -2


def test_lif_fires_above_vth_times_64_and_resets_to_zero_and_periodically() -> None:
    lif = LoihiLIF(du=4095, dv=0, vth=np.array(1), bias_mant=np.array(33), bias_exp=np.array(0), reset_interval=3)
    t = _one(lif, np.zeros((7, 1)), (1,))
    # v climbs 33, 66 (> 64: spike, v = 0); the periodic reset before t = 3 and t = 6 (1-based)
    # changes nothing at t = 3 (v is 0 already) but drops v = 33 at t = 6, delaying the next spike
    assert t["n"][:, 0, 0].tolist() == [0, 1, 0, 1, 0, 0, 1]
    assert t["n.v"][:, 0, 0].tolist() == [33, 0, 33, 0, 33, 33, 0]


def test_dense_truncates_per_sign_mode_and_shifts_the_sum_with_floor() -> None:
    w = np.array([[255, -256, 7, -7]])
    mixed6 = LoihiDense(weight=w, num_weight_bits=6)  # drops 8 - 6 + 1 = 3 bits: (w >> 3) << 3
    assert dense_weights(mixed6).tolist() == [[248, -256, 0, -8]]
    inhib = LoihiDense(weight=-np.array([[255, 9, 0]]), num_weight_bits=7, sign_mode=3)  # on the magnitude
    assert dense_weights(inhib).tolist() == [[-254, -8, 0]]
    # mixed 8-bit drops one bit (3 -> 2); one-step buffer; then floor((-200 + 2) / 4) = -50 (not -49)
    d = LoihiDense(weight=np.array([[-200, 3]]), weight_exp=-2, num_message_bits=8)
    y = _one(d, np.array([[1, 1], [0, 0]], np.float64), (2,))["n"][:, 0, 0]
    assert y.tolist() == [0, -50]


def test_synaptic_delay_d_arrives_d_plus_one_steps_later() -> None:
    d = LoihiDense(weight=np.array([[10, 20, 40]]), delay=np.array([[0, 2, 3]]))
    y = _one(d, np.array([[1, 1, 1]] + [[0, 0, 0]] * 5, np.float64), (3,))["n"][:, 0, 0]
    assert y.tolist() == [0, 10, 0, 20, 40, 0]


def test_conv_wraps_at_24_bits() -> None:
    conv = LoihiConv(weight=np.full((1, 1, 1, 1), 255), num_message_bits=24)
    big = float((1 << 23) // 255 + 1)
    y = _one(conv, np.array([[[[big]]], [[[0.0]]]]), (1, 1, 1))["n"][:, 0].ravel()
    assert y[1] == big * 255 - (1 << 24)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_conv_filling_few_of_its_channels_gives_the_full_products_sums(backend: str) -> None:
    """A concatenation's part read by a wider layer (DenseNet): only channels 8..11 of 32 have weights, and only
    they are computed; their sums equal those of a conv whose every channel has weights (the full product), and
    the empty channels' sums are zeros."""
    rng = np.random.default_rng(0)
    filled = rng.integers(-255, 256, size=(32, 4, 3, 3))
    part = np.where((np.arange(32) >= 8) & (np.arange(32) < 12), 1, 0)[:, None, None, None] * filled
    x = (rng.random((6, 2, 4, 5, 5)) < 0.4).astype(np.float64)

    def sums(weight: np.ndarray) -> np.ndarray:
        graph = Graph({"x": Input(shape=(4, 5, 5)), "n": LoihiConv(weight=weight, padding=(1, 1)), "y": Output()},
                      [("x", "n"), ("n", "y")])  # fmt: skip
        return run(graph, {"x": x}, trace=True, backend=backend).traces["n"]

    got, full = sums(part), sums(filled)
    assert np.array_equal(got[:, :, 8:12], full[:, :, 8:12]) and np.any(got[1:, :, 8:12])
    assert not np.any(got[:, :, :8]) and not np.any(got[:, :, 12:])


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_torch_equals_numpy_bit_for_bit(name: str) -> None:
    graph, feeds, _ = NETWORKS[name]()
    ref = run(graph, feeds, trace=True)
    got = run(graph, feeds, trace=True, backend="torch")
    for key, value in ref.traces.items():
        np.testing.assert_array_equal(got.traces[key], value, err_msg=key)


@pytest.mark.parametrize("name", ["dense_synaptic_delays", "dense_recurrent", "sdnn_graded_chain"])
def test_sir_text_round_trip(name: str, tmp_path: Path) -> None:
    graph = NETWORKS[name]()[0]
    save_model(graph, tmp_path / "net.sir")
    assert load_model(tmp_path / "net.sir") == graph
