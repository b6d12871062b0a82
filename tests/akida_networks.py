"""Random multi-layer networks of the Akida dialect (integer variables, output shifts calibrated so that values
spread over each layer's range; IP v1: thresholds and steps so): checked against akida's engine by
tests/test_akida_semantics.py and numpy against torch by tests/test_interp_backends.py."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from spikec.interp import run
from spikec.ir import Graph
from spikec.ir.structure import Input, Output
from spikec.targets.akida.dialect import AkidaAdd, AkidaConcat, AkidaConv, AkidaDense
from spikec.targets.akida.dialect_v1 import WEIGHT_RANGES, AkidaV1Conv, AkidaV1Dense


def fields(rng: np.random.Generator, outs: int, ins: int, bits: int, *, shift_range: tuple[int, int]) -> dict:
    return dict(
        bias=rng.integers(-128, 128, outs),
        bias_shift=rng.integers(0, 4, outs),
        output_scales=rng.integers(1, 256, outs),
        output_shift=rng.integers(*shift_range, outs),
        input_shift=np.zeros(ins, np.int64) if bits == 0 else rng.integers(0, 2, ins),
    )


def conv(rng, cin, cout, k, *, first=False, wbits=4, obits=4, groups=1, shifts=(-14, -8), **kw) -> AkidaConv:
    half = 128 if first else 1 << (wbits - 1)
    w = rng.integers(-half, half, (cout, cin // groups, k, k))
    f = fields(rng, cout, cin, 0 if first else 1, shift_range=shifts)
    return AkidaConv(weight=w, groups=groups, input_layer=int(first), weights_bits=8 if first else wbits,
                     output_bits=obits, **f, **kw)  # fmt: skip


def chain(layers: list, shape: tuple[int, ...]) -> Graph:
    nodes = {"x": Input(shape=shape), **{f"l{i}": node for i, node in enumerate(layers)}, "y": Output()}
    names = list(nodes)
    return Graph(nodes, list(itertools.pairwise(names)))


def calibrated(layers: list, shape: tuple[int, ...], x: np.ndarray) -> Graph:
    """``layers`` with each ``output_shift`` chosen (per channel) so that the layer's outputs spread over its range
    on ``x`` instead of saturating: the 90th percentile of |acc · scale| lands near the top of the output range."""
    done: list = []
    for layer in layers:
        probe = dataclasses.replace(layer, output_shift=np.zeros_like(layer.output_shift), output_bits=32)
        acc = run(chain([*done, probe], shape), {"x": x[None]}, steps=1).outputs["y"][0]
        acc = np.abs(acc.reshape(len(x), acc.shape[1], -1)).transpose(1, 0, 2).reshape(acc.shape[1], -1)
        top = 1 << (layer.output_bits - 1 if layer.output_bits != 4 else 4)
        peak = np.maximum(np.percentile(acc, 90, axis=1), 1)
        shift = -np.maximum(np.ceil(np.log2(peak / top)), 0).astype(np.int64)
        done.append(dataclasses.replace(layer, output_shift=shift))
    return chain(done, shape)


def pooled_network(bits: int) -> tuple[Graph, np.ndarray]:
    """InputConv2D + SAME max-pool 3/3, Conv2D SAME stride 2 on an odd map, Conv2D, Dense1D to int32; 16 images."""
    rng = np.random.default_rng(bits)
    layers = [
        conv(rng, 1, 6, 3, first=True, obits=bits, pads=(1, 1, 1, 1), pool="max", pool_size=3, pool_stride=3),
        conv(rng, 6, 8, 3, wbits=bits, obits=bits, pads=(1, 1, 1, 1), stride=2),  # SAME, stride 2 (odd map)
        conv(rng, 8, 8, 3, wbits=bits, obits=bits, pads=(1, 1, 1, 1), shifts=(-10, -5)),
    ]
    dense_in = 8 * 3 * 3
    layers.append(AkidaDense(weight=rng.integers(-8, 8, (5, dense_in)), relu=0, output_bits=32, weights_bits=bits,
                             **fields(rng, 5, dense_in, 1, shift_range=(-3, 1))))  # fmt: skip
    x = rng.integers(0, 256, (16, 1, 14, 14)).astype(np.float64)
    return calibrated(layers, (1, 14, 14), x), x


def same_1x1_network(bits: int) -> tuple[Graph, np.ndarray]:
    """InputConv2D VALID, a 1x1 Conv2D with ``padding="same"`` and a SAME max-pool 2/2 of its odd map (VALID would
    pool 5x5 to 2x2, SAME to 3x3), a 1x1 Conv2D SAME, Dense1D to int32; 16 images."""
    rng = np.random.default_rng(20 + bits)
    layers = [
        conv(rng, 1, 6, 3, first=True, obits=bits),
        conv(rng, 6, 8, 1, wbits=bits, obits=bits, padding="same", pool="max", pool_size=2, pool_stride=2),
        conv(rng, 8, 8, 1, wbits=bits, obits=bits, padding="same", shifts=(-10, -5)),
    ]
    layers.append(AkidaDense(weight=rng.integers(-8, 8, (5, 8 * 3 * 3)), relu=0, output_bits=32, weights_bits=bits,
                             **fields(rng, 5, 8 * 3 * 3, 1, shift_range=(-3, 1))))  # fmt: skip
    x = rng.integers(0, 256, (16, 1, 7, 7)).astype(np.float64)
    return calibrated(layers, (1, 7, 7), x), x


def depthwise_network() -> tuple[Graph, np.ndarray]:
    """VALID RGB InputConv2D, DepthwiseConv2D /2, SAME_UPPER Conv2D /2, global average, Dense1D ReLU, Dense1D int8."""
    rng = np.random.default_rng(7)
    layers = [
        conv(rng, 3, 8, 5, first=True, obits=8, pads=(0, 0, 0, 0)),  # VALID, RGB input, int8 ReLU output
        conv(rng, 8, 8, 3, groups=8, wbits=4, obits=8, pads=(0, 1, 0, 1), stride=2),  # depthwise
        conv(rng, 8, 8, 3, wbits=8, obits=8, pads=(1, 0, 1, 0), stride=2),  # SAME_UPPER
        conv(rng, 8, 12, 3, wbits=8, obits=4, pads=(1, 1, 1, 1), pool="global_avg", shifts=(-14, -9)),
        AkidaDense(weight=rng.integers(-8, 8, (6, 12)), relu=1, output_bits=4, weights_bits=4,
                   **fields(rng, 6, 12, 1, shift_range=(-6, -2))),
        AkidaDense(weight=rng.integers(-128, 128, (4, 6)), relu=0, output_bits=8, weights_bits=8,
                   **fields(rng, 4, 6, 1, shift_range=(-4, 0))),
    ]  # fmt: skip
    x = rng.integers(0, 256, (16, 3, 16, 16)).astype(np.float64)
    return calibrated(layers, (3, 16, 16), x), x


def merge_network(
    merge: str,
    bits: int,
    *,
    signed: bool = False,
    shifts: tuple[int, int, int] = (0, 0, -1),
    tail: bool = True,
    wide: bool = False,
) -> tuple[Graph, np.ndarray]:
    """InputConv2D, then two Conv2D branches (``b`` without ReLU when ``signed``) merged by an ``Add`` (``a_shift``,
    ``b_shift``, ``output_shift`` = ``shifts``) or a ``Concatenate``, then (``tail``) a Conv2D to int32; 16 images.
    Both branches read the input layer; each branch's output shift is calibrated to spread its values. ``wide``:
    ``b`` and the ``Add`` output 8 bits, the rest ``bits`` (a 4-bit model's residual branch)."""
    rng = np.random.default_rng(bits + 10 * signed + 100 * wide)
    x = rng.integers(0, 256, (16, 1, 8, 8)).astype(np.float64)
    first = conv(rng, 1, 4, 3, first=True, obits=bits, pads=(1, 1, 1, 1))
    a = conv(rng, 4, 4, 3, wbits=bits, obits=bits, pads=(1, 1, 1, 1))
    b_bits = 8 if wide else bits
    b = dataclasses.replace(conv(rng, 4, 4, 3, wbits=bits, obits=b_bits, pads=(1, 1, 1, 1)), relu=int(not signed))
    first, a = (calibrated([first, a], (1, 8, 8), x).nodes[n] for n in ("l0", "l1"))
    b = calibrated([first, b], (1, 8, 8), x).nodes["l1"]
    nodes = {"x": Input(shape=(1, 8, 8)), "l0": first, "a": a, "b": b}
    if merge == "add":
        sa, sb, so = (np.full(4, v) for v in shifts)
        nodes["m"] = AkidaAdd(a_shift=sa, b_shift=sb, output_shift=so, output_bits=b_bits, signed=int(signed))
    else:
        nodes["m"] = AkidaConcat()
    edges = [("x", "l0"), ("l0", "a"), ("l0", "b"), ("a", "m"), ("b", "m")]
    last = "m"
    if tail:
        cin = 4 if merge == "add" else 8
        nodes["t"] = dataclasses.replace(conv(rng, cin, 3, 3, wbits=bits, obits=32, pads=(1, 1, 1, 1), relu=0),
                                         output_shift=np.zeros(3, np.int64))  # fmt: skip
        edges.append(("m", "t"))
        last = "t"
    nodes["y"] = Output()
    return Graph(nodes, [*edges, (last, "y")]), x


def backend_case(kind: str) -> tuple[Graph, dict[str, np.ndarray]]:
    """A network holding ``kind`` and its feed, (T=1, 16 images, *shape)."""
    if kind in ("AkidaAdd", "AkidaConcat"):
        graph, x = merge_network("add" if kind == "AkidaAdd" else "concat", 8)
    elif kind in ("AkidaV1Conv", "AkidaV1Dense"):
        graph, x = v1_network(2, 2) if kind == "AkidaV1Dense" else v1_valid_network()
    else:
        graph, x = pooled_network(4) if kind == "AkidaConv" else depthwise_network()
    return graph, {"x": x[None]}


# -- IP v1 ------------------------------------------------------------------------------------------------------------
def v1_layer(rng, cin: int, cout: int, k: int = 3, *, wbits: int = 4, bits: int = 4, first: bool = False, **kw):
    """An ``AkidaV1Conv`` (``k`` > 0) or ``AkidaV1Dense`` (``k`` = 0, ``cin`` inputs) of random weights in the IP v1
    range of ``wbits`` (8: the input layer); threshold and act_step set by ``calibrated_v1``."""
    lo, hi = WEIGHT_RANGES[8 if first else wbits]
    common = dict(threshold=np.zeros(cout), act_step=np.ones(cout), act_bits=bits, weights_bits=8 if first else wbits)
    if k == 0:
        return AkidaV1Dense(weight=rng.integers(lo, hi + 1, (cout, cin)), **common, **kw)
    return AkidaV1Conv(weight=rng.integers(lo, hi + 1, (cout, cin, k, k)), input_layer=int(first), **common, **kw)


def calibrated_v1(layers: list, shape: tuple[int, ...], x: np.ndarray, rng: np.random.Generator) -> Graph:
    """``layers`` with thresholds and (float, not multiples of 1/16) act_steps per channel that spread each layer's
    activations over its levels on ``x``; a last layer without activation keeps act_step 1 and gets a threshold."""
    done: list = []
    for layer in layers:
        probe = dataclasses.replace(layer, activation=0, threshold=np.zeros_like(layer.threshold),
                                    act_step=np.ones_like(layer.act_step))  # fmt: skip
        pot = run(chain([*done, probe], shape), {"x": x[None]}, steps=1).outputs["y"][0]
        pot = pot.reshape(len(x), pot.shape[1], -1).transpose(1, 0, 2).reshape(pot.shape[1], -1)
        low, high = np.percentile(pot, 30, axis=1), np.percentile(pot, 97, axis=1)
        if not layer.activation:
            done.append(dataclasses.replace(layer, threshold=np.round(rng.normal(0, 1 + np.abs(low)))))
            continue
        levels = (1 << layer.act_bits) - 1
        steps = np.maximum((high - low) / levels / 2.0 ** (4 - layer.act_bits), 0.07) * rng.uniform(0.9, 1.1, len(low))
        done.append(dataclasses.replace(layer, threshold=np.round(low), act_step=steps.astype(np.float32)))
    return chain(done, shape)


def v1_network(bits: int, wbits: int) -> tuple[Graph, np.ndarray]:
    """InputConvolutional SAME + SAME max-pool 3/3 (an extra row: ceil(14 / 3)), Convolutional SAME /2 on an odd
    map, a 1x1 Convolutional (``padding="same"``) with a SAME max-pool 2/2 (VALID would pool 3x3 to 1x1, SAME to
    2x2), FullyConnected with activation, FullyConnected without (potential minus threshold); 16 images."""
    rng = np.random.default_rng(100 + 10 * bits + wbits)
    layers = [
        v1_layer(rng, 1, 6, first=True, bits=bits, pads=(1, 1, 1, 1), pool="max", pool_size=3, pool_stride=3),
        v1_layer(rng, 6, 8, wbits=wbits, bits=bits, pads=(1, 1, 1, 1), stride=2),
        v1_layer(rng, 8, 8, 1, wbits=wbits, bits=bits, padding="same", pool="max", pool_size=2, pool_stride=2),
        v1_layer(rng, 8 * 2 * 2, 7, 0, wbits=wbits, bits=bits),
        v1_layer(rng, 7, 5, 0, wbits=wbits, bits=bits, activation=0),
    ]
    x = rng.integers(0, 256, (16, 1, 14, 14)).astype(np.float64)
    return calibrated_v1(layers, (1, 14, 14), x, rng), x


def v1_valid_network() -> tuple[Graph, np.ndarray]:
    """RGB InputConvolutional 5x5 VALID /2 + VALID max-pool 2/2, Convolutional SAME_UPPER /2 on an even map,
    Convolutional VALID + VALID max-pool 2/1, FullyConnected without activation; 16 images."""
    rng = np.random.default_rng(7)
    layers = [
        v1_layer(rng, 3, 8, 5, first=True, stride=2, pool="max", pool_size=2, pool_stride=2),
        v1_layer(rng, 8, 8, 3, wbits=2, bits=2, pads=(1, 0, 1, 0), stride=2),  # SAME_UPPER: the odd pad before
        v1_layer(rng, 8, 6, 3, wbits=4, bits=4, pool="max", pool_size=2, pool_stride=1),
        v1_layer(rng, 6 * 2 * 2, 4, 0, wbits=1, activation=0),
    ]
    x = rng.integers(0, 256, (16, 3, 46, 46)).astype(np.float64)
    return calibrated_v1(layers, (3, 46, 46), x, rng), x


def v1_step_probe(bits: int) -> tuple[Graph, np.ndarray]:
    """One InputConvolutional of 1x1 weights 1 on one image of the pixels 0..255, its 16 channels' thresholds placed
    so that each crosses a level ``k`` of its own near ``k · act_step``, for act_steps that are no multiple of 1/16:
    where the engine's 1/16 step and the plain step differ."""
    steps = np.float32([105.900894, 263.7387, 117.48039, 10.3, 7.77, 13.3, 2.5, 0.7, 41.13, 99.99, 3.3, 57.7, 6.1,
                        250.3, 30.97, 1.9])  # fmt: skip
    k = np.arange(1, 17) % ((1 << bits) - 1) + 1
    unit = 2.0 ** (4 - bits)
    threshold = 128 - np.round(k * steps.astype(np.float64) * unit)
    layer = AkidaV1Conv(weight=np.ones((16, 1, 1, 1)), threshold=threshold, act_step=steps, act_bits=bits,
                        weights_bits=8, input_layer=1)  # fmt: skip
    return chain([layer], (1, 16, 16)), np.arange(256, dtype=np.float64).reshape(1, 1, 16, 16)
