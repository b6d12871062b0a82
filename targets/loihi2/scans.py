"""The Loihi dialect's scans (spikec/interp/scans.py): each kind's update over all steps of a chunk.

The kernels (kernels.py) say what one step computes; a scan computes the same numbers for every step of a chunk
with no per-step dispatch, bit for bit (tests/test_interp_backends.py runs every Loihi network both ways):

* ``LoihiDense``, ``LoihiPartialDense``, ``LoihiConv``: the synaptic sums of all steps in one product (time
  folded into the rows), then the one-step buffer or the synaptic delay as a delay line (``_delay_line``);
* ``LoihiLIF``: a loop over the steps of in-place float64 operations on host arrays (``_lif_loop``);
* ``LoihiSigma``, ``LoihiDelta``, ``LoihiSigmaDelta``: the running sums and activations of all steps at once, then
  a loop of in-place operations carrying the residue (and the accumulated error).

**Carriers, chosen by measurement** (this 2-core AVX-512 VNNI machine). Synaptic products, (32,000 × 1,024) spikes
× (1,024 × 1,024) weights: float32 BLAS 428 ms, float64 about 1.6× that, numpy's integer matmul (no BLAS) about 100×,
torch's int8 GEMM (``torch._int_mm``, int8 × int8 → int32, VNNI) 117 ms. So binary dense synapses whose
weights are int8 times a power of two (Lava's 8-bit mixed-sign weights are even: w / 2 fits) take the backend's
``int8_matmul`` where it has one (torch), else float32 (``_float32_sum``); convolutions take float32
(``_float32_conv_sums``: oneDNN on torch, which has no float64 kernel; im2col in half the bytes on numpy; an int8
im2col through torch's int8 GEMM was 3–6× slower than oneDNN's float32 convolution, 50.9 against 8.7 ms for
mnist-conv's second layer over 1,024 frames); both only where exact (below), else the kernels' float64. The
neuron: a LIF step of int64 shifts (``sign(p)·(|p| >> 12)``, Lava's own form, with fresh arrays) took 24–29 ms a
chunk of 64 steps × 32 samples; in-place float64 with ``trunc`` 8–14 ms; int32 only where the decays are powers of
two 7 ms. The float64 form is as fast as the narrowest integer one and holds every decay, so the neuron runs on
float64.

**Exactness.** (1) float32 holds every integer below 2**24, and a float32 product is exact while every partial sum
is such an integer: with integer inputs, ``max_i Σ_j |w_ij| · max|s| < 2**24`` bounds every partial sum of every
row (``_float32_sum``). Scaling by 2**e (the weight exponent) only moves the exponent, and ``floor`` of an exact
quotient is exact, so the shifts run in float32 too. (2) Lava's decay ``rs(x·m, 12) = sign(x·m)·⌊|x·m| / 2**12⌋``
with ``m = 4096 − decay ≤ 4096`` is ``trunc(x · (m / 2**12))``: ``m / 2**12`` is exact; ``x·m`` is exact wherever
the kernel's own product is (``|x·m| < 2**53``; Loihi's u and v hold 24 bits); multiplying by a power of two is
exact; and ``sign(y)·⌊|y|⌋ = trunc(y)`` for every y. For non-integer x (a LoihiLIF fed from a float node) both
forms round ``x·m`` once, to the same float, because scaling by 2**-12 commutes with rounding: the scan equals the
kernel there too. (3) Sums of integers below 2**53 are exact in float64, in any order: the running sums and the
delay lines equal the kernels' step-by-step values. (4) An int8 product of spikes (0 or 1) sums at most 2**24 terms
of |q| ≤ 128 in int32, below 2**31; ``w = 2**g·q`` makes ``W s = 2**g·(Q s)``, and the exponent's floor shift is an
arithmetic right shift of the int32 sum. (1) holds in any summation order, so for every convolution algorithm that
sums the products themselves (direct, im2col; not Winograd or FFT, which transform the operands: torch's CPU
convolutions are oneDNN's direct ones).
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import numpy as np

from spikec.interp.backend import NumpyBackend, Tensor
from spikec.interp.kernels import KernelContext, State
from spikec.interp.scans import Scanned, host_zeros, on_host, scan
from spikec.targets.loihi2 import dialect as loihi
from spikec.targets.loihi2 import relay
from spikec.targets.loihi2.kernels import (
    UV_LIMIT,
    _conv_sums,
    _exp_shift,
    _layout,
    _lif_bias,
    _nonzero_rows,
    _spike_input,
    _synaptic_sum,
    _wrap24,
    dense_weights,
)

FLOAT32_EXACT = 1 << 24  # float32 holds every integer below this exactly
_HOST = NumpyBackend()
DECAY_ONE = float(1 << loihi.DECAY_BITS)


def _host(ctx: KernelContext, value: Tensor) -> np.ndarray:
    """A backend tensor's host memory (numpy; a CPU torch tensor's, shared), or a host array as it is."""
    return value if isinstance(value, np.ndarray) else np.asarray(ctx.xp.to_numpy(value))


def _zeros(ctx: KernelContext) -> Tensor:
    """A delay line's empty slot: host zeros where the scans run on host arrays, else the backend's."""
    return host_zeros(ctx) if on_host(ctx) else ctx.zeros()


# -- synapses ---------------------------------------------------------------------------------------------------
def _delay_line(a: Tensor, slots: list[Tensor], steps: int, ctx: KernelContext) -> tuple[Tensor, list[Tensor]]:
    """Values entering a delay line of ``len(slots)`` steps at each of ``steps`` steps (``a``: (steps or 1, B, ...)),
    with ``slots[k]`` the value due to leave at the chunk's step k: what leaves at each step, and the slots after.

    The kernels' buffers (``_delayed``'s ``a``, DelayDense/DelaySparse's ``slots``) hold exactly these values."""
    xp = ctx.xp
    depth = len(slots)
    if on_host(ctx):  # one copy into the carrier's dtype (a float32 product becomes float64 here)
        zero = host_zeros(ctx)
        line = np.empty((depth + steps, *zero.shape), zero.dtype)
        for k, slot in enumerate(slots):
            line[k] = _host(ctx, slot)
        line[depth:] = _host(ctx, a)  # (1, ...) broadcasts: the same value at every step
        whole = xp.share(line)
    else:
        if a.shape[0] != steps:  # the same value at every step
            a = xp.broadcast_to(a, (steps, *a.shape[1:]))
        whole = xp.concat([xp.stack(slots), a], 0)
    return whole[:steps], [whole[steps + k] for k in range(depth)]


def _buffered(a: Tensor, state: State, steps: int, ctx: KernelContext) -> Tensor:
    """Lava's one-step buffer over the chunk (``y_t = a_{t−1}``), its last value kept in ``state['a']``."""
    y, (last,) = _delay_line(a, [state["a"] if "a" in state else _zeros(ctx)], steps, ctx)
    state["a"] = last
    return y


class _PreparedWeights(NamedTuple):
    transposed: np.ndarray  # Lava's processed weights, (in, out), float32
    row_sum: float  # max_i Σ_j |w_ij|
    int8: np.ndarray | None  # the same divided by 2**int8_exp, (in, out), where every quotient fits int8
    int8_exp: int


# by node, for as long as it lives (nodes are immutable, compared by value, so unhashable: keyed by identity and
# dropped with the node): a run's contexts are new, and processing a 1024 × 1024 layer's weights took 6 of the 37 ms
# a 1,000-step run of it takes
_PREPARED: dict[int, _PreparedWeights | None] = {}


def _prepared_weights(node: loihi.LoihiDense) -> _PreparedWeights | None:
    """The dense weights a float32 or int8 product uses, or None where they are stored sparse (``kernels._layout``)."""
    key = id(node)
    if key not in _PREPARED:
        layout = _layout(dense_weights(node))
        prepared = None
        if isinstance(layout, np.ndarray):
            row_sum = float(np.abs(layout).sum(axis=1).max(initial=0))
            prepared = _PreparedWeights(np.ascontiguousarray(layout.T, np.float32), row_sum, *_as_int8(layout.T))
        _PREPARED[key] = prepared
        weakref.finalize(node, _PREPARED.pop, key, None)
    return _PREPARED[key]


def _as_int8(weight: np.ndarray) -> tuple[np.ndarray | None, int]:
    """``weight = 2**e · q`` with q int8 (e: the powers of two every weight shares), or None. Lava's 8-bit mixed-sign
    weights are the even numbers in [−256, 254] (``dense_weights`` drops the lowest bit): q = w / 2."""
    integers = weight.astype(np.int64)
    bits = int(np.bitwise_or.reduce(np.abs(integers), axis=None)) if integers.size else 0
    exp = (bits & -bits).bit_length() - 1 if bits else 0  # the lowest bit set in any weight
    quotient = integers >> exp
    if quotient.size and (quotient.min() < -128 or quotient.max() > 127):
        return None, 0
    return np.ascontiguousarray(quotient, np.int8), exp


def _int8_sum(s: Tensor, node: loihi.LoihiDense, ctx: KernelContext) -> np.ndarray | None:
    """``shift(W s, e)`` over the chunk as one int8 × int8 → int32 product (the backend's ``int8_matmul``), for
    binary synapses whose weights are int8 times a power of two; else None. Exact: each sum of at most 2**24 terms
    of |q| ≤ 128 stays below 2**31, and a right shift of int32 is the floor of the quotient, as ``_exp_shift``'s."""
    if node.num_message_bits or not ctx.cached("int8_gemm", lambda: _has_int8_matmul(ctx)):
        return None
    prepared = _prepared_weights(node)
    if prepared is None or prepared.int8 is None:
        return None
    host = _host(ctx, s)
    spikes = np.not_equal(host.reshape(-1, host.shape[-1]), 0).view(np.int8)  # [s != 0] as 0/1 bytes
    product = ctx.xp.int8_matmul(spikes, prepared.int8)
    if product is None:
        return None
    shift = prepared.int8_exp + node.weight_exp
    if shift < 0:
        np.right_shift(product, -shift, out=product)
    elif shift > 0:  # float64 holds every such sum times 2**shift exactly
        product = product * float(1 << shift)
    return product.reshape(*host.shape[:-1], product.shape[1])


def _has_int8_matmul(ctx: KernelContext) -> bool:
    """Whether the backend has an integer product (asked once per node with a 1 × 1 one; numpy's answers None)."""
    one = np.ones((1, 1), np.int8)
    return ctx.xp.int8_matmul(one, one) is not None


def _float32_operand(host: np.ndarray, num_message_bits: int, row_sum: float) -> np.ndarray | None:
    """A synapse's input as the float32 operand of an exact product (the module docstring, (1)): ``[s != 0]`` for
    binary synapses, the integers themselves for graded ones; None where a sum could reach 2**24 (``row_sum``:
    the largest Σ|w| of one output) or a graded input is not an integer."""
    if not num_message_bits:
        peak = 1.0
        operand = np.not_equal(host, 0, out=np.empty(host.shape, np.float32))
    elif not np.array_equal(host, np.trunc(host)):
        return None
    else:
        peak, operand = _peak(host), host.astype(np.float32)
    return operand if row_sum * peak < FLOAT32_EXACT else None


def _float32_sum(s: Tensor, node: loihi.LoihiDense, ctx: KernelContext) -> np.ndarray | None:
    """``W s`` over the chunk as one float32 product where that is exact (the module docstring, (1)), on host
    arrays, else None. ``s`` is the synapse's input as it arrives: binary synapses read ``[s != 0]``."""
    prepared = _prepared_weights(node)
    if prepared is None:
        return None
    host = _host(ctx, s)
    operand = _float32_operand(host, node.num_message_bits, prepared.row_sum)
    if operand is None:
        return None
    weight = prepared.transposed
    product = operand.reshape(-1, host.shape[-1]) @ weight
    exp = node.weight_exp
    if exp > 0:
        product *= np.float32(1 << exp)
    elif exp < 0:
        np.floor(np.multiply(product, np.float32(1.0 / (1 << -exp)), out=product), out=product)
    return product.reshape(*host.shape[:-1], weight.shape[1])


@scan(loihi.LoihiDense)
def _loihi_dense_scan(
    node: loihi.LoihiDense, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool
) -> Scanned | None:
    """Every step's ``shift(W s_t, e)`` in one product, then the one-step buffer (``y_t = a_{t−1}``)."""
    if node.delay is not None:
        return None
    exact = None
    if on_host(ctx):
        exact = _int8_sum(x, node, ctx)
        exact = _float32_sum(x, node, ctx) if exact is None else exact
    if exact is not None:
        a: Tensor = exact
    else:
        s = _spike_input(x, node.num_message_bits, ctx)
        total = _synaptic_sum(s, "weight_eff", lambda: dense_weights(node), ctx)
        a = _exp_shift(ctx.xp, total, node.weight_exp)
    if not node.buffered:
        if exact is not None:
            a = ctx.xp.share(exact.astype(host_zeros(ctx).dtype))
        return Scanned(a if a.shape[0] == steps else ctx.xp.broadcast_to(a, (steps, *a.shape[1:])), {})
    return Scanned(_buffered(a, state, steps, ctx), {})


@scan(relay.LoihiPartialDense)
def _partial_dense_scan(
    node: relay.LoihiPartialDense, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool
) -> Scanned | None:
    """A LoihiDense on the columns ``in_offset …`` of its input (relay.py's kernel, over the chunk)."""
    columns = ctx.cached("columns", lambda: np.arange(node.in_offset, node.in_offset + node.weight.shape[1]))
    return _loihi_dense_scan(node, ctx.xp.take(x, columns, 2), state, ctx, steps, trace)


class _Float32Conv(NamedTuple):
    weight: np.ndarray  # the rows [lo, hi) of the kernel with a non-zero weight, float32
    lo: int
    hi: int
    row_sum: float  # max over output channels of Σ |w|


def _float32_conv(node: loihi.LoihiConv) -> _Float32Conv:
    """A grouped kernel whole; an ungrouped one cut to its non-zero rows (``kernels._conv_sums``)."""
    lo, hi = _nonzero_rows(np.asarray(node.weight)) if node.groups == 1 else (0, node.weight.shape[0])
    rows = np.asarray(node.weight[lo:hi], np.float32)
    row_sum = float(np.abs(rows).reshape(hi - lo, -1).sum(axis=1).max(initial=0))
    return _Float32Conv(np.ascontiguousarray(rows), lo, hi, row_sum)


def _float32_conv_sums(node: loihi.LoihiConv, x: Tensor, ctx: KernelContext) -> np.ndarray | None:
    """The conv's synaptic sums over the chunk, (steps, B, O, ...) on host, as one float32 convolution where that is
    exact (the module docstring, (1)), over the output channels with a non-zero weight; else None. On torch this is
    oneDNN's convolution, which has no float64 kernel; on numpy, im2col in half float64's bytes."""
    host = _host(ctx, x)
    kernel = ctx.cached("float32_conv", lambda: _float32_conv(node))
    operand = _float32_operand(host, node.num_message_bits, kernel.row_sum)
    if operand is None:
        return None
    frames = operand.reshape(-1, *operand.shape[2:])  # time folded into the batch
    sums = np.zeros((frames.shape[0], *ctx.shape))
    if kernel.hi > kernel.lo:
        xp = ctx.xp
        part = xp.conv(
            xp.share(frames), xp.share(kernel.weight), None, node.stride, node.padding, node.dilation, node.groups
        )
        sums[:, kernel.lo : kernel.hi] = _host(ctx, part)
    return sums.reshape(*host.shape[:2], *ctx.shape)


@scan(loihi.LoihiConv)
def _loihi_conv_scan(
    node: loihi.LoihiConv, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool
) -> Scanned | None:
    """Every step's sums in one convolution (time folded into the batch), wrapped to 24 bits or shifted by the
    exponent as the kernel does, then the one-step buffer or DelaySparse's delay line."""
    xp = ctx.xp
    host_sums = _float32_conv_sums(node, x, ctx) if on_host(ctx) else None
    if host_sums is not None:  # the shift or wrap on the host array too: numpy's elementwise is torch's on the CPU
        xp, accum = _HOST, host_sums
    else:
        s = _spike_input(x, node.num_message_bits, ctx)
        length = int(s.shape[0])
        accum = _conv_sums(node, xp.reshape(s, (length * ctx.batch, *s.shape[2:])), ctx)
        accum = xp.reshape(accum, (length, ctx.batch, *ctx.shape))
    if not node.per_synapse:
        return Scanned(_buffered(_wrap24(xp, accum), state, steps, ctx), {})
    if not node.delay:
        return Scanned(_buffered(_exp_shift(xp, accum, node.weight_exp), state, steps, ctx), {})
    slots = state.get("slots") or [_zeros(ctx) for _ in range(node.delay + 1)]
    y, state["slots"] = _delay_line(accum, slots, steps, ctx)
    return Scanned(y, {})


# -- the LIF neuron ---------------------------------------------------------------------------------------------
def _growth_bound(start: float, drive: float, factor: float, steps: int) -> float:
    """A bound on ``|s_t|``, t ≤ steps, for ``s_t = trunc(factor·s_{t−1}) + d_t`` (then possibly clipped or reset to
    0, which only shrink it) with ``|s_0| ≤ start``, ``|d_t| ≤ drive``, 0 ≤ factor ≤ 1. For factor < 1 it is
    ``M = max(start, drive / (1 − factor))``: ``|s| ≤ M`` gives ``factor·M + drive ≤ M``; for factor = 1 the sum."""
    if factor >= 1.0:
        return start + steps * drive
    return max(start, drive / (1.0 - factor))


def _peak(a: np.ndarray) -> float:
    return float(np.abs(a).max()) if a.size else 0.0


@scan(loihi.LoihiLIF)
def _loihi_lif_scan(
    node: loihi.LoihiLIF, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool
) -> Scanned | None:
    """``_loihi_lif`` over the chunk on float64 host arrays (the module docstring, (2)): the input and bias terms of
    every step first, then one loop of in-place operations. The 24-bit wrap of u and the clip of v are left out of a
    chunk whose bounds (``_growth_bound``) show that they cannot act."""
    zero = host_zeros(ctx)
    if not on_host(ctx) or zero.dtype != np.float64:  # float32 carriers round: the kernel's own arithmetic then
        return None
    bias_mode = node.input_mode == loihi.InputMode.BIAS
    ain = None if bias_mode else _host(ctx, x)
    bias = np.ascontiguousarray(_host(ctx, _lif_bias(node, x, ctx)))  # per step in bias mode, else per neuron
    u = np.array(_host(ctx, state["i"]) if "i" in state else zero, np.float64)
    v = np.array(_host(ctx, state["v"]) if "v" in state else zero, np.float64)
    threshold = _host(ctx, ctx.const("vth_scaled", lambda: np.asarray(node.vth, np.float64) * (1 << loihi.VTH_SHIFT)))
    y = np.empty((steps, *zero.shape), np.float64)
    traces = {"i": np.empty_like(y), "v": np.empty_like(y)} if trace else {}
    first = state.get("t", 0)
    _lif_loop(node, _LifTerms(ain, bias if bias_mode else bias[None], threshold), u, v, y, traces, first)
    state.update(t=first + steps, i=ctx.xp.share(u), v=ctx.xp.share(v))
    return Scanned(ctx.xp.share(y), {var: ctx.xp.share(values) for var, values in traces.items()})


class _LifTerms:
    """A LIF chunk's inputs: a_in (steps or 1, B, ...; None in bias mode), the bias (steps or 1, ...), 2**6·vth."""

    def __init__(self, ain: np.ndarray | None, bias: np.ndarray, threshold: np.ndarray) -> None:
        self.ain, self.bias, self.threshold = ain, bias, threshold
        self.drive = 0.0 if ain is None else _peak(ain) * (1 << loihi.ACT_SHIFT)
        self.bias_peak = _peak(bias)

    def at(self, a: Any, k: int) -> Any:
        return a[k if a.shape[0] > 1 else 0]


def _lif_loop(
    node: loihi.LoihiLIF,
    terms: _LifTerms,
    u: np.ndarray,
    v: np.ndarray,
    y: np.ndarray,
    traces: dict[str, Any],
    first: int,
) -> None:
    """The steps of one chunk, ``u``, ``v`` updated in place and ``y`` (and ``traces``) filled."""
    limit = float(UV_LIMIT)
    steps = y.shape[0]
    cu, cv = (DECAY_ONE - node.du - 1) / DECAY_ONE, (DECAY_ONE - node.dv) / DECAY_ONE
    u_bound = _growth_bound(_peak(u), terms.drive, cu, steps)
    wraps = u_bound >= limit - 1
    clips = _growth_bound(_peak(v), u_bound + terms.bias_peak, cv, steps) >= limit - 2
    with_bias = bool(terms.bias.any())
    shifted = np.empty_like(u)
    fired = np.empty(u.shape, np.bool_)
    interval, offset = node.reset_interval, node.reset_offset
    for k in range(steps):
        t = first + k + 1  # Lava's 1-based time_step
        if interval and t % interval == offset % interval:
            u.fill(0.0)
            v.fill(0.0)
        # u ← wrap(rs(u·(4096 − du − 1), 12) + 2**6·a_in)
        if cu == 0.0 and terms.ain is not None:
            np.multiply(terms.at(terms.ain, k), float(1 << loihi.ACT_SHIFT), out=u)
        else:
            np.trunc(np.multiply(u, cu, out=u), out=u)
            if terms.ain is not None:
                np.add(u, np.multiply(terms.at(terms.ain, k), float(1 << loihi.ACT_SHIFT), out=shifted), out=u)
        if wraps:
            np.copyto(u, np.where(u > limit, u - 2 * limit, np.where(u <= -limit, u + 2 * limit, u)))
        # v ← clip(rs(v·(4096 − dv), 12) + u + b, ±(2**23 − 1)); spike where v > 2**6·vth, then v ← 0 there
        np.trunc(np.multiply(v, cv, out=v), out=v)
        np.add(v, u, out=v)
        if with_bias:
            np.add(v, terms.at(terms.bias, k), out=v)
        if clips:
            np.minimum(np.maximum(v, -limit + 1, out=v), limit - 1, out=v)
        np.greater(v, terms.threshold, out=fired)
        y[k] = fired
        np.copyto(v, 0.0, where=fired)
        if traces:
            traces["i"][k], traces["v"][k] = u, v


# -- sigma-delta neurons ----------------------------------------------------------------------------------------
def _running_sums(start: np.ndarray | None, x: np.ndarray, steps: int) -> np.ndarray:
    """``s_t = s_{t−1} + x_t`` for every step of the chunk (``s_{−1}`` = ``start``, or none: ``s_0 = x_0``), each
    step's addition over all elements at once, as the kernels add."""
    sums = np.empty((steps, *x.shape[1:]), x.dtype)
    if start is None:
        sums[0] = x[0]
    else:
        np.add(start, x[0], out=sums[0])
    for k in range(1, steps):
        np.add(sums[k - 1], x[k if x.shape[0] > 1 else 0], out=sums[k])
    return sums


@scan(loihi.LoihiSigma)
def _loihi_sigma_scan(
    node: loihi.LoihiSigma, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool
) -> Scanned | None:
    """The running sum of the input, the kernel's ``v + x`` step by step."""
    if not on_host(ctx):
        return None
    sums = _running_sums(_host(ctx, state["v"]) if "v" in state else host_zeros(ctx), _host(ctx, x), steps)
    state["v"] = ctx.xp.share(sums[-1].copy())
    y = ctx.xp.share(sums)
    return Scanned(y, {"v": y} if trace else {})


@scan(loihi.LoihiDelta, loihi.LoihiSigmaDelta)
def _loihi_delta_scan(
    node: loihi._Delta, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool
) -> Scanned | None:
    """The activations of every step at once (a SigmaDelta's running sums, bias and ReLU), their changes
    ``act_t − act_{t−1}``, then a loop adding the residue and sending what reaches vth, as ``kernels._delta``."""
    if not on_host(ctx):
        return None
    inputs = _host(ctx, x)
    zero = host_zeros(ctx)
    scale = float(1 << (node.spike_exp + node.state_exp))
    traces: dict[str, np.ndarray] = {}
    if isinstance(node, loihi.LoihiSigmaDelta):
        if node.act_mode not in (loihi.ActMode.RELU, loihi.ActMode.UNIT):
            return None  # the kernel names the bad mode
        sigma = _running_sums(_host(ctx, state["i"]) if "i" in state else zero, inputs, steps)
        acts = sigma + _host(ctx, ctx.const("bias_scaled", lambda: np.asarray(node.bias, np.float64) * scale))
        if node.act_mode == loihi.ActMode.RELU:
            np.maximum(acts, 0.0, out=acts)
        state["i"] = ctx.xp.share(sigma[-1].copy())
        traces["i"] = sigma
    else:
        acts = np.array(np.broadcast_to(inputs * scale, (steps, *zero.shape)))
    previous = _host(ctx, state["act"]) if "act" in state else zero
    changes = np.empty_like(acts)
    np.subtract(acts[0], previous, out=changes[0])
    np.subtract(acts[1:], acts[:-1], out=changes[1:])
    vth = _host(ctx, ctx.const("vth_scaled", lambda: np.asarray(node.vth, np.float64) * scale))
    residue = np.array(_host(ctx, state["residue"]) if "residue" in state else zero)
    error = np.array(_host(ctx, state["error"]) if "error" in state else zero) if node.cum_error else None
    sent = np.zeros_like(acts)
    delta, size = np.empty_like(zero), np.empty_like(zero)
    fire, cleared = np.empty(zero.shape, np.bool_), np.empty(zero.shape, np.bool_)
    for k in range(steps):
        np.add(changes[k], residue, out=delta)  # (act − act_prev) + residue
        if error is not None:  # the accumulated error decides, and is cleared where a value is sent
            np.add(error, delta, out=error)
        np.abs(delta if error is None else error, out=size)
        np.greater_equal(size, vth, out=fire)
        np.copyto(sent[k], delta, where=fire)
        if error is not None:
            np.not_equal(sent[k], 0.0, out=cleared)
            np.copyto(error, 0.0, where=cleared)
        np.subtract(delta, sent[k], out=residue)
    state.update(residue=ctx.xp.share(residue), act=ctx.xp.share(acts[-1].copy()))
    state["v"] = state["act"]
    if error is not None:
        state["error"] = ctx.xp.share(error)
    if node.state_exp:
        np.floor(np.divide(sent, float(1 << node.state_exp), out=sent), out=sent)
    traces["v"] = acts
    shared = {var: ctx.xp.share(values) for var, values in traces.items()} if trace else {}
    return Scanned(ctx.xp.share(sent), shared)
