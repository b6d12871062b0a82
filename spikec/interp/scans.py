"""Neuron scans: a stateful node's update over all steps of a chunk, one tight loop over precomputed inputs.

The multi-step schedule (spikec.interp.multistep) calls the scan of a kind in ``SCANS`` instead of the node's
kernel once per step. A scan runs on host arrays (numpy, or a CPU torch tensor's memory, shared), with the
kernel's operations in the kernel's order, written in place: the results equal the kernel's bit for bit
(numpy and torch compute elementwise IEEE arithmetic alike). For LIF, with a = dt/τ,

    drive_t = (a·R)·x_t   (all steps at once),   v ← v + a·(v_leak − v);  v ← v + drive_t;
    [subtract_next: v ← v − [v_prev > v_th]·v_th];   z = [v > v_th];   v ← reset(v, z)

and IF the same with drive_t = R·x_t and no decay. A scan returns None where it does not apply (a bipolar IF,
a device tensor); the schedule then calls the kernel once per step.
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


@scan(snn.LIF, snn.IF)
def _integrate_fire(node: Any, x: Tensor, state: State, ctx: KernelContext, steps: int, trace: bool) -> Scanned | None:
    if not on_host(ctx) or getattr(node, "polarity", snn.Polarity.UNIPOLAR) != snn.Polarity.UNIPOLAR:
        return None
    leaky = isinstance(node, snn.LIF)
    r = _host(ctx, ctx.p("r"))
    if leaky:
        a = _host(ctx, ctx.const("dt/tau", lambda: ctx.dt / np.asarray(node.tau, np.float64)))
        v_leak = _host(ctx, ctx.p("v_leak"))
        r = a * r
    drive = r * _host(ctx, x)  # (steps or 1, batch, *shape)
    threshold = _host(ctx, ctx.p("v_threshold"))
    v_reset = _host(ctx, ctx.p("v_reset"))
    compare = COMPARE[snn.Firing(node.firing)]
    reset = snn.Reset(node.reset)
    v = _host(ctx, state["v"] if "v" in state else ctx.zeros() + ctx.p("v_init")).copy()
    y = np.empty((steps, *v.shape), v.dtype)
    vs = np.empty_like(y) if trace else None
    tmp = np.empty_like(v)
    fired = np.empty(v.shape, np.bool_)
    for t in range(steps):
        if reset is snn.Reset.SUBTRACT_NEXT:
            compare(v, threshold, out=fired)  # v_prev fired: subtracted after this step's decay and input
            previous = fired.astype(v.dtype) * threshold
        if leaky:
            np.subtract(v_leak, v, out=tmp)
            np.multiply(a, tmp, out=tmp)
            np.add(v, tmp, out=v)
        np.add(v, drive[t if drive.shape[0] > 1 else 0], out=v)
        if reset is snn.Reset.SUBTRACT_NEXT:
            np.subtract(v, previous, out=v)
        compare(v, threshold, out=fired)
        y[t] = fired
        if reset is snn.Reset.VALUE:
            np.copyto(v, v_reset, where=fired)
        elif reset is snn.Reset.SUBTRACT:
            np.multiply(y[t], threshold, out=tmp)
            np.subtract(v, tmp, out=v)
        if vs is not None:
            vs[t] = v
    state["v"] = ctx.xp.share(v)
    return Scanned(ctx.xp.share(y), {} if vs is None else {"v": ctx.xp.share(vs)})
