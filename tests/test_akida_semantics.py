"""The Akida dialect's kernels (``spikec run --fixed akida``) against akida 2.19.3's engine, on multi-layer models
with random integer variables: every output integer identical. Covers what docs/akida-target.md states: the
rounding right shift, saturation (4-bit unsigned, int8, int32), ReLU, bias << bias_shift, input_shift, SAME
(TF) / SAME_UPPER / VALID padding, max-pool (SAME pooling after a SAME conv), the global average pool (a sum of
the ReLU's output), InputConv2D's correlation and Conv2D/DepthwiseConv2D's flipped kernels, Dense1D's (X, Y, C)
flatten. IP v1 (``InputConvolutional``, ``Convolutional``, ``FullyConnected``): the step activation with act_step held
to 1/16 and a 2-bit step 4 times act_step, 1/2/4-bit weights ({0, 1}, {-1, 0, 1}, [-7, 7]) and activations, SAME /
SAME_UPPER / VALID padding and 1x1 SAME, max-pools, the (C, Y, X) flatten, the last layer's potential minus
threshold."""

from __future__ import annotations

import numpy as np
import pytest
from akida_networks import (
    chain,
    conv,
    depthwise_network,
    merge_network,
    pooled_network,
    same_1x1_network,
    v1_network,
    v1_step_probe,
    v1_valid_network,
)

from spikec.interp import run
from spikec.ir import Graph
from spikec.ir.structure import Input, Output
from spikec.targets.akida.dialect import add_range
from spikec.targets.akida.emit import build_model
from spikec.targets.akida.verify import run_engine


def _same(graph: Graph, x: np.ndarray, tmp_path) -> np.ndarray:
    from spikec.targets.akida.emit import saved_bytes

    path = tmp_path / "m.fbz"
    path.write_bytes(saved_bytes(build_model(graph)))
    theirs = run_engine(path, x)
    mine = run(graph, {"x": x[None]}, steps=1).outputs["y"][0]
    assert theirs.shape == mine.shape
    np.testing.assert_array_equal(theirs, mine)
    assert len(np.unique(theirs)) > 3, "the test would be vacuous: outputs barely vary"
    return theirs


@pytest.mark.parametrize("bits", [4, 8])
def test_conv_maxpool_conv_dense_matches_the_engine(bits: int, tmp_path) -> None:
    graph, x = pooled_network(bits)
    assert graph.types["l0"] == (6, 5, 5)  # SAME pooling: ceil(14 / 3)
    y = _same(graph, x, tmp_path)
    assert y.min() < 0  # no ReLU on the 32-bit output


@pytest.mark.parametrize("bits", [4, 8])
def test_a_1x1_conv_padded_same_pools_same_as_the_engine(bits: int, tmp_path) -> None:
    """``padding="same"`` on a 1x1 kernel: the conv is VALID's, the max-pool after it SAME (3x3 of a 5x5 map)."""
    graph, x = same_1x1_network(bits)
    assert graph.types["l1"] == (8, 3, 3)
    _same(graph, x, tmp_path)


def test_depthwise_same_upper_global_average_and_dense_relu_match_the_engine(tmp_path) -> None:
    graph, x = depthwise_network()
    y = _same(graph, x, tmp_path)
    assert y.min() >= -128 and y.max() <= 127


@pytest.mark.parametrize(
    ("bits", "signed", "shifts", "wide"),
    [(8, False, (0, 0, -1), False), (8, False, (1, 0, -2), False), (8, False, (0, 0, 0), False),
     (4, False, (0, 1, 0), False), (4, False, (0, 0, -1), False), (8, True, (0, 0, -1), False),
     (4, True, (3, 0, -2), True), (4, True, (3, 0, 0), True)],
)  # fmt: skip
def test_add_shifts_rounds_and_saturates_as_the_engine(bits: int, signed: bool, shifts, wide: bool, tmp_path) -> None:
    """``Add``: (a << a_shift) + (b << b_shift), the rounding right shift, saturation; alone (its own output is the
    model's) and followed by a conv. ``wide``: a 4-bit input and an 8-bit signed one into an 8-bit Add (what a 4-bit
    model's residual branch becomes)."""
    for tail in (False, True):
        graph, x = merge_network("add", bits, signed=signed, shifts=shifts, tail=tail, wide=wide)
        y = _same(graph, x, tmp_path)
        if not tail:
            lo, hi = add_range(8 if wide else bits)
            assert lo <= y.min() and y.max() <= hi
            assert y.max() == hi or shifts[2] != 0, "saturation at the signed range: exercised when unshifted"
            assert (y.min() < 0) == signed


@pytest.mark.parametrize("bits", [4, 8])
def test_concatenate_joins_channels_as_the_engine(bits: int, tmp_path) -> None:
    for tail in (False, True):
        graph, x = merge_network("concat", bits, tail=tail)
        _same(graph, x, tmp_path)


def test_fixed_akida_rejects_what_is_not_its_dialect() -> None:
    from spikec.errors import InputError, VerifyError
    from spikec.ir.ann import ReLU
    from spikec.targets.akida import check_fixed

    graph = Graph({"x": Input(shape=(3,)), "r": ReLU(), "y": Output()}, [("x", "r"), ("r", "y")])
    with pytest.raises(VerifyError, match="not in the Akida dialect"):
        check_fixed(graph, {"x": np.zeros((1, 1, 3))})
    rng = np.random.default_rng(0)
    ok = chain([conv(rng, 1, 2, 3, first=True, pads=(1, 1, 1, 1))], (1, 4, 4))
    with pytest.raises(InputError, match="8-bit pixels"):
        check_fixed(ok, {"x": np.full((1, 1, 1, 4, 4), 256.0)})


def test_a_layer_the_engine_refuses_is_named_with_our_node() -> None:
    from spikec.errors import TargetError

    rng = np.random.default_rng(0)
    graph = chain([conv(rng, 2, 4, 3, first=True, pads=(1, 1, 1, 1))], (2, 6, 6))  # InputConv2D: 1 or 3 channels
    with pytest.raises(TargetError, match=r"node 'l0' \(AkidaConv\): the akida engine refused its layer: .*1 or 3"):
        build_model(graph)


# -- IP v1 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("bits", "wbits"), [(4, 4), (2, 2), (1, 1), (4, 1), (2, 4)])
def test_v1_conv_pool_dense_chain_matches_the_engine(bits: int, wbits: int, tmp_path) -> None:
    graph, x = v1_network(bits, wbits)
    assert graph.types["l2"] == (8, 2, 2)  # the 1x1 SAME conv pools SAME: 3x3 -> 2x2 (VALID: 1x1)
    y = _same(graph, x, tmp_path)
    assert y.min() < 0  # no activation on the last layer: potential minus threshold


def test_v1_valid_same_upper_rgb_and_one_bit_weights_match_the_engine(tmp_path) -> None:
    graph, x = v1_valid_network()
    _same(graph, x, tmp_path)


@pytest.mark.parametrize("bits", [4, 2])
def test_v1_act_step_is_held_to_sixteenths_and_two_bits_step_four_times(bits: int, tmp_path) -> None:
    """The engine's step is 2^(4-b) floor(16 act_step) / 16. At 4 bits the plain ceil((pot - threshold) / act_step)
    differs from it here; at 2 bits the 1/16 cannot show on integer potentials below level 3 (floor(x / 4) =
    floor(floor(x) / 4)), but a step without the factor 4 differs. The kernel equals the engine in both."""
    from spikec.targets.akida.dialect_v1 import AkidaV1Conv

    graph, x = v1_step_probe(bits)
    y = _same(graph, x, tmp_path)
    node = graph.nodes["l0"]
    assert isinstance(node, AkidaV1Conv)
    pot = x.reshape(1, 1, 16, 16) - np.asarray(node.threshold).reshape(1, -1, 1, 1)
    steps = np.asarray(node.act_step, np.float32).astype(np.float64).reshape(1, -1, 1, 1)
    plain = np.clip(np.ceil(pot / steps), 0, (1 << bits) - 1)
    assert np.sum(plain != y) >= 3, "the probe would not tell the engine's step from the plain act_step"


def test_the_engines_add_takes_no_activation() -> None:
    """Why a ReLU after an Add stays a depthwise layer of its own (docs/akida-target.md): akida 2.19.3's Add layer
    refuses an activation parameter."""
    import akida

    params = {"output_bits": 8, "buffer_bits": 32, "post_op_buffer_bits": 32, "activation": True}
    with pytest.raises(RuntimeError, match=r"Expected keys : \{buffer_bits, output_bits, post_op_buffer_bits, \}"):
        akida.Layer.__init__(akida.Add.__new__(akida.Add), akida.LayerParams(akida.LayerType.Add, params), "add")
