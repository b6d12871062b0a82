"""What the chosen ``dt`` does to an imported NIR graph's neurons (docs/semantics.md, "dt checks").

NIR gives time constants in seconds and leaves ``dt`` open, so one file can describe sensible dynamics
at one ``dt`` and nonsense at another. After import, two checks warn (``SpikecWarning``) per node:

* **decay factor**: the Euler step multiplies the state by ``d = 1 − dt/τ``. ``τ < 0`` gives ``d > 1``
  (a state that grows: a learned decay above 1, as Spyx exports it); ``0 < τ < dt`` gives ``d < 0``
  (the state flips sign every step) and ``τ ≤ dt/2`` gives ``d ≤ −1`` (unstable: it grows without
  bound). Each is imported as exactly that update, with a warning.
* **can never fire**: a LIF or CubaLIF layer whose every neuron's membrane, started at rest and before
  any reset, stays ``≤ v_threshold`` for *every* input sequence its inputs can deliver. Input bounds
  come from interval propagation (``BOUNDS`` by kind): spiking nodes (the ``EmitsSpikes`` trait) emit
  values in [0, 1], weights map intervals exactly per element (Dense) or per channel (Conv, pooling;
  conservatively), and graph inputs (and the non-spiking integrators LI, CubaLI, I) are unbounded, so
  a layer fed by them is never reported. The bound is sound: a reported layer provably never spikes.

For ``v_t = d·v_{t−1} + u_t`` with ``u_t ∈ [u_lo, u_hi]`` and ``v_{−1} = 0`` the largest reachable
membrane is (``sup_membrane``): ``max(u_hi, u_hi/(1−d))`` for ``0 ≤ d < 1`` (the steady state under the
largest input); ``∞`` if ``u_hi > 0`` else ``u_hi`` for ``d > 1``; ``max(u_hi, u_hi + d·u_lo,
(u_hi + d·u_lo)/(1 − d²))`` for ``−1 < d < 0``; ``∞`` for ``d ≤ −1``. A LIF has ``u = (dt/τ)(v_leak + r·x)``;
a CubaLIF first bounds its current ``i`` the same way (``u = (dt/τ_syn)·w_in·x``), then ``v`` with
``u = (dt/τ_mem)(v_leak + r·i)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.errors import SpikecWarning
from spikec.ir import ann, snn, structure
from spikec.ir.graph import Graph
from spikec.ir.node import Node, Shape
from spikec.ir.traits import EmitsSpikes
from spikec.registry import Registry

Interval = tuple[np.ndarray, np.ndarray]  # (lo, hi) per element of the node's per-sample shape
Transfer = Callable[[Any, Interval, Shape], Interval]  # (node of the registered kind, input, output shape)
BOUNDS: Registry[type[Node], Transfer] = Registry("interval transfer")
TAU_FIELDS = ("tau", "tau_syn", "tau_mem")


def bounds(*kinds: type[Node]) -> Callable[[Transfer], Transfer]:
    """Register the interval transfer function of the given kinds (input interval -> output interval)."""
    return BOUNDS.register(*kinds)


def _unbounded(shape: Shape) -> Interval:
    return np.full(shape, -np.inf), np.full(shape, np.inf)


@bounds(structure.Output, ann.Identity, ann.Add, ann.Flatten, snn.Delay)
def _same(node: Node, x: Interval, shape: Shape) -> Interval:
    return np.reshape(x[0], shape), np.reshape(x[1], shape)


def _spikes(node: Node, x: Interval, shape: Shape) -> Interval:
    """Any kind with the ``EmitsSpikes`` trait: [0, 1], or [−1, 1] when bipolar."""
    trait = node.get_trait(EmitsSpikes)
    low = -1.0 if trait is not None and trait.signed(node) else 0.0
    return np.full(shape, low), np.ones(shape)


def transfer_of(node: Node) -> Transfer | None:
    """The interval transfer of ``node``'s kind: ``BOUNDS``, or spikes for a kind that emits them (None: unbounded)."""
    transfer = BOUNDS.get(type(node))
    if transfer is None and node.has_trait(EmitsSpikes):
        return _spikes
    return transfer


@bounds(ann.Scale)
def _scale(node: ann.Scale, x: Interval, shape: Shape) -> Interval:
    a, b = _mul(node.scale, x[0]), _mul(node.scale, x[1])
    return np.broadcast_to(np.minimum(a, b), shape), np.broadcast_to(np.maximum(a, b), shape)


@bounds(ann.Dense)
def _dense(node: ann.Dense, x: Interval, shape: Shape) -> Interval:
    w = np.asarray(node.weight, np.float64)
    lo, hi = _linear(x, lambda v, sign: v @ np.clip(sign * w, 0, None).T)
    bias = 0.0 if node.bias is None else np.asarray(node.bias, np.float64)
    return np.broadcast_to(lo + bias, shape), np.broadcast_to(hi + bias, shape)


@bounds(ann.Conv)
def _conv(node: ann.Conv, x: Interval, shape: Shape) -> Interval:
    """Per output channel: every kernel tap sees its input channel's widest value (zero padding included)."""
    w = np.asarray(node.weight, np.float64)
    lo_c, hi_c = _per_channel(x, padded=any(p > 0 for p in node.padding))
    groups, out_ch = node.groups, w.shape[0]
    per_group = w.shape[1]
    los, his = [], []
    for o in range(out_ch):
        g = o // (out_ch // groups)
        channels = slice(g * per_group, (g + 1) * per_group)
        taps = w[o].reshape(per_group, -1)
        span = (lo_c[channels, None], hi_c[channels, None])
        lo, hi = _linear(span, _taps(taps))
        los.append(float(lo))
        his.append(float(hi))
    bias = np.zeros(out_ch) if node.bias is None else np.asarray(node.bias, np.float64)
    expand = (slice(None),) + (None,) * (len(shape) - 1)
    return (
        np.broadcast_to((np.asarray(los) + bias)[expand], shape),
        np.broadcast_to((np.asarray(his) + bias)[expand], shape),
    )


@bounds(ann.SumPool, ann.AvgPool)
def _pool(node: ann.SumPool | ann.AvgPool, x: Interval, shape: Shape) -> Interval:
    lo_c, hi_c = _per_channel(x, padded=any(p > 0 for p in node.padding))
    n = 1 if isinstance(node, ann.AvgPool) else int(np.prod(node.kernel_size))
    expand = (slice(None),) + (None,) * (len(shape) - 1)
    return np.broadcast_to((n * lo_c)[expand], shape), np.broadcast_to((n * hi_c)[expand], shape)


def _taps(taps: np.ndarray) -> Callable[[np.ndarray, float], np.ndarray]:
    def apply(v: np.ndarray, sign: float) -> np.ndarray:
        return np.asarray(np.sum(v * np.clip(sign * taps, 0, None)))

    return apply


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a·b with 0·∞ = 0 (a zero weight cuts an unbounded input)."""
    with np.errstate(invalid="ignore"):
        out = np.asarray(a, np.float64) * b
    return np.where(np.isnan(out), 0.0, out)


def _linear(x: Interval, apply: Callable[[np.ndarray, float], np.ndarray]) -> Interval:
    """Bounds of a linear map with weights W = W⁺ − W⁻: ``apply(v, +1)`` is ``W⁺ v``, ``apply(v, −1)`` is ``W⁻ v``.

    hi = W⁺·x_hi − W⁻·x_lo, lo = W⁺·x_lo − W⁻·x_hi; an infinite end reaches every output its weights touch.
    """
    lo, hi = x
    finite_lo, finite_hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)
    out_hi = apply(finite_hi, 1.0) - apply(finite_lo, -1.0)
    out_lo = apply(finite_lo, 1.0) - apply(finite_hi, -1.0)
    up = (apply(np.isinf(hi).astype(float), 1.0) + apply(np.isinf(lo).astype(float), -1.0)) > 0
    down = (apply(np.isinf(lo).astype(float), 1.0) + apply(np.isinf(hi).astype(float), -1.0)) > 0
    return np.where(down, -np.inf, out_lo), np.where(up, np.inf, out_hi)


def _per_channel(x: Interval, padded: bool) -> tuple[np.ndarray, np.ndarray]:
    """The widest interval of each channel (axis 0 of the per-sample shape), widened to 0 under padding."""
    lo = np.asarray(x[0]).reshape(x[0].shape[0], -1).min(axis=1)
    hi = np.asarray(x[1]).reshape(x[1].shape[0], -1).max(axis=1)
    return (np.minimum(lo, 0.0), np.maximum(hi, 0.0)) if padded else (lo, hi)


def value_bounds(graph: Graph) -> dict[str, Interval]:
    """Sound per-element bounds of every node's value over all steps and all inputs (subgraphs inlined).

    Two sweeps in topological order: the first takes recurrent edges as unbounded, the second uses the
    first's bounds for them (spiking nodes cut every loop, so that is enough for NIR's recurrent layers).
    """
    previous: dict[str, Interval] = {}
    for _ in range(2):
        current: dict[str, Interval] = {}
        for name in graph.order:
            node, shape = graph.nodes[name], graph.types[name]
            edges = graph.in_edges(name)
            ins = [(previous if e.recurrent else current).get(e.src) or _unbounded(graph.types[e.src]) for e in edges]
            transfer = transfer_of(node)
            if transfer is None or not ins:
                current[name] = _unbounded(shape)
                continue
            current[name] = transfer(node, _sum(ins, graph.types[edges[0].src]), shape)
        previous = current
    return previous


def _sum(intervals: list[Interval], shape: Shape) -> Interval:
    """The interval of a sum of inputs (NIR sums a node's incoming edges)."""
    lo, hi = np.zeros(shape), np.zeros(shape)
    for a, b in intervals:
        lo, hi = lo + a, hi + b
    return lo, hi


def sup_membrane(d: np.ndarray, u_lo: np.ndarray, u_hi: np.ndarray) -> np.ndarray:
    """The largest ``v_t`` (any t ≥ 0) of ``v_t = d·v_{t−1} + u_t``, ``u_t ∈ [u_lo, u_hi]``, ``v_{−1} = 0``."""
    d, u_lo, u_hi = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (d, u_lo, u_hi)))
    with np.errstate(divide="ignore", invalid="ignore"):
        leaky = np.maximum(u_hi, u_hi / (1.0 - d))
        growing = np.where(u_hi > 0, np.inf, u_hi)
        c = u_hi + d * u_lo
        flipping = np.maximum(np.maximum(u_hi, c), c / (1.0 - d * d))
    out = np.where(d > 1, growing, np.where(d >= 0, leaky, np.where(d > -1, flipping, np.inf)))
    return np.where(np.isnan(out), np.inf, out)


def _affine(x: Interval, gain: np.ndarray, offset: np.ndarray) -> Interval:
    a, b = _mul(gain, x[0]), _mul(gain, x[1])
    return np.minimum(a, b) + offset, np.maximum(a, b) + offset


def _membrane_sup(node: Node, x: Interval, dt: float) -> np.ndarray | None:
    """sup of the membrane of a LIF/CubaLIF under inputs in ``x`` (None for other kinds)."""
    if isinstance(node, snn.CubaLIF):
        a_syn = dt / np.asarray(node.tau_syn, np.float64)
        u = _affine(x, a_syn * node.w_in, np.zeros(()))
        current = (-sup_membrane(1 - a_syn, -u[1], -u[0]), sup_membrane(1 - a_syn, *u))
        a = dt / np.asarray(node.tau_mem, np.float64)
        u = _affine(current, a * node.r, a * node.v_leak)
        return sup_membrane(1 - a, *u)
    if isinstance(node, snn.LIF):
        a = dt / np.asarray(node.tau, np.float64)
        u = _affine(x, a * node.r, a * node.v_leak)
        return sup_membrane(1 - a, *u)
    return None


def check_dt(graph: Graph, file: str) -> None:
    """Warn, per node, about decay factors outside [0, 1) and layers that can never fire (module doc)."""
    flat = graph.inline_subgraphs()
    dt = flat.dt
    for name, node in flat.nodes.items():
        for message in _decay_problems(node, dt):
            _warn(file, name, node, message)
    bounds_of = value_bounds(flat)
    for name in flat.order:
        node = flat.nodes[name]
        if not isinstance(node, snn.LIF | snn.CubaLIF):
            continue
        edges = flat.in_edges(name)
        x = _sum([bounds_of[e.src] for e in edges], flat.types[edges[0].src])
        if not (np.all(np.isfinite(x[0])) and np.all(np.isfinite(x[1]))):
            continue
        top = _membrane_sup(node, x, dt)
        assert top is not None
        if np.all(top <= np.asarray(node.v_threshold)):
            _warn(
                file,
                name,
                node,
                f"can never fire at dt={dt:g}: under the largest inputs its inputs allow ({x[1].max():.4g} at most), "
                f"its membrane stays at or below {np.max(top):.4g}, and v_threshold is {np.min(node.v_threshold):.4g} "
                "or more; check the time constants' units against dt (--dt) and the weights",
            )


def _decay_problems(node: Node, dt: float) -> list[str]:
    problems = []
    for field in TAU_FIELDS:
        if getattr(node, field, None) is None:
            continue
        tau = np.asarray(getattr(node, field), np.float64)
        decay = 1.0 - dt / tau
        positive = np.min(tau[tau > 0]) if np.any(tau > 0) else np.nan
        if np.any(decay > 1):
            problems.append(
                f"{field} < 0 (min {np.min(tau):.4g}): at dt={dt:g} each step multiplies the state by "
                f"1 - dt/{field} = {np.max(decay):.6g} > 1, so it grows (a learned decay above 1, as Spyx exports "
                f"{field} = dt/(1 - beta)); imported as exactly that update"
            )
        if np.any(decay <= -1):
            problems.append(
                f"{field} = {positive:.4g} s is at most dt/2 (dt={dt:g}): the Euler decay factor "
                f"1 - dt/{field} = {np.min(decay):.4g} is <= -1, so the state oscillates and grows without bound; "
                "the file's time constants are likely meant for another dt (set it with --dt)"
            )
        elif np.any(decay < 0):
            problems.append(
                f"{field} = {positive:.4g} s is below dt={dt:g}: the Euler decay factor "
                f"1 - dt/{field} = {np.min(decay):.4g} < 0 flips the state's sign every step; "
                "the file's time constants are likely meant for another dt (set it with --dt)"
            )
    return problems


def _warn(file: str, name: str, node: Node, problem: str) -> None:
    nir_name = node.origin.partition("#")[2] or name
    warnings.warn(f"{file}: NIR node '{nir_name}' ({node.kind}): {problem}", SpikecWarning, stacklevel=4)
