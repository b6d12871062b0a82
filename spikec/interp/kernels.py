"""One kernel per node kind, registered by kind; the equations are those of docs/semantics.md.

A kernel maps ``(node, x, state, ctx) -> (y, state)``: ``x`` is the node's input for this step
(the sum of its edges, or the list of them for ``ORDERED`` kinds), ``state`` is a dict of
tensors carried to the next step (empty at step 0), and ``ctx`` gives the backend, dt and the
node's parameters as backend tensors. Kernels only use ``ctx.xp`` primitives and arithmetic.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from spikec.errors import SpikecError
from spikec.interp.backend import Backend, Tensor
from spikec.ir import ann, norm, snn, structure
from spikec.ir.node import Node, Shape
from spikec.registry import Registry

State = dict[str, Tensor]
Kernel = Callable[[Any, Any, State, "KernelContext"], tuple[Tensor, State]]
KERNELS: Registry[type[Node], Kernel] = Registry("kernel")
N = TypeVar("N", bound=Node)


def kernel(*kinds: type[Node]) -> Callable[[Kernel], Kernel]:
    """Register ``fn`` as the kernel of each node kind in ``kinds``."""
    return KERNELS.register(*kinds)


@dataclasses.dataclass
class KernelContext:
    """What a kernel may use besides its input and state."""

    xp: Backend
    dt: float
    batch: int
    shape: Shape  # the node's per-sample output shape
    node: Node
    feed: Tensor | None = None  # the external value of an Input node at this step
    folded: bool = False  # a stateless kernel called on all steps at once, time folded into ``batch``
    _params: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    _cached: dict[str, Any] = dataclasses.field(default_factory=dict)

    def p(self, field: str) -> Tensor:
        """The node's array parameter ``field`` as a backend tensor (converted once)."""
        if field not in self._params:
            self._params[field] = self.xp.asarray(getattr(self.node, field))
        return self._params[field]

    def const(self, key: str, make: Callable[[], np.ndarray]) -> Tensor:
        """A derived constant computed once in numpy (float64) and converted to the backend."""
        if key not in self._params:
            self._params[key] = self.xp.asarray(make())
        return self._params[key]

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """Any value derived from the node once (index arrays, ...), kept as ``make`` returns it."""
        if key not in self._cached:
            self._cached[key] = make()
        return self._cached[key]

    def zeros(self) -> Tensor:
        return self.xp.zeros((self.batch, *self.shape))

    def repeated(self, x: Tensor, compute: Callable[[], Tensor]) -> Tensor:
        """``compute()`` of a stateless kernel's input ``x``, or the last step's result while ``x`` equals the last
        step's input element for element: the synapses after a direct or graded input (the same sample every
        step) compute it once. Compared until the input first changes (numpy tensors; others always compute);
        the input is kept as a copy, so an upstream kernel that reuses its buffer cannot fool it. A folded call
        (multi-step) computes: its schedule already computes a value the same at every step once."""
        if self.folded:
            return compute()
        memo = self._cached.get("repeated")
        if isinstance(memo, tuple) and np.array_equal(memo[0], x):
            return memo[1]
        y = compute()
        self._cached["repeated"] = (x.copy(), y) if memo is None and isinstance(x, np.ndarray) else False
        return y


# -- structure ----------------------------------------------------------------------------------
@kernel(structure.Input)
def _input(node: structure.Input, x: None, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.feed, state


@kernel(structure.TokenInput)
def _token_input(node: structure.TokenInput, x: None, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    ids = np.rint(ctx.xp.to_numpy(ctx.feed)).astype(np.int64)  # the lookup runs on the host, in numpy
    return ctx.xp.take(ctx.p("table"), ids, 0), state


@kernel(structure.Output, ann.Add, ann.Identity)
def _identity(node: Node, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return x, state


# -- ann ----------------------------------------------------------------------------------------
@kernel(ann.Dense)
def _dense(node: ann.Dense, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    bias = None if node.bias is None else ctx.p("bias")
    return ctx.repeated(x, lambda: ctx.xp.dense(x, ctx.p("weight"), bias)), state


@kernel(ann.Conv)
def _conv(node: ann.Conv, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    bias = None if node.bias is None else ctx.p("bias")
    y = ctx.repeated(
        x, lambda: ctx.xp.conv(x, ctx.p("weight"), bias, node.stride, node.padding, node.dilation, node.groups)
    )
    return y, state


def _pool(mode: str) -> Kernel:
    def run(node: ann._Pool, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
        return ctx.xp.pool(mode, x, node.kernel_size, node.stride, node.padding), state

    return run


kernel(ann.SumPool)(_pool("sum"))
kernel(ann.AvgPool)(_pool("avg"))
kernel(ann.MaxPool)(_pool("max"))


@kernel(ann.Flatten, ann.Reshape)
def _reshape(node: Node, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.reshape(x, (ctx.batch, *ctx.shape)), state


@kernel(ann.Transpose)
def _transpose(node: ann.Transpose, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.transpose(x, (0, *[p + 1 for p in node.perm])), state


@kernel(ann.Concat)
def _concat(node: ann.Concat, xs: list[Tensor], state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    axis = node.axis % len(ctx.shape)
    return ctx.xp.concat(xs, axis + 1), state


@kernel(ann.Scale)
def _scale(node: ann.Scale, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return x * ctx.p("scale"), state


@kernel(ann.ReLU)
def _relu(node: ann.ReLU, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.maximum(x, 0.0), state


@kernel(ann.Clip)
def _clip(node: ann.Clip, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.clip(x, node.min, node.max), state


@kernel(norm.BatchNorm)
def _batch_norm(node: norm.BatchNorm, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    def per_channel(values: np.ndarray) -> np.ndarray:
        return values.reshape(-1, *([1] * (len(ctx.shape) - 1)))

    def folded() -> np.ndarray:
        return per_channel(np.asarray(node.weight, np.float64) / np.sqrt(np.asarray(node.var, np.float64) + node.eps))

    scale = ctx.const("scale", folded)
    shift = ctx.const("shift", lambda: per_channel(node.bias - node.mean * folded().ravel()))
    return x * scale + shift, state


# -- snn: the discrete updates of docs/semantics.md ---------------------------------------------
def _reset_value(v: Tensor, z: Tensor, ctx: KernelContext) -> Tensor:
    return ctx.xp.where(z != 0, ctx.p("v_reset"), v)


def _reset_subtract(v: Tensor, z: Tensor, ctx: KernelContext) -> Tensor:
    return v - z * ctx.p("v_threshold")


def _reset_none(v: Tensor, z: Tensor, ctx: KernelContext) -> Tensor:
    return v


RESETS: dict[str, Callable[[Tensor, Tensor, KernelContext], Tensor]] = {
    snn.Reset.VALUE: _reset_value,
    snn.Reset.SUBTRACT: _reset_subtract,
    snn.Reset.NONE: _reset_none,
    snn.Reset.SUBTRACT_NEXT: _reset_none,  # applied at the next step by _deferred_reset
}

COMPARES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    snn.Firing.ABOVE: lambda v, th: v > th,
    snn.Firing.AT_OR_ABOVE: lambda v, th: v >= th,
}


def _spikes_unipolar(v: Tensor, ctx: KernelContext) -> Tensor:
    above = COMPARES[getattr(ctx.node, "firing", snn.Firing.ABOVE)]
    return ctx.xp.to_float(above(v, ctx.p("v_threshold")))


def _spikes_bipolar(v: Tensor, ctx: KernelContext) -> Tensor:
    above = COMPARES[getattr(ctx.node, "firing", snn.Firing.ABOVE)]
    th = ctx.p("v_threshold")
    return ctx.xp.to_float(above(v, th)) - ctx.xp.to_float(above(-v, th))


SPIKES: dict[str, Callable[[Tensor, KernelContext], Tensor]] = {
    snn.Polarity.UNIPOLAR: _spikes_unipolar,
    snn.Polarity.BIPOLAR: _spikes_bipolar,
}


def _fire(node: Any, v: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    """Fire (z = [v > v_th] or [v ≥ v_th], or ±1 for a bipolar IF) and reset; store v after the reset."""
    z = SPIKES[getattr(node, "polarity", snn.Polarity.UNIPOLAR)](v, ctx)
    state["v"] = RESETS[node.reset](v, z, ctx)
    return z, state


def _deferred_reset(v: Tensor, v_prev: Tensor, ctx: KernelContext) -> Tensor:
    """``subtract_next``: v − [v_prev fired]·v_th after this step's decay and input (others: v)."""
    if ctx.node.reset != snn.Reset.SUBTRACT_NEXT:  # type: ignore[attr-defined]
        return v
    return v - SPIKES[getattr(ctx.node, "polarity", snn.Polarity.UNIPOLAR)](v_prev, ctx) * ctx.p("v_threshold")


def _leak_integrate(v: Tensor, current: Tensor, ctx: KernelContext, tau: str) -> Tensor:
    """Euler step of tau dv/dt = (v_leak - v) + R I: decay, then integrate."""
    a = ctx.const(f"dt/{tau}", lambda: ctx.dt / np.asarray(getattr(ctx.node, tau), np.float64))
    v = v + a * (ctx.p("v_leak") - v)
    return v + a * ctx.p("r") * current


def _synapse(x: Tensor, state: State, ctx: KernelContext) -> Tensor:
    """Euler step of tau_syn di/dt = -i + w_in S."""
    b = ctx.const("dt/tau_syn", lambda: ctx.dt / np.asarray(ctx.node.tau_syn, np.float64))  # type: ignore[attr-defined]
    i = state.get("i", ctx.zeros())
    i = i + b * (ctx.p("w_in") * x - i)
    state["i"] = i
    return i


@kernel(snn.IF)
def _if(node: snn.IF, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    v_prev = state["v"] if "v" in state else ctx.zeros() + ctx.p("v_init")
    v = _deferred_reset(v_prev + ctx.p("r") * x, v_prev, ctx)
    return _fire(node, v, state, ctx)


@kernel(snn.LIF)
def _lif(node: snn.LIF, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    v_prev = state["v"] if "v" in state else ctx.zeros() + ctx.p("v_init")
    v = _deferred_reset(_leak_integrate(v_prev, x, ctx, "tau"), v_prev, ctx)
    return _fire(node, v, state, ctx)


@kernel(snn.CubaLIF)
def _cuba_lif(node: snn.CubaLIF, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    i = _synapse(x, state, ctx)
    v_prev = state.get("v", ctx.zeros())
    v = _deferred_reset(_leak_integrate(v_prev, i, ctx, "tau_mem"), v_prev, ctx)
    return _fire(node, v, state, ctx)


@kernel(snn.LI)
def _li(node: snn.LI, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    state["v"] = _leak_integrate(state.get("v", ctx.zeros()), x, ctx, "tau")
    return state["v"], state


@kernel(snn.CubaLI)
def _cuba_li(node: snn.CubaLI, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    i = _synapse(x, state, ctx)
    state["v"] = _leak_integrate(state.get("v", ctx.zeros()), i, ctx, "tau_mem")
    return state["v"], state


@kernel(snn.I)
def _integrator(node: snn.I, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    state["v"] = state.get("v", ctx.zeros()) + ctx.p("r") * x
    return state["v"], state


@kernel(snn.RateMaxPool)
def _rate_max_pool(node: snn.RateMaxPool, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    acc = x if "acc" not in state else state["acc"] + x
    top = ctx.xp.pool("max", acc, node.kernel_size, node.stride, node.padding)
    y = top if "top" not in state else top - state["top"]
    state["acc"], state["top"] = acc, top
    return y, state


@kernel(snn.Threshold)
def _threshold(node: snn.Threshold, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    return ctx.xp.to_float(x > ctx.p("threshold")), state


def delay_steps(node: snn.Delay, dt: float) -> np.ndarray:
    """Whole steps of each element's delay; raises when delay/dt is not (nearly) an integer."""
    steps = np.asarray(node.delay, np.float64) / dt
    whole = np.rint(steps)
    off = np.abs(steps - whole) > 1e-6
    if np.any(off):
        bad = np.asarray(node.delay, np.float64)[off]
        shown = ", ".join(f"{d:g}" for d in bad[:4]) + (", ..." if bad.size > 4 else "")
        raise SpikecError(
            f"{bad.size} delay value(s) ({shown} s) are not a whole number of steps of dt={dt:g} s: "
            "change dt or round the delays"
        )
    return whole.astype(np.int64)


def _delay_mask(steps: np.ndarray, k: int, shape: Shape) -> np.ndarray:
    """1.0 where an element's delay is ``k`` steps, else 0.0 (float64; the backend converts)."""
    return np.broadcast_to(steps == k, shape).astype(np.float64)


@kernel(snn.Delay)
def _delay(node: snn.Delay, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    steps = delay_steps(node, ctx.dt)
    depth = int(steps.max()) + 1 if steps.size else 1
    history = state.get("history")
    if history is None:
        history = ctx.xp.zeros((depth, ctx.batch, *ctx.shape))
    history = ctx.xp.concat([ctx.xp.reshape(x, (1, ctx.batch, *ctx.shape)), history[:-1]], 0)
    y = ctx.zeros()
    for k in range(depth):
        mask = ctx.const(f"delay=={k}", functools.partial(_delay_mask, steps, k, ctx.shape))
        y = y + mask * history[k]
    state["history"] = history
    return y, state
