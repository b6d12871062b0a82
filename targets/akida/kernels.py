"""Kernels of the Akida dialect: the akida 2.19.3 engine's IP v2 integer arithmetic, exactly (IP v1: ``kernels_v1``).

Integers travel in the backend's float64 tensors; every value stays below 2**53 (8-bit inputs, 8-bit
weights, uint8 scales), so sums, products and the shifts below are exact on both backends. The
rounding right shift is :math:`\\lfloor (v + 2^{k-1}) / 2^k \\rfloor` (round half up), as measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.targets.akida import dialect as akida


def per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """(O,) → (O, 1, ..., 1) to broadcast over a (B, O, *spatial) tensor."""
    return np.asarray(values, np.float64).reshape(-1, *([1] * ndim))


def _shift(xp: Any, v: Tensor, shift: np.ndarray, ndim: int, ctx: KernelContext, key: str) -> Tensor:
    """``v << s`` where s > 0, the rounding ``v >> -s`` where s < 0, per output channel."""
    s = np.asarray(shift, np.int64)
    mul = ctx.const(f"{key}/mul", lambda: per_channel(np.where(s > 0, 2.0 ** np.maximum(s, 0), 1.0), ndim))
    div = ctx.const(f"{key}/div", lambda: per_channel(2.0 ** np.maximum(-s, 0), ndim))
    half = ctx.const(f"{key}/half", lambda: per_channel(np.where(s < 0, 2.0 ** (np.maximum(-s, 1) - 1), 0.0), ndim))
    return xp.unary("floor", (v * mul + half) / div)


def _post(node: akida.AkidaLayer, acc: Tensor, ndim: int, ctx: KernelContext) -> Tensor:
    """Bias was added; ReLU, × output_scales, rounding shift, saturation."""
    xp = ctx.xp
    if node.relu:
        acc = xp.maximum(acc, 0.0)
    acc = acc * ctx.const("scales", lambda: per_channel(node.output_scales, ndim))
    y = _shift(xp, acc, np.asarray(node.output_shift), ndim, ctx, "out")
    lo, hi = akida.output_range(node.output_bits, bool(node.relu))
    return xp.clip(y, float(lo), float(hi))


def _bias(node: akida.AkidaLayer, ndim: int, ctx: KernelContext) -> Tensor:
    return ctx.const(
        "bias",
        lambda: per_channel(np.asarray(node.bias, np.float64) * 2.0 ** np.asarray(node.bias_shift, np.float64), ndim),
    )


def convolve(node: akida.ConvGeometry, x: Tensor, ctx: KernelContext) -> Tensor:
    """The padded correlation of ``x`` with the node's ``weight`` (IP v1 and v2 alike)."""
    top, bottom, left, right = node.pads
    padded = ctx.xp.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)], 0.0)
    return ctx.xp.conv(padded, ctx.p("weight"), None, (node.stride,) * 2, (0, 0), (1, 1), node.groups)


def max_pool(node: akida.ConvGeometry, acc: Tensor, ctx: KernelContext) -> Tensor:
    """The layer's max-pool: SAME after a SAME conv (pads of -inf), VALID after a VALID one (IP v1 and v2)."""
    xp = ctx.xp
    (h0, h1), (w0, w1) = node.pool_pads(acc.shape[2]), node.pool_pads(acc.shape[3])
    acc = xp.pad(acc, [(0, 0), (0, 0), (h0, h1), (w0, w1)], -np.inf)
    return xp.pool("max", acc, (node.pool_size,) * 2, (node.pool_stride,) * 2, (0, 0))


@kernel(akida.AkidaConv)
def _akida_conv(node: akida.AkidaConv, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    xp = ctx.xp
    shifted = x * ctx.const("in_shift", lambda: per_channel(2.0 ** np.asarray(node.input_shift, np.float64), 2))
    acc = convolve(node, shifted, ctx) + _bias(node, 2, ctx)
    if node.pool == "max":
        acc = max_pool(node, acc, ctx)
    elif node.pool == "global_avg":  # the engine sums the ReLU'd values; the 1/(H·W) is in the scales
        if node.relu:
            acc = xp.maximum(acc, 0.0)
        acc = xp.reduce("sum", acc, (2, 3), True)
    return _post(node, acc, 2, ctx), state


@kernel(akida.AkidaDense)
def _akida_dense(node: akida.AkidaDense, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    xp = ctx.xp
    flat = xp.reshape(x, (ctx.batch, -1))
    flat = flat * ctx.const("in_shift", lambda: 2.0 ** np.asarray(node.input_shift, np.float64).reshape(1, -1))
    acc = xp.dense(flat, ctx.p("weight"), None) + _bias(node, 0, ctx).reshape(1, -1)
    return _post(node, acc, 0, ctx), state


@kernel(akida.AkidaAdd)
def _akida_add(node: akida.AkidaAdd, xs: list[Tensor], state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    """``(a << a_shift) + (b << b_shift)``, the output shift (rounding right), saturation (``output_range``)."""
    xp = ctx.xp
    a, b = xs
    ndim = len(ctx.shape) - 1
    a = a * ctx.const("a_shift", lambda: per_channel(2.0 ** np.asarray(node.a_shift, np.float64), ndim))
    b = b * ctx.const("b_shift", lambda: per_channel(2.0 ** np.asarray(node.b_shift, np.float64), ndim))
    y = _shift(xp, a + b, np.asarray(node.output_shift), ndim, ctx, "out")
    lo, hi = akida.add_range(node.output_bits)
    return xp.clip(y, float(lo), float(hi)), state


@kernel(akida.AkidaConcat)
def _akida_concat(node: akida.AkidaConcat, xs: list[Tensor], state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.concat(xs, 1), state
