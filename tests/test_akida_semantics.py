"""The Akida dialect's kernels (``spikec run --fixed akida``) against akida 2.19.3's engine, on multi-layer models
with random integer variables: every output integer identical. Covers what docs/akida-target.md states: the
rounding right shift, saturation (4-bit unsigned, int8, int32), ReLU, bias << bias_shift, input_shift, SAME
(TF) / SAME_UPPER / VALID padding, max-pool (SAME pooling after a SAME conv), the global average pool (a sum of
the ReLU's output), InputConv2D's correlation and Conv2D/DepthwiseConv2D's flipped kernels, Dense1D's (X, Y, C)
flatten."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spikec.interp import run
from spikec.ir import Graph
from spikec.ir.structure import Input, Output
from spikec.targets.akida.dialect import AkidaConv, AkidaDense
from spikec.targets.akida.emit import build_model
from spikec.targets.akida.verify import run_engine


def _fields(rng: np.random.Generator, outs: int, ins: int, bits: int, *, shift_range: tuple[int, int]) -> dict:
    return dict(
        bias=rng.integers(-128, 128, outs),
        bias_shift=rng.integers(0, 4, outs),
        output_scales=rng.integers(1, 256, outs),
        output_shift=rng.integers(*shift_range, outs),
        input_shift=np.zeros(ins, np.int64) if bits == 0 else rng.integers(0, 2, ins),
    )


def _conv(rng, cin, cout, k, *, first=False, wbits=4, obits=4, groups=1, shifts=(-14, -8), **kw) -> AkidaConv:
    half = 128 if first else 1 << (wbits - 1)
    w = rng.integers(-half, half, (cout, cin // groups, k, k))
    f = _fields(rng, cout, cin, 0 if first else 1, shift_range=shifts)
    return AkidaConv(weight=w, groups=groups, input_layer=int(first), weights_bits=8 if first else wbits,
                     output_bits=obits, **f, **kw)  # fmt: skip


def _chain(layers: list, shape: tuple[int, ...]) -> Graph:
    nodes = {"x": Input(shape=shape), **{f"l{i}": node for i, node in enumerate(layers)}, "y": Output()}
    names = list(nodes)
    return Graph(nodes, list(itertools.pairwise(names)))


def _calibrated(layers: list, shape: tuple[int, ...], x: np.ndarray) -> Graph:
    """``layers`` with each ``output_shift`` chosen (per channel) so that the layer's outputs spread over its range
    on ``x`` instead of saturating: the 90th percentile of |acc · scale| lands near the top of the output range."""
    import dataclasses

    done: list = []
    for layer in layers:
        probe = dataclasses.replace(layer, output_shift=np.zeros_like(layer.output_shift), output_bits=32)
        acc = run(_chain([*done, probe], shape), {"x": x[None]}, steps=1).outputs["y"][0]
        acc = np.abs(acc.reshape(len(x), acc.shape[1], -1)).transpose(1, 0, 2).reshape(acc.shape[1], -1)
        top = 1 << (layer.output_bits - 1 if layer.output_bits != 4 else 4)
        peak = np.maximum(np.percentile(acc, 90, axis=1), 1)
        shift = -np.maximum(np.ceil(np.log2(peak / top)), 0).astype(np.int64)
        done.append(dataclasses.replace(layer, output_shift=shift))
    return _chain(done, shape)


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
    rng = np.random.default_rng(bits)
    layers = [
        _conv(rng, 1, 6, 3, first=True, obits=bits, pads=(1, 1, 1, 1), pool="max", pool_size=3, pool_stride=3),
        _conv(rng, 6, 8, 3, wbits=bits, obits=bits, pads=(1, 1, 1, 1), stride=2),  # SAME, stride 2 (odd map)
        _conv(rng, 8, 8, 3, wbits=bits, obits=bits, pads=(1, 1, 1, 1), shifts=(-10, -5)),
    ]
    dense_in = 8 * 3 * 3
    layers.append(AkidaDense(weight=rng.integers(-8, 8, (5, dense_in)), relu=0, output_bits=32, weights_bits=bits,
                             **_fields(rng, 5, dense_in, 1, shift_range=(-3, 1))))  # fmt: skip
    x = rng.integers(0, 256, (16, 1, 14, 14)).astype(np.float64)
    graph = _calibrated(layers, (1, 14, 14), x)
    assert graph.types["l0"] == (6, 5, 5)  # SAME pooling: ceil(14 / 3)
    y = _same(graph, x, tmp_path)
    assert y.min() < 0  # no ReLU on the 32-bit output


def test_depthwise_same_upper_global_average_and_dense_relu_match_the_engine(tmp_path) -> None:
    rng = np.random.default_rng(7)
    layers = [
        _conv(rng, 3, 8, 5, first=True, obits=8, pads=(0, 0, 0, 0)),  # VALID, RGB input, int8 ReLU output
        _conv(rng, 8, 8, 3, groups=8, wbits=4, obits=8, pads=(0, 1, 0, 1), stride=2),  # depthwise
        _conv(rng, 8, 8, 3, wbits=8, obits=8, pads=(1, 0, 1, 0), stride=2),  # SAME_UPPER
        _conv(rng, 8, 12, 3, wbits=8, obits=4, pads=(1, 1, 1, 1), pool="global_avg", shifts=(-14, -9)),
        AkidaDense(weight=rng.integers(-8, 8, (6, 12)), relu=1, output_bits=4, weights_bits=4,
                   **_fields(rng, 6, 12, 1, shift_range=(-6, -2))),
        AkidaDense(weight=rng.integers(-128, 128, (4, 6)), relu=0, output_bits=8, weights_bits=8,
                   **_fields(rng, 4, 6, 1, shift_range=(-4, 0))),
    ]  # fmt: skip
    x = rng.integers(0, 256, (16, 3, 16, 16)).astype(np.float64)
    graph = _calibrated(layers, (3, 16, 16), x)
    y = _same(graph, x, tmp_path)
    assert y.min() >= -128 and y.max() <= 127


def test_fixed_akida_rejects_what_is_not_its_dialect() -> None:
    from spikec.errors import InputError, VerifyError
    from spikec.ir.ann import ReLU
    from spikec.targets.akida import check_fixed

    graph = Graph({"x": Input(shape=(3,)), "r": ReLU(), "y": Output()}, [("x", "r"), ("r", "y")])
    with pytest.raises(VerifyError, match="not in the Akida dialect"):
        check_fixed(graph, {"x": np.zeros((1, 1, 3))})
    rng = np.random.default_rng(0)
    ok = _chain([_conv(rng, 1, 2, 3, first=True, pads=(1, 1, 1, 1))], (1, 4, 4))
    with pytest.raises(InputError, match="8-bit pixels"):
        check_fixed(ok, {"x": np.full((1, 1, 1, 4, 4), 256.0)})


def test_a_layer_the_engine_refuses_is_named_with_our_node() -> None:
    from spikec.errors import TargetError

    rng = np.random.default_rng(0)
    graph = _chain([_conv(rng, 2, 4, 3, first=True, pads=(1, 1, 1, 1))], (2, 6, 6))  # InputConv2D: 1 or 3 channels
    with pytest.raises(TargetError, match=r"node 'l0' \(AkidaConv\): the akida engine refused its layer: .*1 or 3"):
        build_model(graph)
