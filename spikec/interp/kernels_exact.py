"""Kernels of the exact-conversion kinds (spikec/ir/exact.py), on ``Backend`` primitives only."""

from __future__ import annotations

import numpy as np

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.ir import exact

Step = tuple[Tensor, State]


@kernel(exact.Quantize)
def _quantize(node: exact.Quantize, x: Tensor, state: State, ctx: KernelContext) -> Step:
    step = ctx.p("step")
    q = ctx.xp.clip(ctx.xp.unary("floor", x / step + 0.5), float(node.lo), float(node.hi))
    return q * step, state


@kernel(exact.STBIF)
def _st_bif(node: exact.STBIF, x: Tensor, state: State, ctx: KernelContext) -> Step:
    """docs/semantics.md's update with the membrane kept in units of θ (u = v/θ, u₀ = 1/2) and the clip
    to the count bounds written on the new count: clip(z, lo − c, hi − c) = clip(c + z, lo, hi) − c."""
    inv_theta = ctx.const("1/v_threshold", lambda: 1.0 / np.asarray(node.v_threshold, np.float64))
    u = state["u"] if "u" in state else ctx.zeros() + 0.5
    count = state["count"] if "count" in state else ctx.zeros()
    u = u + x * inv_theta
    k = float(node.max_spikes)
    moved = ctx.xp.clip(count + ctx.xp.clip(ctx.xp.unary("floor", u), -k, k), float(node.lo), float(node.hi))
    z = moved - count
    state["u"], state["count"] = u - z, moved
    return z * ctx.p("v_threshold"), state


@kernel(exact.Accumulate)
def _accumulate(node: exact.Accumulate, x: Tensor, state: State, ctx: KernelContext) -> Step:
    total = x if "sum" not in state else state["sum"] + x
    state["sum"] = total
    return total, state


@kernel(exact.Difference)
def _difference(node: exact.Difference, x: Tensor, state: State, ctx: KernelContext) -> Step:
    y = x if "last" not in state else x - state["last"]
    state["last"] = x
    return y, state
