"""Interpreter kernels of the ACME-1 kinds: the equations of ``dialect.py``, step for step.

Integers are carried in the backend's float64 tensors: every value stays far below 2**53, so sums,
products and the floor shift are exact on numpy and torch alike (``spikec run --fixed acme1``).
"""

from __future__ import annotations

from acme_spikec.dialect import V_MAX, V_MIN, AcmeDense, AcmeLIF
from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel


@kernel(AcmeDense)
def _acme_dense(node: AcmeDense, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.dense(x, ctx.p("weight"), None), state


@kernel(AcmeLIF)
def _acme_lif(node: AcmeLIF, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    xp = ctx.xp
    v = state["v"] if "v" in state else ctx.zeros() + ctx.p("v_init")
    if node.leak_shift:
        v = v - xp.unary("floor", v / float(1 << node.leak_shift))  # v >> k, the arithmetic shift
    v = xp.clip(v + x + ctx.p("bias"), float(V_MIN), float(V_MAX))
    if node.readout:
        state["v"] = v
        return v, state
    z = xp.to_float(v >= ctx.p("threshold"))
    state["v"] = v - z * ctx.p("threshold")
    return z, state
