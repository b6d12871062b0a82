"""Neuron scans: a stateful node's update over all steps of a chunk, one tight loop over precomputed inputs.

The multi-step schedule (spikec.interp.multistep) calls the scan of a kind in ``SCANS`` instead of the node's
kernel once per step. A scan runs on host arrays (numpy, or a CPU torch tensor's memory, shared), with the
kernel's operations in the kernel's order, written in place: the results equal the kernel's bit for bit
(numpy and torch compute elementwise IEEE arithmetic alike). For LIF, with a = dt/τ,

    drive_t = (a·R)·x_t   (all steps at once),   v ← v + a·(v_leak − v);  v ← v + drive_t;
    [subtract_next: v ← v − [v_prev > v_th]·v_th];   z = [v > v_th];   v ← reset(v, z)

IF the same with drive_t = R·x_t and no decay; CubaLIF with a = dt/τ_mem, b = dt/τ_syn, the current first:
w_t = w_in·x_t (all steps at once), i ← i + b·(w_t − i), drive_t = (a·R)·i. The readouts LI, CubaLI and I are
LIF, CubaLIF and IF without firing (y = v). RateMaxPool: its running sums as one cumulative sum, their window maxima
in one pooling call. A scan returns None where it does not apply (a bipolar IF, a device tensor); the schedule then
calls the kernel once per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.interp.backend import NumpyBackend, Tensor
from spikec.interp.kernels import KernelContext, State
from spikec.ir import snn
from spikec.ir.node import Node
from spikec.registry import Registry


@dataclasses.dataclass
class Scanned:
    """A node's outputs (steps, batch, *shape), and with ``trace`` its state variables over the steps."""

    y: Tensor
    traces: dict[str, Tensor]


Scan = Callable[[Any, Tensor, State, KernelContext, int, bool], Scanned | None]
SCANS: Registry[type[Node], Scan] = Registry("scan")

COMPARE = {snn.Firing.ABOVE: np.greater, snn.Firing.AT_OR_ABOVE: np.greater_equal}
_HOST = NumpyBackend()


def scan(*kinds: type[Node]) -> Callable[[Scan], Scan]:
    """Register ``fn`` as the scan of each kind in ``kinds``."""
    return SCANS.register(*kinds)


def on_host(ctx: KernelContext) -> bool:
    """Whether the backend's tensors live in host memory numpy can share (numpy; torch on the CPU)."""
    device = getattr(ctx.xp, "device", None)
    return ctx.xp.name == "numpy" or getattr(device, "type", None) == "cpu"


def host_zeros(ctx: KernelContext) -> np.ndarray:
    """Zeros of the node's (batch, *shape) in the backend's dtype, in host memory (numpy allocates them lazily; a
    CPU torch.zeros fills them on its thread pool, which cost 4 ms a call on 2 busy cores)."""
    dtype = ctx.cached("host_dtype", lambda: np.asarray(ctx.xp.to_numpy(ctx.xp.zeros((0,)))).dtype)
    return np.zeros((ctx.batch, *ctx.shape), dtype)


def _host(ctx: KernelContext, value: Tensor) -> np.ndarray:
    return np.ascontiguousarray(ctx.xp.to_numpy(value))


FIRING = (snn.LIF, snn.IF, snn.CubaLIF)
CURRENT_BASED = (snn.CubaLIF, snn.CubaLI)
LEAKY = (snn.LIF, snn.CubaLIF, snn.LI, snn.CubaLI)


@scan(snn.LIF, snn.IF, snn.CubaLIF, snn.LI, snn.CubaLI, snn.I)
def _integrate_fire(node: Any, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool) -> Scanned | None:
    """IF, LIF, CubaLIF and the readouts LI, CubaLI, I (the same updates without firing: y = v)."""
    if not on_host(ctx) or getattr(node, "polarity", snn.Polarity.UNIPOLAR) != snn.Polarity.UNIPOLAR:
        return None
    cuba = isinstance(node, CURRENT_BASED)
    leaky = isinstance(node, LEAKY)
    fires = isinstance(node, FIRING)
    gain = _host(ctx, ctx.p("r"))
    if leaky:
        tau = "tau_mem" if cuba else "tau"
        a = _host(ctx, ctx.const(f"dt/{tau}", lambda: ctx.dt / np.asarray(getattr(node, tau), np.float64)))
        v_leak = _host(ctx, ctx.p("v_leak"))
        gain = a * gain
    v_init = _host(ctx, ctx.p("v_init")) if hasattr(node, "v_init") else 0.0
    v = _host(ctx, state["v"]).copy() if "v" in state else host_zeros(ctx) + v_init
    if cuba:  # the synaptic current's input, w_in·x, at every step; gain·i is added to v each step
        b = _host(ctx, ctx.const("dt/tau_syn", lambda: ctx.dt / np.asarray(node.tau_syn, np.float64)))
        drive = _host(ctx, ctx.p("w_in")) * _host(ctx, x)
        i = _host(ctx, state["i"]).copy() if "i" in state else host_zeros(ctx)
        current = np.empty_like(v)
    else:  # the membrane's input at every step
        drive = gain * _host(ctx, x)
    if fires:
        threshold = _host(ctx, ctx.p("v_threshold"))
        v_reset = _host(ctx, ctx.p("v_reset"))
        compare = COMPARE[snn.Firing(node.firing)]
    reset = snn.Reset(node.reset) if fires else snn.Reset.NONE
    # v − z·θ is v where z = 0 (v − (+0.0) = v, bit for bit) when θ is finite and not negative: subtract θ where fired
    subtract_where = reset is snn.Reset.SUBTRACT and bool(np.all(np.isfinite(threshold)) and np.all(threshold >= 0))
    y = np.empty((steps, *v.shape), v.dtype)
    traces = {var: np.empty_like(y) for var in (("v", "i") if cuba else ("v",))} if trace else {}
    tmp = np.empty_like(v)
    fired = np.empty(v.shape, np.bool_)
    for t in range(steps):
        x_t = drive[t if drive.shape[0] > 1 else 0]
        if reset is snn.Reset.SUBTRACT_NEXT:
            compare(v, threshold, out=fired)  # v_prev fired: subtracted after this step's decay and input
            previous = fired.astype(v.dtype) * threshold
        if cuba:
            np.subtract(x_t, i, out=tmp)
            np.multiply(b, tmp, out=tmp)
            np.add(i, tmp, out=i)
            x_t = np.multiply(gain, i, out=current)
        if leaky:
            np.subtract(v_leak, v, out=tmp)
            np.multiply(a, tmp, out=tmp)
            np.add(v, tmp, out=v)
        np.add(v, x_t, out=v)
        if reset is snn.Reset.SUBTRACT_NEXT:
            np.subtract(v, previous, out=v)
        if not fires:  # a readout: its membrane is its output
            y[t] = v
            if trace:
                traces["v"][t] = v
                if cuba:
                    traces["i"][t] = i
            continue
        compare(v, threshold, out=fired)
        y[t] = fired
        if reset is snn.Reset.VALUE:
            np.copyto(v, v_reset, where=fired)
        elif subtract_where:
            np.subtract(v, threshold, out=v, where=fired)
        elif reset is snn.Reset.SUBTRACT:
            np.multiply(y[t], threshold, out=tmp)
            np.subtract(v, tmp, out=v)
        if trace:
            traces["v"][t] = v
            if cuba:
                traces["i"][t] = i
    state["v"] = ctx.xp.share(v)
    if cuba:
        state["i"] = ctx.xp.share(i)
    return Scanned(ctx.xp.share(y), {var: ctx.xp.share(values) for var, values in traces.items()})


@scan(snn.RateMaxPool)
def _rate_max_pool(
    node: snn.RateMaxPool, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool
) -> Scanned | None:
    """The running sums of every step (the kernel's additions in its order), their window maxima in one pooling call
    (time folded into the batch; numpy's on host memory for either backend: a maximum is exact in any implementation),
    and the growth of the maxima step to step."""
    if not on_host(ctx):
        return None
    inputs = _host(ctx, x)
    sums = np.empty((steps, *inputs.shape[1:]), inputs.dtype)
    if "acc" in state:
        np.add(_host(ctx, state["acc"]), inputs[0], out=sums[0])
    else:
        sums[0] = inputs[0]
    for k in range(1, steps):  # each step's sum over all elements at once (cumsum would run along time innermost)
        np.add(sums[k - 1], inputs[k if inputs.shape[0] > 1 else 0], out=sums[k])
    folded = sums.reshape(steps * ctx.batch, *sums.shape[2:])
    top = _HOST.pool("max", folded, node.kernel_size, node.stride, node.padding).reshape(steps, ctx.batch, *ctx.shape)
    y = np.empty_like(top)
    if "top" in state:
        np.subtract(top[0], _host(ctx, state["top"]), out=y[0])
    else:
        y[0] = top[0]
    np.subtract(top[1:], top[:-1], out=y[1:])
    state["acc"], state["top"] = ctx.xp.share(sums[-1]), ctx.xp.share(top[-1])
    y = ctx.xp.share(y)
    return Scanned(y, {})
