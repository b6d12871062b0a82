"""Kernels of the general tensor kinds (spikec/ir/tensor.py, spikec/ir/spatial.py, ``norm.LRN``).

Same contract as ``kernels.py``: ``(node, x, state, ctx) -> (y, state)``, written once against
the ``Backend`` primitives. Runtime values carry the batch axis in front, so a per-sample
``axis`` is ``axis + 1`` here; operands of different per-sample rank are aligned by inserting
unit axes after the batch axis (numpy's right-aligned broadcasting of per-sample shapes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.ir import norm, spatial, tensor
from spikec.ir.node import Node

Step = tuple[Tensor, State]


def _rank(x: Tensor) -> int:
    return len(x.shape) - 1  # per-sample rank


def _align(ctx: KernelContext, x: Tensor, rank: int) -> Tensor:
    """Insert unit axes after the batch axis until ``x`` has per-sample ``rank``."""
    missing = rank - _rank(x)
    if missing <= 0:
        return x
    return ctx.xp.reshape(x, (x.shape[0], *([1] * missing), *x.shape[1:]))


@kernel(tensor.Constant)
def _constant(node: tensor.Constant, x: None, state: State, ctx: KernelContext) -> Step:
    value = ctx.const("value[None]", lambda: np.asarray(node.value)[None])
    return ctx.xp.broadcast_to(value, (ctx.batch, *ctx.shape)), state


@kernel(tensor.Bias)
def _bias(node: tensor.Bias, x: Tensor, state: State, ctx: KernelContext) -> Step:
    return x + ctx.p("bias"), state


# -- elementwise ----------------------------------------------------------------------------------
def _sigmoid(ctx: KernelContext, x: Tensor) -> Tensor:
    return ctx.xp.unary("sigmoid", x)


def _softplus(ctx: KernelContext, x: Tensor) -> Tensor:
    # ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|): no overflow for large |x|
    return ctx.xp.maximum(x, 0.0) + ctx.xp.unary("log1p", ctx.xp.unary("exp", -ctx.xp.unary("abs", x)))


def _elu_part(ctx: KernelContext, x: Tensor, alpha: float) -> Tensor:
    """alpha (e^x − 1) where x <= 0, x elsewhere."""
    neg = alpha * (ctx.xp.unary("exp", ctx.xp.clip(x, -math.inf, 0.0)) - 1.0)
    return ctx.xp.where(x > 0, x, neg)


def _hard_sigmoid(ctx: KernelContext, x: Tensor, alpha: float, beta: float) -> Tensor:
    return ctx.xp.clip(alpha * x + beta, 0.0, 1.0)


def _infinity() -> np.ndarray:
    return np.asarray(np.inf)


UnaryFn = Callable[[KernelContext, Tensor, float, float], Tensor]
UNARY: dict[str, UnaryFn] = {
    "neg": lambda ctx, x, a, b: -x,
    "reciprocal": lambda ctx, x, a, b: 1.0 / x,
    "softplus": lambda ctx, x, a, b: _softplus(ctx, x),
    "softsign": lambda ctx, x, a, b: x / (1.0 + ctx.xp.unary("abs", x)),
    "leaky_relu": lambda ctx, x, a, b: ctx.xp.where(x >= 0, x, a * x),
    "elu": lambda ctx, x, a, b: _elu_part(ctx, x, a),
    "selu": lambda ctx, x, a, b: b * _elu_part(ctx, x, a),
    "celu": lambda ctx, x, a, b: ctx.xp.maximum(x, 0.0)
    + ctx.xp.clip(a * (ctx.xp.unary("exp", ctx.xp.clip(x, -math.inf, 0.0) / a) - 1.0), -math.inf, 0.0),
    "thresholded_relu": lambda ctx, x, a, b: ctx.xp.where(x > a, x, ctx.zeros()),
    "hard_sigmoid": _hard_sigmoid,
    "hard_swish": lambda ctx, x, a, b: x * _hard_sigmoid(ctx, x, 1.0 / 6.0, 0.5),
    "swish": lambda ctx, x, a, b: x * _sigmoid(ctx, a * x),
    "mish": lambda ctx, x, a, b: x * ctx.xp.unary("tanh", _softplus(ctx, x)),
    "pow": lambda ctx, x, a, b: ctx.xp.binary("pow", x, ctx.const("alpha", lambda: np.asarray(a))),
    "isnan": lambda ctx, x, a, b: 1.0 - ctx.xp.binary("eq", x, x),  # NaN is the one value unequal to itself
    "isinf": lambda ctx, x, a, b: ctx.xp.binary("eq", ctx.xp.unary("abs", x), ctx.const("inf", _infinity)),
    "not": lambda ctx, x, a, b: 1.0 - x,
    "nonzero": lambda ctx, x, a, b: 1.0 - ctx.xp.binary("eq", x, ctx.zeros()),
    "trunc": lambda ctx, x, a, b: ctx.xp.unary("sign", x) * ctx.xp.unary("floor", ctx.xp.unary("abs", x)),
}


def _primitive_unary(op: str) -> UnaryFn:
    def run(ctx: KernelContext, x: Tensor, alpha: float, beta: float) -> Tensor:
        return ctx.xp.unary(op, x)

    return run


for _op in ("abs", "exp", "log", "sqrt", "tanh", "sigmoid", "erf", "sin", "cos", "floor", "ceil", "round", "sign"):
    UNARY[_op] = _primitive_unary(_op)
assert set(UNARY) == set(tensor.UNARY_OPS), set(UNARY) ^ set(tensor.UNARY_OPS)


@kernel(tensor.Unary)
def _unary(node: tensor.Unary, x: Tensor, state: State, ctx: KernelContext) -> Step:
    return UNARY[node.op](ctx, x, node.alpha, node.beta), state


BINARY: dict[str, Callable[[KernelContext, Tensor, Tensor], Tensor]] = {
    "add": lambda ctx, a, b: a + b,
    "sub": lambda ctx, a, b: a - b,
    "mul": lambda ctx, a, b: a * b,
    "div": lambda ctx, a, b: a / b,
}


def _primitive_binary(op: str) -> Callable[[KernelContext, Tensor, Tensor], Tensor]:
    def run(ctx: KernelContext, a: Tensor, b: Tensor) -> Tensor:
        return ctx.xp.binary(op, a, b)

    return run


for _op in ("pow", "max", "min", "gt", "ge", "lt", "le", "eq"):
    BINARY[_op] = _primitive_binary(_op)
assert set(BINARY) == set(tensor.BINARY_OPS), set(BINARY) ^ set(tensor.BINARY_OPS)


@kernel(tensor.Binary)
def _binary(node: tensor.Binary, xs: list[Tensor], state: State, ctx: KernelContext) -> Step:
    a, b = (_align(ctx, v, len(ctx.shape)) for v in xs)
    return BINARY[node.op](ctx, a, b), state


@kernel(tensor.Where)
def _where(node: tensor.Where, xs: list[Tensor], state: State, ctx: KernelContext) -> Step:
    c, a, b = (_align(ctx, v, len(ctx.shape)) for v in xs)
    y = ctx.xp.where(c != 0, a, b)
    return ctx.xp.broadcast_to(y, (ctx.batch, *ctx.shape)), state


@kernel(tensor.MatMul)
def _matmul(node: tensor.MatMul, xs: list[Tensor], state: State, ctx: KernelContext) -> Step:
    a, b = xs
    if _rank(a) == 1:
        a = ctx.xp.reshape(a, (a.shape[0], 1, a.shape[1]))
    if _rank(b) == 1:
        b = ctx.xp.reshape(b, (b.shape[0], b.shape[1], 1))
    rank = max(_rank(a), _rank(b))
    y = ctx.xp.matmul(_align(ctx, a, rank), _align(ctx, b, rank))
    return ctx.xp.reshape(y, (ctx.batch, *ctx.shape)), state


# -- normalisation and reductions --------------------------------------------------------------------
@kernel(tensor.Softmax)
def _softmax(node: tensor.Softmax, x: Tensor, state: State, ctx: KernelContext) -> Step:
    axis = (tensor.normalize_axis(node.axis, len(ctx.shape)) + 1,)
    peak = ctx.xp.reduce("max", x, axis, True)
    e = ctx.xp.unary("exp", x - ctx.xp.where(peak == -math.inf, 0.0, peak))  # all -inf: e = 0, not NaN
    total = ctx.xp.reduce("sum", e, axis, True)
    return e / ctx.xp.where(total == 0, 1.0, total), state


@kernel(tensor.LogSoftmax)
def _log_softmax(node: tensor.LogSoftmax, x: Tensor, state: State, ctx: KernelContext) -> Step:
    axis = (tensor.normalize_axis(node.axis, len(ctx.shape)) + 1,)
    d = x - ctx.xp.reduce("max", x, axis, True)
    return d - ctx.xp.unary("log", ctx.xp.reduce("sum", ctx.xp.unary("exp", d), axis, True)), state


@kernel(tensor.LayerNorm)
def _layer_norm(node: tensor.LayerNorm, x: Tensor, state: State, ctx: KernelContext) -> Step:
    rank = len(ctx.shape)
    axes = tuple(range(tensor.normalize_axis(node.axis, rank) + 1, rank + 1))
    d = x - ctx.xp.reduce("mean", x, axes, True)
    var = ctx.xp.reduce("mean", d * d, axes, True)
    y = d / ctx.xp.unary("sqrt", var + node.eps)
    if node.weight is not None:
        y = y * ctx.p("weight")
    if node.bias is not None:
        y = y + ctx.p("bias")
    return y, state


@kernel(norm.LRN)
def _lrn(node: norm.LRN, x: Tensor, state: State, ctx: KernelContext) -> Step:
    """Squares zero-padded on the channel axis, summed over ``size`` shifted slices (in one order on
    every backend), then ``x / (k + α/n · Σ)^β``."""
    axis = tensor.normalize_axis(node.axis, _rank(x)) + 1
    before, after = node.window()
    channels = x.shape[axis]
    widths = [(0, 0)] * len(x.shape)
    widths[axis] = (before, after)
    squares = ctx.xp.pad(x * x, widths, 0.0)
    lead = (slice(None),) * axis
    total = squares[(*lead, slice(0, channels))]
    for shift in range(1, node.size):
        total = total + squares[(*lead, slice(shift, shift + channels))]
    base = node.k + (node.alpha / node.size) * total
    return x / ctx.xp.binary("pow", base, ctx.const("beta", lambda: np.asarray(node.beta))), state


@kernel(tensor.GELU)
def _gelu(node: tensor.GELU, x: Tensor, state: State, ctx: KernelContext) -> Step:
    if node.approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1.0 + ctx.xp.unary("tanh", inner)), state
    return 0.5 * x * (1.0 + ctx.xp.unary("erf", x * (1.0 / math.sqrt(2.0)))), state


@kernel(tensor.Reduce)
def _reduce(node: tensor.Reduce, x: Tensor, state: State, ctx: KernelContext) -> Step:
    rank = _rank(x)
    axes = tuple(tensor.normalize_axis(a, rank) + 1 for a in node.axes)
    return ctx.xp.reduce(node.op, x, axes, bool(node.keepdims)), state


# -- indexing ---------------------------------------------------------------------------------------
@kernel(tensor.Gather)
def _gather(node: tensor.Gather, x: Tensor, state: State, ctx: KernelContext) -> Step:
    axis = tensor.normalize_axis(node.axis, _rank(x)) + 1
    return ctx.xp.take(x, np.asarray(node.indices), axis), state


@kernel(tensor.Slice)
def _slice(node: tensor.Slice, x: Tensor, state: State, ctx: KernelContext) -> Step:
    for axis, picked in node.ranges(tuple(x.shape[1:])).items():
        if picked != range(x.shape[axis + 1]):
            x = ctx.xp.take(x, np.asarray(picked, dtype=np.int64), axis + 1)
    return x, state


# -- spatial ----------------------------------------------------------------------------------------
@kernel(spatial.Pad)
def _pad(node: spatial.Pad, x: Tensor, state: State, ctx: KernelContext) -> Step:
    r = _rank(x)
    if node.mode == "constant":
        widths = [(0, 0), *[(node.pads[i], node.pads[r + i]) for i in range(r)]]
        return ctx.xp.pad(x, widths, node.value), state
    for axis in range(r):  # reflect / edge / wrap: a gather of input entries along each padded axis
        if node.pads[axis] or node.pads[r + axis]:
            index = ctx.cached(f"index{axis}", functools.partial(node.source_indices, axis, int(x.shape[axis + 1])))
            x = ctx.xp.take(x, index, axis + 1)
    return x, state


@kernel(spatial.ConvTranspose)
def _conv_transpose(node: spatial.ConvTranspose, x: Tensor, state: State, ctx: KernelContext) -> Step:
    nd = len(node.stride)
    y = ctx.xp.conv_transpose(x, ctx.p("weight"), node.stride, node.dilation, node.groups)
    if any(node.output_padding):
        y = ctx.xp.pad(y, [(0, 0), (0, 0), *[(0, p) for p in node.output_padding]], 0.0)
    crop = tuple(slice(node.pads[i], y.shape[2 + i] - node.pads[nd + i]) for i in range(nd))
    y = y[(slice(None), slice(None), *crop)]
    if node.bias is not None:
        y = y + ctx.const("bias[:, None...]", lambda: np.asarray(node.bias).reshape(-1, *([1] * nd)))
    return y, state


def _pool_divisor(node: spatial.Pool, spatial_in: tuple[int, ...]) -> np.ndarray:
    """Per output position, how many window entries count for the average (numpy, once)."""
    nd = len(node.kernel_size)
    out = node.output_spatial(spatial_in)
    counts = []
    for i, n in enumerate(spatial_in):
        k, s, d, b, e = node.kernel_size[i], node.stride[i], node.dilation[i], node.pads[i], node.pads[nd + i]
        lo, hi = (-b, n + e) if node.count_include_pad else (0, n)
        starts = np.arange(out[i]) * s - b
        taps = starts[:, None] + np.arange(k)[None, :] * d
        counts.append(((taps >= lo) & (taps < hi)).sum(axis=1))
    divisor = counts[0].astype(np.float64)
    for c in counts[1:]:
        divisor = np.multiply.outer(divisor, c)
    return np.maximum(divisor, 1.0)


@kernel(spatial.Pool)
def _pool(node: spatial.Pool, x: Tensor, state: State, ctx: KernelContext) -> Step:
    nd = len(node.kernel_size)
    spatial_in = tuple(int(n) for n in x.shape[2:])
    out = ctx.shape[1:]
    widths = [(0, 0), (0, 0)]
    for i, n in enumerate(spatial_in):
        b, e = node.pads[i], node.pads[nd + i]
        need = (out[i] - 1) * node.stride[i] + node.dilation[i] * (node.kernel_size[i] - 1) + 1
        widths.append((b, max(e, need - n - b)))  # the end padding, or more for a ceil-mode overhang
    fill = -math.inf if node.mode == "max" else 0.0
    xp = ctx.xp.pad(x, widths, fill) if any(w != (0, 0) for w in widths) else x
    y = ctx.xp.window("max" if node.mode == "max" else "sum", xp, node.kernel_size, node.stride, node.dilation)
    y = y[(slice(None), slice(None), *[slice(0, m) for m in out])]
    if node.mode == "avg":
        y = y / ctx.const("divisor", lambda: _pool_divisor(node, spatial_in))
    return y, state


def kinds() -> tuple[type[Node], ...]:
    """The kinds this module registers kernels for."""
    return (
        tensor.Constant,
        tensor.Bias,
        tensor.Unary,
        tensor.Binary,
        tensor.Where,
        tensor.MatMul,
        tensor.Softmax,
        tensor.LogSoftmax,
        tensor.LayerNorm,
        norm.LRN,
        tensor.GELU,
        tensor.Reduce,
        tensor.Gather,
        tensor.Slice,
        spatial.Pad,
        spatial.ConvTranspose,
        spatial.Pool,
    )
