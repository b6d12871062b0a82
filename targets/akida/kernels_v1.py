"""Kernels of the Akida IP v1 dialect: akida 2.19.3's ``InputConvolutional``/``Convolutional``/``FullyConnected``
integer arithmetic, exactly (``dialect_v1``'s docstring; docs/akida-target.md, "IP v1").

Integers travel in float64 tensors. Potentials stay far below 2**31 (8-bit pixels and weights; 4-bit activations
and weights), so :math:`16 (pot - threshold)` and its quotient by the integer :math:`2^{4-b} \\lfloor 16\\,
act\\_step \\rfloor` are exact enough for ``ceil``: a quotient that is not an integer lies at least
:math:`1/S` from one, far above float64's rounding at these magnitudes.
"""

from __future__ import annotations

import numpy as np

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.targets.akida.dialect_v1 import STEP_FRACTION, AkidaV1Conv, AkidaV1Dense, AkidaV1Layer
from spikec.targets.akida.kernels import convolve, max_pool, per_channel


def step_units(act_step: np.ndarray, act_bits: int) -> np.ndarray:
    """The engine's step in 1/16ths: :math:`2^{4-b} \\lfloor 16\\, act\\_step \\rfloor` (measured)."""
    held = np.floor(STEP_FRACTION * np.asarray(act_step, np.float32).astype(np.float64))
    return held * 2.0 ** (4 - act_bits)


def _activate(node: AkidaV1Layer, pot: Tensor, ndim: int, ctx: KernelContext) -> Tensor:
    """``pot - threshold`` without activation; else the quantized step activation (module docstring)."""
    xp = ctx.xp
    over = pot - ctx.const("threshold", lambda: per_channel(node.threshold, ndim))
    if not node.activation:
        return over
    units = ctx.const("units", lambda: per_channel(step_units(node.act_step, node.act_bits), ndim))
    y = xp.unary("ceil", over * float(STEP_FRACTION) / units)
    return xp.clip(y, 0.0, float((1 << node.act_bits) - 1))


@kernel(AkidaV1Conv)
def _v1_conv(node: AkidaV1Conv, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    pot = convolve(node, x, ctx)
    if node.pool == "max":  # before the activation (commutes with it: the activation is monotone)
        pot = max_pool(node, pot, ctx)
    return _activate(node, pot, 2, ctx), state


@kernel(AkidaV1Dense)
def _v1_dense(node: AkidaV1Dense, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    flat = ctx.xp.reshape(x, (ctx.batch, -1))
    return _activate(node, ctx.xp.dense(flat, ctx.p("weight"), None), 0, ctx), state
