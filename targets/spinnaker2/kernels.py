"""Interpreter kernels of the SpiNNaker2 kinds: the equations of ``dialect.py``, step for step.

With ``alpha_decay = 1`` every value is an integer below 2**24 carried in the backend's float64 tensors, so sums
are exact on numpy and torch alike (``spikec run --fixed spinnaker2``); a leak or a synaptic current makes v a float.
"""

from __future__ import annotations

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.targets.spinnaker2.dialect import SpiNNaker2Conv, SpiNNaker2Dense, SpiNNaker2LIF, SpiNNaker2OneToOne


@kernel(SpiNNaker2Dense)
def _dense(node: SpiNNaker2Dense, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.dense(x, ctx.p("weight"), None), state


@kernel(SpiNNaker2OneToOne)
def _one_to_one(node: SpiNNaker2OneToOne, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return x * ctx.p("weight"), state


@kernel(SpiNNaker2Conv)
def _conv(node: SpiNNaker2Conv, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.conv(x, ctx.p("weight"), None, node.stride, node.padding, (1, 1), node.groups), state


@kernel(SpiNNaker2LIF)
def _lif(node: SpiNNaker2LIF, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    xp = ctx.xp
    v = state["v"] if "v" in state else ctx.zeros() + ctx.p("v_init")
    if node.leaky:
        v = v * ctx.p("alpha_decay")
    if node.current_based:  # i ← β·i + I + b, then v ← α·v + i
        i = x + ctx.p("bias") if "i" not in state else state["i"] * ctx.p("syn_decay") + x + ctx.p("bias")
        state["i"] = i
        v = v + i
    else:
        v = v + x + ctx.p("bias")
    if node.readout:
        state["v"] = v
        return v, state
    threshold = ctx.p("threshold")
    z = xp.to_float(v > threshold)
    if node.reset == "subtract":
        state["v"] = v - z * threshold
    else:
        state["v"] = xp.where(z > 0, ctx.zeros() + ctx.p("v_reset"), v)
    return z, state
