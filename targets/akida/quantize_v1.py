"""``quantize{target=akida,ip_version=1}``: one layer plan → an Akida IP v1 layer (``dialect_v1``), with its report.

IP v1 layers have no bias, shift or scale: their ``threshold`` and ``act_step`` carry what IP v2's bias and output
scale do (docs/akida-target.md, "IP v1"). Per layer, with ``s_x`` the scale of the layer's input integers (a scalar,
or one per input channel after an IP v1 layer):

* the input scale is folded into the float weights, :math:`W' = W s_x` (per input channel), so each output
  channel's potential has the scale of its weights alone;
* weights per output channel (the last layer: one scale for all) :math:`W_q = \\mathrm{clip}(\\mathrm{round}(W' /
  s_w))` into the IP v1 range of their bits (8: the input layer; 4: [-7, 7]; 2: {-1, 0, 1}; 1: {0, 1}), ``s_w``
  the scale of least squared error (``weight_scales``), so :math:`s_{acc} = s_w`;
* a hidden layer's output :math:`s_y = M / (2^b - 1)` (``M`` the calibrated range): the step :math:`s_y / s_{acc}`
  held as ``act_step`` (divided by :math:`2^{4-b}`, the engine's factor, to 1/16, as the engine keeps it), and
  ``threshold`` = round(step / 2 - b / s_acc), so that ``ceil`` rounds to nearest and the bias is added; the step
  the engine holds gives each channel's actual output scale, which the next layer folds in;
* the last layer without ReLU: ``threshold`` = round(-b / s_acc), ``act_step`` 1, no activation: its output is
  the potential minus threshold (scale :math:`s_{acc}`), the logits' argmax;
* a 2x2/2 average pool (``legalize``: its own layer): a 3x3/2 SAME ``Convolutional`` of 1-bit weights, 1 on the
  pool's window of its own channel, step 4 (the mean, rounded), its input's scale kept;
* a global average pool before a dense layer is folded into it (IP v1's global average pools the potentials
  before the activation, not the ReLU's outputs): the dense weights spread over the map, :math:`s_{acc} = s_w / P`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikec.errors import TargetError
from spikec.ir import ann
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.passes.quantize import QuantizationError
from spikec.targets.akida.dialect_v1 import STEP_FRACTION, WEIGHT_RANGES, AkidaV1Conv, AkidaV1Dense
from spikec.targets.akida.layer_geometry import (
    Step,
    conv_geometry,
    conv_padding,
    embed_dense,
    layer_node,
    sir_before_flatten,
)
from spikec.targets.akida.legalize import Plan
from spikec.targets.akida.quantize import weight_error

WEIGHT_BITS = (1, 2, 4)  # the input layer's are 8
ACTIVATION_BITS = (1, 2, 4)
SCALE_GRID = 128  # candidate weight scales per channel, fractions of max|W| (weight_scales)


def check_bits_v1(weight_bits: int, activation_bits: int) -> None:
    """The bit widths Akida IP v1 allows, or ``QuantizationError`` naming them."""
    if weight_bits not in WEIGHT_BITS:
        raise QuantizationError(
            f"quantize{{target=akida}}: weight_bits={weight_bits}: Akida IP v1 weights are 1, 2 or 4 bits (only its "
            "input layer's are 8, which this target always uses there); give quantize.weight_bits=1, 2 or 4, or "
            "leave it out for 4"
        )
    if activation_bits not in ACTIVATION_BITS:
        raise QuantizationError(
            f"quantize{{target=akida}}: activation_bits={activation_bits}: Akida IP v1 activations are 1, 2 or 4 "
            'bits (the engine: "The act_bits parameter must be between 1 and 4.")'
        )


def quantize_weights(w: np.ndarray, bits: int, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """``W ≈ s_w W_q`` with ``W_q`` in the IP v1 range of ``bits`` (``WEIGHT_RANGES``), ``s_w`` per output channel
    (or one for all): max|W| / top at 8 bits, else the candidate of least squared error (``weight_scales``)."""
    lo, hi = WEIGHT_RANGES[bits]
    flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    s_w = _max_scales(flat, hi) if bits == 8 else weight_scales(flat, lo, hi)
    s_w = np.broadcast_to(s_w, (w.shape[0],)).copy()
    q = np.clip(np.round(w / s_w.reshape(-1, *([1] * (w.ndim - 1)))), lo, hi)
    return q.astype(np.int64), s_w


def _max_scales(flat: np.ndarray, top: int) -> np.ndarray:
    peak = np.abs(flat).max(axis=1)
    return np.where(peak > 0, peak / top, 1.0)


def weight_scales(flat: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Per row of ``flat``, the scale ``s`` (a fraction of max|W| / hi, ``SCALE_GRID`` candidates) minimising
    :math:`\\|W - s\\,\\mathrm{clip}(\\mathrm{round}(W/s), lo, hi)\\|^2`: at 1 and 2 bits the largest weight's
    scale would round most weights to 0."""
    top = _max_scales(flat, hi)
    fractions = np.arange(1, SCALE_GRID + 1) / SCALE_GRID
    best, best_err = top.copy(), np.full(len(flat), np.inf)
    for f in fractions:
        s = top * f
        q = np.clip(np.round(flat / s[:, None]), lo, hi)
        err = np.sum((flat - s[:, None] * q) ** 2, axis=1)
        better = err < best_err
        best[better], best_err[better] = s[better], err[better]
    return best


def _fold_input_scale(w: np.ndarray, s_x: np.ndarray) -> np.ndarray:
    """``W`` times its inputs' scale: a scalar, or one per input channel (a dense layer: over its (C, H, W) map, in
    SIR's C-order flatten)."""
    s_x = np.asarray(s_x, np.float64)
    if s_x.ndim == 0:
        return w * float(s_x)
    if w.ndim == 4:
        return w * s_x.reshape(1, -1, 1, 1)
    return (w.reshape(w.shape[0], s_x.size, -1) * s_x.reshape(1, -1, 1)).reshape(w.shape)


def _full_kernel(node: ann.Conv) -> np.ndarray:
    """A depthwise kernel (one filter per channel) as a full one, zero across channels: IP v1 has no depthwise
    layer."""
    w = np.asarray(node.weight, np.float64)
    if node.groups == 1:
        return w
    full = np.zeros((w.shape[0], w.shape[0], *w.shape[2:]))
    full[np.arange(w.shape[0]), np.arange(w.shape[0])] = w[:, 0]
    return full


def _source_plan(plans: list[Plan], plan: Plan) -> Plan | None:
    return next((p for p in plans if plan.sources and p.weighted == plan.sources[0]), None)


def _dense_weights(
    graph: Graph, plans: list[Plan], at: Step, plan: Plan, w: np.ndarray, per_channel: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """A dense layer's float weights (input scale folded in), their integers, those over the map the IP v1 layer
    before outputs, their scales and the global-average window folded into them (1 if none)."""
    sir_shape, shape = sir_before_flatten(graph, plan.weighted), at.shape
    w = _fold_input_scale(w, at.s_x)
    q, s_w = quantize_weights(w, at.weight_bits, per_channel)
    before = _source_plan(plans, plan)
    if len(shape) != 3 or tuple(shape) == tuple(sir_shape):
        return w, q, q, s_w, 1
    if before is not None and before.pool == "global_avg":  # spread over the map: sum of P positions, P·mean
        full = np.broadcast_to(q.reshape(q.shape[0], -1, 1, 1), (q.shape[0], *shape))
        return w, q, full.reshape(q.shape[0], -1), s_w, int(shape[1] * shape[2])
    return w, q, embed_dense(q, shape=shape, sir_shape=sir_shape), s_w, 1  # SAME pooling's extra rows: weight 0


def _conv_geometry_v1(graph: Graph, plans: list[Plan], at: Step, node: ann.Conv, averaging: bool) -> dict[str, Any]:
    """The conv's stride, pads, padding and pool as ``AkidaV1Conv`` fields, or the IP v1 rule it breaks."""
    plan = plans[at.index]
    stride, pads, _, _ = conv_geometry(graph, plans, at, node, averaging)
    upper = pads[0] > pads[1] or pads[2] > pads[3]
    if at.index == 0 and upper:
        raise TargetError(
            f"{graph.describe(plan.weighted)}: padding {pads} is Akida's SAME_UPPER, which IP v1's "
            "InputConvolutional does not compute as it does in later layers (measured); pad the first "
            "convolution SAME (odd pad after) or VALID, or compile for IP v2"
        )
    fields: dict[str, Any] = dict(stride=stride, pads=pads, input_layer=int(at.index == 0))
    fields["padding"] = conv_padding(node)  # a 1x1 kernel: SAME (VALID's function; the only padding AKD1000 maps)
    if plan.pool == "max":
        fields |= dict(pool="max", pool_size=plan.pool_size, pool_stride=plan.pool_stride)
    elif plan.pool == "global_avg" and not at.next_dense:
        raise TargetError(
            f"{graph.describe(plan.nodes[-1])}: a global average pool not followed by a dense layer: IP v1's "
            "average pools the potentials before the activation, not the ReLU's outputs; follow it by a dense "
            "layer (into which it is folded) or compile for IP v2"
        )
    return fields


def _activation(
    plan: Plan, at: Step, s_acc: np.ndarray, bias: np.ndarray, last: bool, window: int
) -> tuple[dict[str, Any], np.ndarray, int]:
    """``threshold``, ``act_step``, ``activation``, ``act_bits`` and the output's scale per channel, its bits."""
    if last and not plan.relu:
        threshold = np.round(-bias / s_acc)
        fields = dict(threshold=threshold, act_step=np.ones(len(s_acc)), activation=0, act_bits=4)
        return fields, s_acc, 32
    bits = at.activation_bits
    if window > 1:  # an average pool's layer keeps its input's scale
        s_y = np.broadcast_to(np.asarray(at.s_x, np.float64), s_acc.shape)
    else:
        assert plan.out_range is not None
        s_y = np.full(s_acc.shape, plan.out_range / ((1 << bits) - 1))
    unit = 2.0 ** (4 - bits)  # the engine's step is 2^(4-b) act_step
    act_step = np.maximum(np.round(STEP_FRACTION * window * s_y / s_acc / unit), 1) / STEP_FRACTION
    step = act_step * unit
    threshold = np.round(step / 2 - window * bias / s_acc)
    return dict(threshold=threshold, act_step=act_step, activation=1, act_bits=bits), step * s_acc / window, bits


def layer_v1(graph: Graph, plans: list[Plan], at: Step) -> tuple[Node, np.ndarray, dict[str, Any]]:
    """One plan → its Akida IP v1 node, its output's integer scale (per channel) and its report entry."""
    plan, node, averaging = layer_node(graph, plans, at)
    first, last = at.index == 0, at.index == len(plans) - 1
    bias = np.zeros(node.weight.shape[0]) if plan.bias is None else np.asarray(plan.bias, np.float64)
    layer: Node
    window = 1
    if isinstance(node, ann.Dense):
        w, q, spread, s_w, folded = _dense_weights(
            graph, plans, at, plan, np.asarray(node.weight, np.float64), not last
        )
        wbits, s_acc = at.weight_bits, s_w / folded
        fields, s_y, obits = _activation(plan, at, s_acc, bias, last, 1)
        layer = AkidaV1Dense(weight=spread, weights_bits=wbits, origin=node.origin, **fields)
        akida_type = "FullyConnected"
    else:
        geometry = _conv_geometry_v1(graph, plans, at, node, averaging)
        w = _full_kernel(node)
        if averaging:  # weights 1: the sum of the pool's window, its 1/4 in the step
            q, s_w, wbits, window = w.astype(np.int64), np.ones(w.shape[0]), 1, 4
            s_acc = np.broadcast_to(np.asarray(at.s_x, np.float64), s_w.shape).copy()
        else:
            wbits = 8 if first else at.weight_bits
            w = _fold_input_scale(w, at.s_x)
            q, s_w = quantize_weights(w, wbits, per_channel=not last)
            s_acc = s_w
        fields, s_y, obits = _activation(plan, at, s_acc, bias, last, window)
        layer = AkidaV1Conv(weight=q, weights_bits=wbits, origin=node.origin, **geometry, **fields)
        akida_type = "InputConvolutional" if first else "Convolutional"
    record = {
        "name": plan.weighted, "origin": node.origin, "akida": akida_type, "nodes": plan.nodes,
        "weight_bits": wbits, "output_bits": obits, "relu": plan.relu, "pool": plan.pool,
        "weight_scale": float(np.max(s_w)), "output_scale": float(np.max(s_y)), "calibrated_range": plan.out_range,
        "weight_rel_error": round(weight_error(w, q, s_w), 6),
        "threshold": [int(np.min(fields["threshold"])), int(np.max(fields["threshold"]))],
        "act_step": [float(np.min(fields["act_step"])), float(np.max(fields["act_step"]))],
    }  # fmt: skip
    return layer, s_y, record
