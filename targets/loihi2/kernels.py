"""Kernels of the Loihi dialect: Lava 0.10's fixed-point process models, bit for bit.

Integers are carried in the backend's float64 tensors: every value stays below 2**53, so sums,
products, dense/conv reductions (in any summation order) and the shifts below are exact on both
backends, and numpy and torch agree bit for bit. Shifts are written with ``floor``:

* ``_floor_shift(x, k)`` = ``np.right_shift(x, k)`` on int32 (floor of x / 2**k, also for negative x);
* ``_magnitude_shift(x, k)`` = ``sign(x) * (|x| >> k)`` (Lava's decay rounding, toward zero).

Lava's int32 intermediates would wrap past 2**31; the models keep 24-bit state, so this never
happens for values Loihi can hold, and the kernels do not emulate it. Equations: docs/semantics.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.errors import InterpError
from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.targets.loihi2 import dialect as loihi

UV_LIMIT = 1 << (loihi.UV_BITS - 1)  # 2**23


def _floor_shift(xp: Any, x: Tensor, k: int) -> Tensor:
    return xp.unary("floor", x / float(1 << k)) if k else x


def _magnitude_shift(xp: Any, x: Tensor, k: int) -> Tensor:
    return xp.unary("sign", x) * xp.unary("floor", xp.unary("abs", x) / float(1 << k))


def _exp_shift(xp: Any, x: Tensor, exp: int) -> Tensor:
    """x * 2**exp for exp > 0, floor(x / 2**-exp) otherwise (Lava's left/right shift by an exponent)."""
    return x * float(1 << exp) if exp > 0 else _floor_shift(xp, x, -exp)


def _wrap24(xp: Any, x: Tensor) -> Tensor:
    """Signed 24-bit wrap-around ((x + 2**23) mod 2**24) - 2**23, Lava's ``signed_clamp``."""
    base = float(1 << loihi.UV_BITS)
    shifted = x + float(UV_LIMIT)
    return shifted - base * xp.unary("floor", shifted / base) - float(UV_LIMIT)


def _spike_input(x: Tensor, num_message_bits: int, ctx: KernelContext) -> Tensor:
    """Binary synapses see [x != 0] (Lava's ``astype(bool)``); graded ones the value."""
    return ctx.xp.to_float(x != 0) if num_message_bits == 0 else x


def _delayed(a: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    """Send last step's accumulation and buffer this one (Lava's a_buff / a_buf)."""
    y = state.get("a", ctx.zeros())
    state["a"] = a
    return y, state


# -- synapses -----------------------------------------------------------------------------------
def dense_weights(node: loihi.LoihiDense) -> np.ndarray:
    """Lava's one-time weight processing: ``clip_weights(..., 8)`` then ``truncate_weights``."""
    mode = node.effective_sign_mode
    w = np.asarray(node.weight).astype(np.int64)
    inhibitory = mode == loihi.SignMode.INHIBITORY
    mixed = int(mode == loihi.SignMode.MIXED)
    if inhibitory:
        w = -w
    w = np.clip(w, -256 * mixed, 255)
    drop = 8 - node.num_weight_bits + mixed
    w = (w >> drop) << drop
    return (-w if inhibitory else w).astype(np.float64)


SPARSE_FRACTION = 0.1  # a weight matrix with at most this share of non-zeros is summed over its non-zeros


def _synaptic_sum(s: Tensor, key: str, make: Callable[[], np.ndarray], ctx: KernelContext) -> Tensor:
    """``W s`` for the weights ``make()`` gives; sparse matrices (the flattened tokens' block-diagonal and
    coincidence weights) as a sum over their non-zeros. Integers in float64: both ways are exact."""
    layout = ctx.cached(key, lambda: _layout(make()))
    if isinstance(layout, np.ndarray):
        return ctx.xp.dense(s, ctx.const(key, lambda: layout), None)
    rows, cols, values = layout
    return ctx.xp.sparse_dense(s, rows, cols, ctx.const(f"{key}/values", lambda: values), int(ctx.shape[-1]))


def _layout(weight: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    if np.count_nonzero(weight) > SPARSE_FRACTION * weight.size:
        return weight
    rows, cols = np.nonzero(weight)
    return rows, cols, weight[rows, cols]


@kernel(loihi.LoihiDense)
def _loihi_dense(node: loihi.LoihiDense, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    s = _spike_input(x, node.num_message_bits, ctx)
    if node.delay is not None:
        return _delay_dense(node, s, state, ctx)
    a = _exp_shift(ctx.xp, _synaptic_sum(s, "weight_eff", lambda: dense_weights(node), ctx), node.weight_exp)
    return _delayed(a, state, ctx) if node.buffered else (a, state)


def _delay_dense(node: loihi.LoihiDense, s: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    """Lava's ``DelayDense``: a buffer of max_delay + 1 slots; slot 0 is sent, the rest move up one,
    and the synapses with delay d add their (shifted) input to slot d."""
    delay = np.broadcast_to(np.asarray(node.delay), node.weight.shape)
    slots = int(delay.max()) + 1
    buffer = state.get("slots") or [ctx.zeros() for _ in range(slots)]
    y, buffer = buffer[0], [*buffer[1:], ctx.zeros()]

    def weights_with_delay(d: int) -> np.ndarray:
        return np.where(delay == d, dense_weights(node), 0.0)

    for d in range(slots):
        total = _synaptic_sum(s, f"weight_eff/{d}", functools.partial(weights_with_delay, d), ctx)
        buffer[d] = buffer[d] + _exp_shift(ctx.xp, total, node.weight_exp)
    state["slots"] = buffer
    return y, state


def _nonzero_rows(weight: np.ndarray) -> tuple[int, int]:
    """The span [lo, hi) of output channels with a non-zero weight ((0, 0) when there is none)."""
    rows = np.flatnonzero(np.any(np.asarray(weight).reshape(weight.shape[0], -1) != 0, axis=1))
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)


def _conv_sums(node: loihi.LoihiConv, s: Tensor, ctx: KernelContext) -> Tensor:
    """The conv's synaptic sums, computed over the span of output channels with non-zero weights only when that is
    at most half of them (a concatenation's part read by a wider layer: DenseNet's convs fill 32 of up to 1,024
    channels); the other channels' sums are zeros, as the full product gives them."""
    lo, hi = ctx.cached("nonzero_rows", lambda: _nonzero_rows(np.asarray(node.weight)))
    o = node.weight.shape[0]
    if node.groups != 1 or hi == lo or hi - lo > o // 2:
        return ctx.xp.conv(s, ctx.p("weight"), None, node.stride, node.padding, node.dilation, node.groups)
    rows = ctx.const("weight_rows", lambda: np.asarray(node.weight[lo:hi], np.float64))
    part = ctx.xp.conv(s, rows, None, node.stride, node.padding, node.dilation, 1)
    batch, _, *out = part.shape
    pieces = [ctx.xp.zeros((batch, lo, *out)), part, ctx.xp.zeros((batch, o - hi, *out))]
    return ctx.xp.concat([piece for piece in pieces if piece.shape[1]], axis=1)


@kernel(loihi.LoihiConv)
def _loihi_conv(node: loihi.LoihiConv, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    s = _spike_input(x, node.num_message_bits, ctx)
    accum = _conv_sums(node, s, ctx)
    if not node.per_synapse:
        return _delayed(_wrap24(ctx.xp, accum), state, ctx)
    if not node.delay:  # Lava's Sparse over the connectivity: no 24-bit wrap, the sums shifted by the exponent
        return _delayed(_exp_shift(ctx.xp, accum, node.weight_exp), state, ctx)
    # Lava's DelaySparse (no 24-bit wrap): slot 0 is sent, the rest move up one, this step's sum joins slot d
    buffer = state.get("slots") or [ctx.zeros() for _ in range(node.delay + 1)]
    y, buffer = buffer[0], [*buffer[1:], ctx.zeros()]
    buffer[node.delay] = buffer[node.delay] + accum
    state["slots"] = buffer
    return y, state


# -- neurons ------------------------------------------------------------------------------------
def _decay(xp: Any, value: Tensor, decay: int) -> Tensor:
    """rs(value * (4096 - decay), 12): Lava's decay, rounding the magnitude down."""
    return _magnitude_shift(xp, value * float((1 << loihi.DECAY_BITS) - decay), loihi.DECAY_BITS)


def _lif_bias(node: loihi.LoihiLIF, x: Tensor, ctx: KernelContext) -> Tensor:
    """bias_mant << bias_exp (floor shift for a negative exponent); in ``bias`` mode the input is bias_mant."""
    exp = np.asarray(node.bias_exp, np.int64)
    up = ctx.const("bias_up", lambda: np.exp2(np.maximum(exp, 0)))
    down = ctx.const("bias_down", lambda: np.exp2(np.maximum(-exp, 0)))
    mant = x if node.input_mode == loihi.InputMode.BIAS else ctx.p("bias_mant")
    return ctx.xp.unary("floor", mant * up / down)


@kernel(loihi.LoihiLIF)
def _loihi_lif(node: loihi.LoihiLIF, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    xp = ctx.xp
    t = state.get("t", 0) + 1  # Lava's 1-based time_step
    u, v = state.get("i", ctx.zeros()), state.get("v", ctx.zeros())
    if node.reset_interval and t % node.reset_interval == node.reset_offset % node.reset_interval:
        u, v = ctx.zeros(), ctx.zeros()
    a_in = ctx.zeros() if node.input_mode == loihi.InputMode.BIAS else x
    u = _decay(xp, u, node.du + 1) + a_in * float(1 << loihi.ACT_SHIFT)
    limit = float(UV_LIMIT)
    u = xp.where(u > limit, u - 2 * limit, xp.where(u <= -limit, u + 2 * limit, u))
    v = xp.clip(_decay(xp, v, node.dv) + u + _lif_bias(node, x, ctx), -limit + 1, limit - 1)
    threshold = ctx.const("vth_scaled", lambda: np.asarray(node.vth, np.float64) * (1 << loihi.VTH_SHIFT))
    z = xp.to_float(v > threshold)
    state.update(t=t, i=u, v=v * (1.0 - z))
    return z, state


def _delta(node: loihi._Delta, act: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    """The delta encoder shared by Delta and SigmaDelta; ``act`` is already scaled by 2**(spike+state exp)."""
    xp = ctx.xp
    vth = ctx.const("vth_scaled", lambda: np.asarray(node.vth, np.float64) * (1 << (node.spike_exp + node.state_exp)))
    delta = act - state.get("act", ctx.zeros()) + state.get("residue", ctx.zeros())
    if node.cum_error:
        error = state.get("error", ctx.zeros()) + delta
        s = xp.where(xp.unary("abs", error) >= vth, delta, ctx.zeros())
        state["error"] = error * (1.0 - xp.to_float(s != 0))
    else:
        s = xp.where(xp.unary("abs", delta) >= vth, delta, ctx.zeros())
    state["residue"] = delta - s
    state["act"] = act
    state["v"] = act  # traced as <node>.v: the activation the neuron encodes
    return _floor_shift(xp, s, node.state_exp), state


@kernel(loihi.LoihiDelta)
def _loihi_delta(node: loihi.LoihiDelta, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return _delta(node, x * float(1 << (node.spike_exp + node.state_exp)), state, ctx)


@kernel(loihi.LoihiSigmaDelta)
def _loihi_sigma_delta(
    node: loihi.LoihiSigmaDelta, x: Tensor, state: State, ctx: KernelContext
) -> tuple[Tensor, State]:
    sigma = state.get("i", ctx.zeros()) + x
    state["i"] = sigma  # traced as <node>.i
    scale = 1 << (node.spike_exp + node.state_exp)
    bias = ctx.const("bias_scaled", lambda: np.asarray(node.bias, np.float64) * scale)
    act = sigma + bias
    if node.act_mode == loihi.ActMode.RELU:
        act = ctx.xp.maximum(act, 0.0)
    elif node.act_mode != loihi.ActMode.UNIT:
        raise InterpError(f"act_mode {node.act_mode!r} is not one of {[m.value for m in loihi.ActMode]}")
    return _delta(node, act, state, ctx)


@kernel(loihi.LoihiSigma)
def _loihi_sigma(node: loihi.LoihiSigma, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    state["v"] = state.get("v", ctx.zeros()) + x
    return state["v"], state
