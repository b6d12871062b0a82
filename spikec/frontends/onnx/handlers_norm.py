"""Normalisation and probability ONNX ops: LayerNormalization, InstanceNormalization,
RMSNormalization, LRN, Softmax, LogSoftmax, and Dropout (inference: the identity)."""

from __future__ import annotations

import math

import numpy as np

from spikec.frontends.onnx.handlers_math import need_act, need_const
from spikec.frontends.onnx.handlers_shape import reshape
from spikec.frontends.onnx.layout import BatchAxisError
from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.registry import Act, Const, OnnxNode, Outputs, handler
from spikec.ir import LRN, Bias, Binary, Constant, LayerNorm, LogSoftmax, Reduce, Scale, Softmax, Unary


def trailing_axis(ctx: Lowering, x: Act, axis: int) -> int:
    """The per-sample axis of ONNX ``axis`` of an op over all axes from ``axis`` on (none may hold the batch)."""
    first = ctx.axis(x, axis)
    if x.layout is not None and x.layout.group > axis % ctx.rank(x):
        raise BatchAxisError(f"the op normalises over the axes from {axis} on, which hold the batch")
    return first


def _moments(ctx: Lowering, x: Act, axes: tuple[int, ...], eps: float) -> tuple[Act, Act]:
    """Mean and 1/sqrt(var + eps) over ``axes`` (kept as size-1 axes), as SIR nodes."""
    mean = ctx.add(Reduce(op="mean", axes=axes), [x], suffix="mean")
    d = ctx.add(Binary(op="sub"), [x, mean])
    var = ctx.add(Reduce(op="mean", axes=axes), [ctx.add(Binary(op="mul"), [d, d])], suffix="var")
    std = ctx.chain(var, Bias(bias=np.asarray(eps)), Unary(op="sqrt"))
    return mean, ctx.add(Unary(op="reciprocal"), [std], suffix="inv_std")


@handler("LayerNormalization")
def _layer_norm(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axis = trailing_axis(ctx, x, int(n.attr("axis", -1)))
    eps = float(n.attr("epsilon", 1e-5))
    weight = need_const(n, 1, "scale", ctx)
    bias = None if n.input(2) is None else need_const(n, 2, "bias", ctx)
    y = ctx.add(LayerNorm(axis=axis, weight=weight, bias=bias, eps=eps), [x])
    if not any(n.used[1:]):
        return [y]
    mean, inv_std = _moments(ctx, x, tuple(range(axis, len(x.shape))), eps)
    return [y, mean, inv_std]


@handler("InstanceNormalization")
def _instance_norm(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    channel = ctx.axis(x, 1)
    if channel + 1 >= len(x.shape):
        raise ctx.fail(f"needs spatial axes after the channel axis, got shape {ctx.full_shape(x)}")
    trailing_axis(ctx, x, 2)
    eps = float(n.attr("epsilon", 1e-5))
    tail = (1,) * (len(x.shape) - channel - 1)
    scale = need_const(n, 1, "scale", ctx).reshape(-1, *tail)
    bias = need_const(n, 2, "bias", ctx).reshape(-1, *tail)
    y = ctx.add(LayerNorm(axis=channel + 1, eps=eps), [x])
    return [ctx.chain(y, Scale(scale=scale), Bias(bias=bias))]


@handler("RMSNormalization")
def _rms_norm(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axis = trailing_axis(ctx, x, int(n.attr("axis", -1)))
    eps = float(n.attr("epsilon", 1e-5))
    scale = need_const(n, 1, "scale", ctx)
    square = ctx.add(Binary(op="mul"), [x, x])
    mean = ctx.add(Reduce(op="mean", axes=tuple(range(axis, len(x.shape)))), [square], suffix="mean_square")
    rms = ctx.chain(mean, Bias(bias=np.asarray(eps)), Unary(op="sqrt"))
    y = ctx.add(Binary(op="div"), [x, rms])
    return [ctx.add(Scale(scale=scale), [y])]


@handler("LRN")
def _lrn(n: OnnxNode, ctx: Lowering) -> Outputs:
    """Cross-channel local response normalisation of (N, C, D1, …): one ``LRN`` node."""
    x = need_act(n, 0, ctx)
    rank = ctx.rank(x)
    if rank < 2:
        raise ctx.fail(f"needs (batch, channels, ...) input, got shape {ctx.full_shape(x)}")
    size = n.attr("size")
    if size is None:
        raise ctx.fail("the size attribute is required")
    node = LRN(
        size=int(size),
        alpha=float(n.attr("alpha", 1e-4)),
        beta=float(n.attr("beta", 0.75)),
        k=float(n.attr("bias", 1.0)),
        axis=ctx.axis(x, 1),
    )
    return [ctx.add(node, [x])]


def _softmax_axis(n: OnnxNode, ctx: Lowering, x: Act) -> tuple[Act, int, tuple[int, ...] | None]:
    """The input (flattened from the axis on for opset < 13), the axis, and the shape to restore."""
    if ctx.opset >= 13:
        return x, ctx.axis(x, int(n.attr("axis", -1))), None
    axis = trailing_axis(ctx, x, int(n.attr("axis", 1)))  # opset < 13: over all axes from `axis` on
    if axis == len(x.shape) - 1:
        return x, axis, None
    flat = reshape(ctx, x, (*x.shape[:axis], math.prod(x.shape[axis:])), x.layout)
    return flat, axis, tuple(x.shape)


@handler("Softmax")
def _softmax(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    flat, axis, restore = _softmax_axis(n, ctx, x)
    y = ctx.add(Softmax(axis=axis), [flat])
    return [y if restore is None else reshape(ctx, y, restore, x.layout)]


@handler("LogSoftmax")
def _log_softmax(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    flat, axis, restore = _softmax_axis(n, ctx, x)
    y = ctx.add(LogSoftmax(axis=axis), [flat])
    return [y if restore is None else reshape(ctx, y, restore, x.layout)]


@handler("Dropout")
def _dropout(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    training = n.input(2)
    if isinstance(training, Act) or (isinstance(training, Const) and bool(np.any(training.value))):
        raise ctx.fail("training_mode is on (random masking); spikec imports inference graphs")
    mask = ctx.add(Constant(value=np.ones(x.shape)), [], suffix="mask") if any(n.used[1:]) else None
    return [x, mask]
