"""``quantize{target=akida}``: the layer plans (``legalize.plan_layers``) → the Akida dialect, with a report.

``ip_version`` (2, the default, or 1: ``--akida-version 1``, the target's flag for it) chooses the layers: IP v2's
below, or IP v1's (``quantize_v1.py``: thresholds and steps instead of biases and scales; no Add or Concatenate).

IP v2 scales, per layer (docs/akida-target.md, "Quantization"):

* input: Akida's ``InputConv2D`` takes uint8 pixels, one per input unit (the pass ``akida-input`` before this one
  folds a model's own input scale into its first convolution);
* weights: per output channel, :math:`s_w = \\max|W_o| / (2^{b-1} - 1)`, :math:`W_q = \\mathrm{round}(W/s_w)`
  (the input layer always 8-bit, as the engine requires; the last layer one scale for all outputs, so its
  integer outputs compare across classes);
* accumulator :math:`s_{acc} = s_x s_w`; bias :math:`\\mathrm{round}(b / s_{acc})` as an int8 mantissa
  ``<< bias_shift``;
* output: :math:`s_y = M / q_{max}` with :math:`M` the calibrated range (the ``Quantize`` after the layer,
  from the calibration samples) and :math:`q_{max}` 15 (4-bit) or 127 (8-bit); the multiplier
  :math:`s_{acc} / (s_y P)` (``P`` the global-average window) as ``output_scales`` (1..255) and
  ``output_shift``; the last layer outputs its 32-bit accumulator (:math:`s_y = s_{acc}`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from spikec.errors import TargetError
from spikec.ir import ann, exact
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.passes._graphedit import bypass
from spikec.passes.quantize import QuantizationError, QuantizeResult
from spikec.targets.akida.dialect import AkidaAdd, AkidaConcat, AkidaConv, AkidaDense
from spikec.targets.akida.layer_geometry import (
    Step,
    conv_geometry,
    conv_padding,
    embed_dense,
    layer_node,
    sir_before_flatten,
)
from spikec.targets.akida.legalize import MERGES, Plan, plan_layers


@dataclasses.dataclass(frozen=True)
class AkidaQuantized(QuantizeResult):
    """``QuantizeResult`` plus the float ANN it was quantized from (the ``Quantize`` markers bypassed), which the
    artifact keeps as ``ann.sir`` so that ``spikec verify`` can compare Akida's predictions with it."""

    ann: Graph | None = None


def float_ann(graph: Graph) -> Graph:
    """``graph`` without its calibration markers (``Quantize``): the float ANN."""
    for name in [n for n in graph.order if isinstance(graph.nodes[n], exact.Quantize)]:
        graph = bypass(graph, name)
    return graph


ACTIVATION_BITS = (4, 8)
WEIGHT_BITS = (4, 8)
INPUT_CHANNELS = (1, 3)  # engine: "InputConv2D input must have 1 or 3 channels."
DENSE_INPUTS = 2048  # engine (mapping): "Input dimensions are too large to fit in a FNP. The maximum value is 2048."


def qmax(bits: int) -> int:
    """The largest activation an Akida v2 layer outputs after a ReLU: 15 (4-bit), 127 (8-bit, int8)."""
    return 15 if bits == 4 else 127


def multiplier(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``m`` (> 0, per channel) as ``output_scales`` (uint8 1..255) and ``output_shift`` (int8, < 0 a right shift):
    :math:`m \\approx scale \\cdot 2^{shift}`, the scale as large as 8 bits allow."""
    m = np.asarray(m, np.float64)
    shift = np.floor(np.log2(255.0 / np.maximum(m, 1e-300))).astype(np.int64)
    scale = np.round(m * 2.0**shift)
    shift = np.where(scale > 255, shift - 1, shift)
    scale = np.clip(np.round(m * 2.0**shift), 1, 255)
    return scale.astype(np.int64), (-shift).astype(np.int64)


def bias_fields(b_acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer biases in accumulator units as int8 mantissas and ``bias_shift``: :math:`b \\approx m \\ll s`."""
    mag = np.abs(b_acc)
    shift = np.where(mag > 127, np.ceil(np.log2(np.maximum(mag, 1) / 127.0)), 0).astype(np.int64)
    mant = np.round(b_acc / 2.0**shift)
    shift = np.where(np.abs(mant) > 127, shift + 1, shift)
    mant = np.clip(np.round(b_acc / 2.0**shift), -128, 127)
    return mant.astype(np.int64), shift


def _weights(w: np.ndarray, bits: int, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    top = (1 << (bits - 1)) - 1
    flat = np.abs(w.reshape(w.shape[0], -1))
    peak = flat.max(axis=1) if per_channel else np.full(w.shape[0], flat.max())
    s_w = np.where(peak > 0, peak / top, 1.0)
    q = np.clip(np.round(w / s_w.reshape(-1, *([1] * (w.ndim - 1)))), -top - 1, top)
    return q.astype(np.int64), s_w


def check_bits(weight_bits: int, activation_bits: int) -> None:
    """The bit widths Akida IP v2 allows, or ``QuantizationError`` with the engine's rule."""
    if weight_bits not in WEIGHT_BITS:
        raise QuantizationError(
            f"quantize{{target=akida}}: weight_bits={weight_bits}: Akida IP v2 weights are 4 or 8 bits"
        )
    if activation_bits not in ACTIVATION_BITS:
        raise QuantizationError(
            f"quantize{{target=akida}}: activation_bits={activation_bits}: Akida IP v2 activations are 4 or 8 bits"
        )
    if activation_bits < weight_bits:
        raise QuantizationError(
            f"quantize{{target=akida}}: {weight_bits}-bit weights with {activation_bits}-bit activations: "
            'the engine requires "Input bits should be >= weights bits."; raise activation_bits'
        )


def _layer(graph: Graph, plans: list[Plan], at: Step) -> tuple[Node, np.ndarray, dict[str, Any]]:
    """One plan → its Akida IP v2 node, its output's integer scale and its report entry."""
    plan, node, averaging = layer_node(graph, plans, at)
    first, last = at.index == 0, at.index == len(plans) - 1
    wbits = 8 if first else at.weight_bits
    w = np.asarray(node.weight, np.float64)
    q, s_w = (w.astype(np.int64), np.ones(w.shape[0])) if averaging else _weights(w, wbits, per_channel=not last)
    s_acc = at.s_x * s_w
    geometry = conv_geometry(graph, plans, at, node, averaging) if isinstance(node, ann.Conv) else None
    window = 1 if geometry is None else geometry[3]
    mant, bshift = bias_fields(np.round((np.zeros(w.shape[0]) if plan.bias is None else plan.bias) / s_acc))
    if last:  # the 32-bit accumulator itself
        obits, s_y = 32, s_acc
        scales, oshift = np.ones(w.shape[0], np.int64), np.zeros(w.shape[0], np.int64)
    else:
        assert plan.out_range is not None or at.s_y is not None
        wanted = at.s_y if at.s_y is not None else plan.out_range / qmax(at.activation_bits)
        obits, s_y = at.activation_bits, np.asarray(wanted)
        scales, oshift = multiplier(s_acc / (s_y * window))
    fields: dict[str, Any] = dict(
        bias=mant, bias_shift=bshift, output_scales=scales, output_shift=oshift, relu=int(plan.relu),
        output_bits=obits, weights_bits=wbits, origin=node.origin,
    )  # fmt: skip
    layer: Node
    if isinstance(node, ann.Conv) and geometry is not None:
        stride, pads, groups, _ = geometry
        pool = dict(pool="none" if averaging else plan.pool, pool_size=plan.pool_size, pool_stride=plan.pool_stride)
        layer = AkidaConv(weight=q, stride=stride, pads=pads, padding=conv_padding(node), groups=groups,
                          input_layer=int(first), input_shift=np.zeros(at.shape[0], np.int64), **pool,
                          **fields)  # fmt: skip
    else:
        dense = embed_dense(q, shape=at.shape, sir_shape=sir_before_flatten(graph, plan.weighted))
        layer = AkidaDense(weight=dense, input_shift=np.zeros(dense.shape[1], np.int64), **fields)
    record = {
        "name": plan.weighted, "origin": node.origin, "akida": _akida_type(layer), "nodes": plan.nodes,
        "weight_bits": wbits, "output_bits": obits, "relu": plan.relu, "pool": plan.pool,
        "weight_scale": float(np.max(s_w)), "output_scale": float(np.max(s_y)), "calibrated_range": plan.out_range,
        "weight_rel_error": round(weight_error(w, q, s_w), 6),
    }  # fmt: skip
    return layer, s_y, record


IP_VERSIONS = (1, 2)
DEFAULT_WEIGHT_BITS = {1: 4, 2: 8}  # each version's widest hidden-layer weights, unless quantize.weight_bits says


def quantize_akida(
    graph: Graph,
    *,
    weight_bits: int = 0,
    activation_bits: int = 0,
    input_scale: float = 1.0,
    ip_version: int = 2,
    **_: Any,
) -> QuantizeResult:
    """ANN with calibrated ``Quantize`` markers → Akida dialect graph of IP ``ip_version`` (2: this module's
    docstring; 1: ``quantize_v1``)."""
    from spikec.targets.akida.merge import WIDE_RULES, ScaleGroups, Widths, merge_layer, wide
    from spikec.targets.akida.quantize_v1 import check_bits_v1, layer_v1

    if ip_version not in IP_VERSIONS:
        raise QuantizationError(
            f"quantize{{target=akida}}: ip_version={ip_version}: Akida IP versions are 1 (AKD1000, AKD1500) and 2"
        )
    weight_bits = weight_bits or DEFAULT_WEIGHT_BITS[ip_version]
    abits = activation_bits or weight_bits
    (check_bits_v1 if ip_version == 1 else check_bits)(weight_bits, abits)
    build = layer_v1 if ip_version == 1 else _layer
    inp, plans, out = plan_layers(graph)
    if ip_version == 1:
        refuse_merges_v1(graph, plans)
    shape = tuple(graph.types[inp])
    if len(shape) != 3 or shape[0] not in INPUT_CHANNELS:
        raise TargetError(
            f"{graph.describe(inp)}: input {shape}: Akida's first layer (InputConv2D) takes (C, H, W) "
            f'images of 1 or 3 channels ("InputConv2D input must have 1 or 3 channels.")'
        )
    readers = [p for p in plans if inp in p.sources]
    if readers != plans[:1] or len(plans[0].sources) != 1:
        raise TargetError(
            f"{graph.describe(readers[-1].weighted if readers else inp)}: the input feeds {len(readers)} layers: Akida "
            "reads it through one InputConv2D; start the model with one convolution"
        )
    nodes: dict[str, Node] = {inp: graph.nodes[inp]}
    edges: list[tuple[str, str]] = []
    shapes: dict[str, tuple[int, ...]] = {inp: shape}
    scales: dict[str, np.ndarray] = {inp: np.asarray(float(input_scale))}
    widths = wide(plans, abits) if ip_version == 2 else Widths()
    groups = ScaleGroups(graph, plans, abits, widths)
    users = {p.weighted: [q for q in plans if p.weighted in q.sources] for p in plans}
    layers: list[dict[str, Any]] = []
    if plans[-1].merge:
        raise TargetError(
            f"{graph.describe(plans[-1].weighted)}: target 'akida' cannot end a model with {MERGES[plans[-1].merge]}: "
            "its output is 4 or 8 bits; put a conv or dense layer after it"
        )
    for i, plan in enumerate(plans):
        merged = [s for s in plan.sources if s in groups.by_name and groups.by_name[s].merge]
        if merged and isinstance(graph.nodes[plan.weighted], ann.Dense):
            raise TargetError(
                f"{graph.describe(plan.weighted)}: a dense layer reading {graph.describe(merged[0])}: the engine "
                'requires "Dense layer can\'t have Add/Concat as inbound."; put a convolution between them'
            )
        obits = widths.output_bits(plan.weighted, abits)
        if plan.merge:
            layer, s_y, record = merge_layer(graph, plan, [scales[s] for s in plan.sources], groups, obits)
        else:
            (src,) = plan.sources
            after = users[plan.weighted]
            step = Step(
                i, shapes[src], scales[src], widths.weight_bits(plan.weighted, weight_bits), obits,
                s_y=groups.output_scale(plan),
                next_dense=len(after) == 1 and isinstance(graph.nodes[after[0].weighted], ann.Dense),
                signed_ok=bool(after) and all(q.merge == "add" for q in after),
            )  # fmt: skip
            layer, s_y, record = build(graph, plans, step)
            groups.fix(plan, float(np.max(s_y)))
        if obits != abits:
            record["widened"] = f"{obits}-bit (the model's activations are {abits}): a residual branch into an Add; "
            record["widened"] += f"the mapper requires {WIDE_RULES}"
        nodes[plan.weighted] = layer
        edges.extend((src, plan.weighted) for src in plan.sources)
        shapes[plan.weighted] = tuple(layer.infer_shape([shapes[s] for s in plan.sources]))
        scales[plan.weighted] = s_y
        layers.append(record)
    nodes[out] = graph.nodes[out]
    edges.append((plans[-1].weighted, out))
    lowered = Graph(nodes, edges, dt=graph.dt)
    report = {
        "ip_version": f"v{ip_version}",
        "weight_bits": weight_bits,
        "activation_bits": abits,
        "input_scale": float(input_scale),
        "output_scale": [float(v) for v in np.atleast_1d(scales[plans[-1].weighted])][:1][0],
        "layers": layers,
    }
    lines = tuple(
        f"  {ly['name']:<20} {ly['akida']:<16} w{ly['weight_bits']} -> {ly['output_bits']}-bit  "
        f"scale {ly['output_scale']:.4g}  {ly['origin']}"
        for ly in layers
    )
    return AkidaQuantized(lowered, True, report=report, lines=lines, ann=float_ann(graph))


def refuse_merges_v1(graph: Graph, plans: list[Plan]) -> None:
    """IP v1 has no ``Add`` nor ``Concatenate``: the first merge, named, or nothing."""
    for plan in plans:
        if plan.merge:
            raise TargetError(
                f"{graph.describe(plan.weighted)}: target 'akida' cannot express {MERGES[plan.merge]} for Akida IP v1: "
                "its layers (InputConvolutional, Convolutional, FullyConnected) have no Add or Concatenate, which "
                "are IP v2's; compile for IP v2 (--akida-version 2, the default)"
            )


def weight_error(w: np.ndarray, q: np.ndarray, s_w: np.ndarray) -> float:
    """Relative weight quantization error: :math:`\\|W - s_w W_q\\|_2 / \\|W\\|_2`."""
    diff = w - q * s_w.reshape(-1, *([1] * (w.ndim - 1)))
    return float(np.linalg.norm(diff) / max(float(np.linalg.norm(w)), 1e-300))


def _akida_type(layer: Node) -> str:
    if isinstance(layer, (AkidaAdd, AkidaConcat)):
        return "Add" if isinstance(layer, AkidaAdd) else "Concatenate"
    if isinstance(layer, AkidaDense):
        return "Dense1D"
    assert isinstance(layer, AkidaConv)
    return "InputConv2D" if layer.input_layer else "DepthwiseConv2D" if layer.groups > 1 else "Conv2D"
