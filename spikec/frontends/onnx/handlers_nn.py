"""Layer ONNX ops: Conv, ConvTranspose, Gemm, MatMul, BatchNormalization and the pools.

Weights must be constants (initializers). Layers with a channel axis need the batch axis in
front ((N, C, *spatial), per sample (C, *spatial)). Exact lowerings use the plain ``ann`` kinds
(``Dense``, ``Conv``, ``MaxPool``/``AvgPool``, ``BatchNorm``); what they cannot express goes to
``Pad``, ``ConvTranspose``, ``Pool`` or ``MatMul``.
"""

from __future__ import annotations

import numpy as np

from spikec.frontends.onnx.handlers_math import binary, need_act, need_const, operands
from spikec.frontends.onnx.layout import BatchAxisError, Layout
from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.registry import Act, Const, OnnxNode, Outputs, Value, handler
from spikec.ir import AvgPool, BatchNorm, Bias, Conv, ConvTranspose, Dense, MatMul, MaxPool, Pad, Pool, Reduce, Scale
from spikec.ir import Transpose as TransposeKind
from spikec.ir.spatial import pool_output_size


def _spatial_input(n: OnnxNode, ctx: Lowering, nd: int) -> Act:
    """The (batch, channels, *spatial) input of a layer, as one sample's (channels, *spatial)."""
    x = need_act(n, 0, ctx)
    if x.layout != Layout(0) and ctx.batch:
        x = ctx.adopt(x, 0)  # BatchAxisError unless a static batch of 1 lies on axis 0
    if x.layout != Layout(0) or len(x.shape) != nd + 1:
        raise ctx.fail(
            f"expects (batch, channels, {nd} spatial axes) with the batch axis in front, got "
            f"{ctx.full_shape(x)}{'' if ctx.batch else ' without a batch axis'}: export with a batch axis in front "
            "(or import with --batch-axis 0)"
        )
    return x


def _pads(
    n: OnnxNode, ctx: Lowering, spatial: tuple[int, ...], kernel: list[int], stride: list[int], dil: list[int]
) -> list[int]:
    """Explicit (begins…, ends…) pads, from ``pads`` or ``auto_pad``."""
    nd = len(spatial)
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i, size in enumerate(spatial):
            out = -(-size // stride[i])
            total = max((out - 1) * stride[i] + dil[i] * (kernel[i] - 1) + 1 - size, 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[nd + i] = (small, big) if auto == "SAME_UPPER" else (big, small)
        return pads
    if auto == "VALID":
        return [0] * (2 * nd)
    if auto not in ("NOTSET", ""):
        raise ctx.fail(f"auto_pad '{auto}' is not known")
    pads = [int(p) for p in n.attr("pads", [0] * (2 * nd))]
    if len(pads) != 2 * nd or any(p < 0 for p in pads):
        raise ctx.fail(f"pads {pads} must be {2 * nd} entries >= 0")
    return pads


def _window(n: OnnxNode, kernel: list[int]) -> tuple[list[int], list[int]]:
    nd = len(kernel)
    return [int(s) for s in n.attr("strides", [1] * nd)], [int(d) for d in n.attr("dilations", [1] * nd)]


# -- convolutions -----------------------------------------------------------------------------------
@handler("Conv")
def _conv(n: OnnxNode, ctx: Lowering) -> Outputs:
    w = need_const(n, 1, "weight", ctx)
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise ctx.fail(f"{nd}-d convolution: spikec's Conv covers 1-d and 2-d")
    x = _spatial_input(n, ctx, nd)
    bias = None if n.input(2) is None else need_const(n, 2, "bias", ctx)
    kernel = list(w.shape[2:])
    stride, dil = _window(n, kernel)
    pads = _pads(n, ctx, x.shape[1:], kernel, stride, dil)
    sym = [min(pads[i], pads[nd + i]) for i in range(nd)]
    extra = [pads[i] - sym[i] for i in range(nd)] + [pads[nd + i] - sym[i] for i in range(nd)]
    if any(extra):  # asymmetric: pad the remainder explicitly first
        x = ctx.add(Pad(pads=(0, *extra[:nd], 0, *extra[nd:])), [x], suffix="pad")
    conv = Conv(
        weight=w,
        bias=bias,
        stride=tuple(stride),
        padding=tuple(sym),
        dilation=tuple(dil),
        groups=int(n.attr("group", 1)),
    )
    return [ctx.add(conv, [x])]


@handler("ConvTranspose")
def _conv_transpose(n: OnnxNode, ctx: Lowering) -> Outputs:
    w = need_const(n, 1, "weight", ctx)
    nd = w.ndim - 2
    if nd not in (1, 2, 3):
        raise ctx.fail(f"{nd}-d transposed convolution is not supported")
    x = _spatial_input(n, ctx, nd)
    bias = None if n.input(2) is None else need_const(n, 2, "bias", ctx)
    kernel = list(w.shape[2:])
    stride, dil = _window(n, kernel)
    out_pad = [int(p) for p in n.attr("output_padding", [0] * nd)]
    full = [stride[i] * (x.shape[1 + i] - 1) + out_pad[i] + dil[i] * (kernel[i] - 1) + 1 for i in range(nd)]
    output_shape = n.attr("output_shape")
    auto = n.attr("auto_pad", "NOTSET")
    if output_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        want = (
            [int(s) for s in output_shape][-nd:]
            if output_shape is not None
            else [s * x.shape[1 + i] for i, s in enumerate(stride)]
        )
        pads = [0] * (2 * nd)
        for i in range(nd):
            total = full[i] - want[i]
            if total < 0:
                out_pad[i] -= total  # ONNX grows the output at the end to reach output_shape
                total = 0
            small, big = total // 2, total - total // 2
            pads[i], pads[nd + i] = (small, big) if auto == "SAME_UPPER" else (big, small)
    else:
        pads = [0] * (2 * nd) if auto == "VALID" else [int(p) for p in n.attr("pads", [0] * (2 * nd))]
    node = ConvTranspose(
        weight=w,
        bias=bias,
        stride=tuple(stride),
        pads=tuple(pads),
        output_padding=tuple(out_pad),
        dilation=tuple(dil),
        groups=int(n.attr("group", 1)),
    )
    return [ctx.add(node, [x])]


# -- products ----------------------------------------------------------------------------------------
def real(weight: np.ndarray) -> np.ndarray:
    """A weight as stored when it is float32/float64 (float32 weights stay float32: half the memory, and the
    interpreter widens them exactly), else as float64."""
    return weight if weight.dtype in (np.float32, np.float64) else np.asarray(weight, np.float64)


def _matrix_axes_free(ctx: Lowering, v: Value, matrix_axes: int) -> None:
    """``BatchAxisError`` when the batch lies on one of ``v``'s last ``matrix_axes`` ONNX axes."""
    if isinstance(v, Act) and v.layout is not None and v.layout.group >= ctx.rank(v) - matrix_axes:
        raise BatchAxisError(f"a matrix product contracts or indexes the batch axis (axis {v.layout.group})")


def matmul(ctx: Lowering, a: Value, b: Value) -> Act:
    """ONNX MatMul: a constant 2-d right operand is a ``Dense``; anything else a ``MatMul`` node, whose
    leading (batch) axes broadcast as numpy's do: the batch must lie there, in one place in both."""
    if isinstance(a, Act) and isinstance(b, Const) and b.value.ndim == 2 and len(a.shape) >= 1:
        _matrix_axes_free(ctx, a, 1)
        return ctx.add(Dense(weight=real(ctx.static(b, "weight")).T), [a])
    for v in (a, b):
        _matrix_axes_free(ctx, v, min(2, ctx.rank(v)))
    x, y = operands(ctx, [a, b])
    return ctx.add(MatMul(), [x, y])


@handler("MatMul")
def _matmul(n: OnnxNode, ctx: Lowering) -> Outputs:
    a, b = n.input(0), n.input(1)
    assert a is not None and b is not None
    return [matmul(ctx, a, b)]


@handler("Gemm")
def _gemm(n: OnnxNode, ctx: Lowering) -> Outputs:
    a, b, c = n.input(0), n.input(1), n.input(2)
    assert a is not None and b is not None
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    for flag, v in (("transA", a), ("transB", b)):
        if n.attr(flag, 0) and isinstance(v, Act) and v.layout is not None:
            raise BatchAxisError(f"{flag}=1 transposes the batch axis of an activation operand")
    if n.attr("transA", 0):
        a = ctx.add(TransposeKind(perm=(1, 0)), [a]) if isinstance(a, Act) else Const(ctx.static(a, "A").T)
    if n.attr("transB", 0):
        b = ctx.add(TransposeKind(perm=(1, 0)), [b]) if isinstance(b, Act) else Const(ctx.static(b, "B").T)
    if c is not None and beta == 0.0:
        c = None
    if isinstance(a, Act) and isinstance(b, Const):
        _matrix_axes_free(ctx, a, 1)
        weight = real(ctx.static(b, "B")).T
        if alpha != 1.0:
            weight = alpha * np.asarray(weight, np.float64)
        bias = None
        if isinstance(c, Const):
            cv = beta * np.asarray(ctx.static(c, "C"), np.float64)
            width = weight.shape[0]
            if cv.size == 1 or cv.shape in ((width,), (1, width)):  # one bias per output column
                bias, c = np.broadcast_to(cv.reshape(-1), (width,)).copy(), None
        y = ctx.add(Dense(weight=weight, bias=bias), [a])
    else:
        y = matmul(ctx, a, b)
        if alpha != 1.0:
            y = ctx.add(Scale(scale=np.asarray(alpha)), [y])
    if c is None:
        return [y]
    if isinstance(c, Const):
        return [binary(ctx, "add", y, Const(beta * np.asarray(ctx.static(c, "C"), np.float64)))]
    return [binary(ctx, "add", y, binary(ctx, "mul", c, Const(np.asarray(beta))) if beta != 1.0 else c)]


# -- normalisation ----------------------------------------------------------------------------------
@handler("BatchNormalization")
def _batch_norm(n: OnnxNode, ctx: Lowering) -> Outputs:
    if n.attr("training_mode", 0) or any(n.used[1:]):
        raise ctx.fail("training mode (batch statistics) is not inference; export the model in eval mode")
    x = need_act(n, 0, ctx)
    gamma, beta, mean, var = (need_const(n, i, f, ctx) for i, f in enumerate(("scale", "bias", "mean", "var"), 1))
    eps = float(n.attr("epsilon", 1e-5))
    channel = ctx.axis(x, 1)
    if channel == 0 and x.layout is not None:
        return [ctx.add(BatchNorm(mean=mean, var=var, weight=gamma, bias=beta, eps=eps), [x])]
    # no batch axis: channels are per-sample axis 1; the same affine map, written out
    tail = (1,) * (len(x.shape) - channel - 1)
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return [ctx.chain(x, Scale(scale=scale.reshape(-1, *tail)), Bias(bias=shift.reshape(-1, *tail)))]


# -- pooling ----------------------------------------------------------------------------------------
@handler("MaxPool", "AveragePool")
def _pool(n: OnnxNode, ctx: Lowering) -> Outputs:
    if n.op == "MaxPool" and len(n.used) > 1 and n.used[1]:
        raise ctx.fail("the Indices output (argmax) is not supported")
    kernel = [int(k) for k in n.attr("kernel_shape")]
    nd = len(kernel)
    x = _spatial_input(n, ctx, nd)
    stride, dil = _window(n, kernel)
    pads = _pads(n, ctx, x.shape[1:], kernel, stride, dil)
    ceil = int(n.attr("ceil_mode", 0))
    include = int(n.attr("count_include_pad", 0))
    mode = "max" if n.op == "MaxPool" else "avg"
    sym = all(pads[i] == pads[nd + i] for i in range(nd))
    same_size = all(
        pool_output_size(x.shape[1 + i], kernel[i], stride[i], 1, pads[i], pads[nd + i], bool(ceil))
        == pool_output_size(x.shape[1 + i], kernel[i], stride[i], 1, pads[i], pads[nd + i], False)
        for i in range(nd)
    )
    plain = nd in (1, 2) and sym and all(d == 1 for d in dil) and same_size
    if plain and (mode == "max" or include or not any(pads)):
        kind = MaxPool if mode == "max" else AvgPool
        return [ctx.add(kind(kernel_size=tuple(kernel), stride=tuple(stride), padding=tuple(pads[:nd])), [x])]
    pool = Pool(
        mode=mode,
        kernel_size=tuple(kernel),
        stride=tuple(stride),
        dilation=tuple(dil),
        pads=tuple(pads),
        ceil_mode=ceil,
        count_include_pad=include,
    )
    return [ctx.add(pool, [x])]


@handler("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = _spatial_input(n, ctx, ctx.rank(need_act(n, 0, ctx)) - 2)
    spatial = tuple(x.shape[1:])
    if len(spatial) in (1, 2):
        kind = AvgPool if n.op == "GlobalAveragePool" else MaxPool
        return [ctx.add(kind(kernel_size=spatial), [x])]
    axes = tuple(range(1, len(x.shape)))
    return [ctx.add(Reduce(op="mean" if n.op == "GlobalAveragePool" else "max", axes=axes, keepdims=1), [x])]
