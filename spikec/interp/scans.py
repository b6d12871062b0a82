"""Neuron scans: a stateful node's update over all steps of a chunk, one tight loop over precomputed inputs.

The multi-step schedule (spikec.interp.multistep) calls the scan of a kind in ``SCANS`` instead of the node's
kernel once per step. A scan runs on host arrays (numpy, or a CPU torch tensor's memory, shared), with the
kernel's operations in the kernel's order, written in place: the results equal the kernel's bit for bit
(numpy and torch compute elementwise IEEE arithmetic alike). For LIF, with a = dt/τ,

    drive_t = (a·R)·x_t   (all steps at once),   v ← v + a·(v_leak − v);  v ← v + drive_t;
    [subtract_next: v ← v − [v_prev > v_th]·v_th];   z = [v > v_th];   v ← reset(v, z)

IF the same with drive_t = R·x_t and no decay; CubaLIF with a = dt/τ_mem, b = dt/τ_syn, the current first:
w_t = w_in·x_t (all steps at once), i ← i + b·(w_t − i), drive_t = (a·R)·i. A scan returns None where it does
not apply (a bipolar IF, a device tensor); the schedule then calls the kernel once per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State
from spikec.ir import snn
from spikec.ir.node import Node


@dataclasses.dataclass
class Scanned:
    """A node's outputs (steps, batch, *shape), and with ``trace`` its state variables over the steps."""

    y: Tensor
    traces: dict[str, Tensor]


Scan = Callable[[Any, Tensor, State, KernelContext, int, bool], Scanned | None]
SCANS: dict[type[Node], Scan] = {}

COMPARE = {snn.Firing.ABOVE: np.greater, snn.Firing.AT_OR_ABOVE: np.greater_equal}


def scan(*kinds: type[Node]) -> Callable[[Scan], Scan]:
    """Register ``fn`` as the scan of each kind in ``kinds``."""

    def register(fn: Scan) -> Scan:
        for kind in kinds:
            if kind in SCANS:
                raise TypeError(f"scan for {kind.kind} registered twice")
            SCANS[kind] = fn
        return fn

    return register


def on_host(ctx: KernelContext) -> bool:
    """Whether the backend's tensors live in host memory numpy can share (numpy; torch on the CPU)."""
    device = getattr(ctx.xp, "device", None)
    return ctx.xp.name == "numpy" or getattr(device, "type", None) == "cpu"


def _host(ctx: KernelContext, value: Tensor) -> np.ndarray:
    return np.ascontiguousarray(ctx.xp.to_numpy(value))


@scan(snn.LIF, snn.IF, snn.CubaLIF)
def _integrate_fire(node: Any, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool) -> Scanned | None:
    if not on_host(ctx) or getattr(node, "polarity", snn.Polarity.UNIPOLAR) != snn.Polarity.UNIPOLAR:
        return None
    cuba = isinstance(node, snn.CubaLIF)
    leaky = not isinstance(node, snn.IF)
    gain = _host(ctx, ctx.p("r"))
    if leaky:
        tau = "tau_mem" if cuba else "tau"
        a = _host(ctx, ctx.const(f"dt/{tau}", lambda: ctx.dt / np.asarray(getattr(node, tau), np.float64)))
        v_leak = _host(ctx, ctx.p("v_leak"))
        gain = a * gain
    v = _host(ctx, state["v"] if "v" in state else ctx.zeros() + (0.0 if cuba else ctx.p("v_init"))).copy()
    if cuba:  # the synaptic current's input, w_in·x, at every step; gain·i is added to v each step
        b = _host(ctx, ctx.const("dt/tau_syn", lambda: ctx.dt / np.asarray(node.tau_syn, np.float64)))
        drive = _host(ctx, ctx.p("w_in")) * _host(ctx, x)
        i = _host(ctx, state["i"] if "i" in state else ctx.zeros()).copy()
        current = np.empty_like(v)
    else:  # the membrane's input at every step
        drive = gain * _host(ctx, x)
    threshold = _host(ctx, ctx.p("v_threshold"))
    v_reset = _host(ctx, ctx.p("v_reset"))
    compare = COMPARE[snn.Firing(node.firing)]
    reset = snn.Reset(node.reset)
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
        compare(v, threshold, out=fired)
        y[t] = fired
        if reset is snn.Reset.VALUE:
            np.copyto(v, v_reset, where=fired)
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
