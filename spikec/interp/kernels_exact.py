"""Kernels of the exact-conversion kinds (spikec/ir/exact.py), on ``Backend`` primitives only."""

from __future__ import annotations

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
    theta = ctx.p("v_threshold")
    v = state["v"] if "v" in state else ctx.zeros() + theta * 0.5
    count = state["count"] if "count" in state else ctx.zeros()
    v = v + x
    k = float(node.max_spikes)
    z = ctx.xp.clip(ctx.xp.unary("floor", v / theta), -k, k)
    z = ctx.xp.binary("min", ctx.xp.binary("max", z, float(node.lo) - count), float(node.hi) - count)
    state["v"] = v - z * theta
    state["count"] = count + z
    return z * theta, state


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
