"""The neurons ``quantize{target=spinnaker2}`` lowers, as what a ``SpiNNaker2LIF`` population needs of each.

* ``IF`` (unipolar): no leak, ``alpha_decay = 1``; ``I``: a readout (never fires, outputs v).
* ``LIF``: forward Euler ``v ← (1 − a)·v + a·(v_leak + r·x)`` with ``a = dt/τ`` per neuron becomes
  ``alpha_decay = 1 − a``, input gain ``a·r`` and the bias ``a·v_leak`` of every step (per neuron).
* ``CubaLIF``: ``i ← (1 − a_s)·i + a_s·w_in·x``, ``v ← (1 − a_m)·v + a_m·(v_leak + r·i)`` becomes a current-based
  population (``syn_decay = 1 − a_s``, ``alpha_decay = 1 − a_m``, input gain ``a_m·r·a_s·w_in`` into the current,
  which v reads in the same step); ``v_leak`` shifts the membrane (θ, v₀, v_reset less ``v_leak``: the same spikes,
  no bias). With ``dt/τ_syn = 1`` (its current is ``w_in·S``) it is a LIF of gain ``r·w_in``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.ir import IF, LIF, CubaLIF, Graph, I
from spikec.ir.node import Node
from spikec.targets.spinnaker2.terms import fail


@dataclasses.dataclass(frozen=True)
class NeuronMap:
    """How one float neuron becomes a SpiNNaker2LIF: input gain r, θ, v₀, v_reset, reset, readout flag."""

    gain: np.ndarray
    threshold: np.ndarray
    v_init: np.ndarray
    v_reset: np.ndarray
    reset: str
    readout: int
    at_or_above: bool = False
    alpha: Any = 1.0  # lif_no_delay's alpha_decay (per neuron): 1 - dt/tau (forward Euler), 1 for IF
    bias: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(()))  # a LIF's dt/tau·v_leak per step
    syn_decay: Any = 0.0  # lif_curr_exp's current decay (per neuron): 1 - dt/tau_syn, 0 without a current


def neuron_map(graph: Graph, name: str, reset_to_zero: bool) -> NeuronMap:
    """The SpiNNaker2LIF form of float neuron ``name`` (module docstring, ``NEURONS``); ``QuantizationError`` when
    it has none."""
    node = graph.nodes[name]
    form = NEURONS.get(type(node))
    if form is None:
        raise fail(
            graph,
            name,
            "has no SpiNNaker2 form: spikec lowers IF and LIF (IF_curr_delta, alpha_decay = 1 − dt/τ), CubaLIF "
            "(IF_curr_exp) and I (a readout); lower other neurons first",
        )
    return form(graph, name, node, reset_to_zero)


def _integrate_and_fire(graph: Graph, name: str, node: Any, reset_to_zero: bool) -> NeuronMap:
    """A unipolar IF: no leak, its own reset (to zero when asked), v₀."""
    if node.polarity != "unipolar":
        raise fail(
            graph, name, "is bipolar; SpiNNaker2 populations send +1 spikes only (convert with --decoding membrane)"
        )
    reset = "value" if node.reset == "value" or reset_to_zero else node.reset
    if reset not in ("value", "subtract"):
        raise fail(graph, name, f"resets with '{node.reset}'; SpiNNaker2 resets to v_reset or by subtraction")
    v_reset = np.zeros(()) if reset_to_zero else np.asarray(node.v_reset)
    return NeuronMap(
        np.asarray(node.r),
        np.asarray(node.v_threshold),
        np.asarray(node.v_init),
        v_reset,
        reset,
        0,
        node.firing == "at_or_above",
    )


def _readout(graph: Graph, name: str, node: Any, reset_to_zero: bool) -> NeuronMap:
    """An I: a population that never fires; its v is the output."""
    return NeuronMap(np.asarray(node.r), np.ones(()), np.zeros(()), np.zeros(()), "value", 1)


def _leaky(graph: Graph, name: str, node: LIF, reset_to_zero: bool) -> NeuronMap:
    """A LIF as lif_no_delay: v ← (1 − a)·v + a·r·x + a·v_leak with a = dt/τ per neuron (one per channel when
    a Conv feeds it: ``_channel_gain``); the a·v_leak of every step is a bias (per neuron), which PyNN adds from a
    source firing every step."""
    reset = "value" if node.reset == "value" or reset_to_zero else node.reset
    if reset not in ("value", "subtract"):
        raise fail(graph, name, f"resets with '{node.reset}'; SpiNNaker2 resets to v_reset or by subtraction")
    decay = graph.dt / np.asarray(node.tau, np.float64)
    if not np.all((decay > 0) & (decay < 1)):
        raise fail(
            graph,
            name,
            f"decays by dt/tau in [{decay.min():g}, {decay.max():g}]; lif_no_delay takes alpha_decay = 1 - dt/tau "
            "in (0, 1): make every tau > dt",
        )
    if node.firing == "at_or_above":
        raise fail(graph, name, "fires at v >= threshold; a leaky lif_no_delay fires at v > threshold")
    v_reset = np.zeros(()) if reset_to_zero else np.asarray(node.v_reset)
    gain = decay * np.asarray(node.r)
    threshold, v_init = np.asarray(node.v_threshold), np.asarray(node.v_init)
    bias = decay * np.asarray(node.v_leak, np.float64)
    return NeuronMap(gain, threshold, v_init, v_reset, reset, 0, alpha=1.0 - decay, bias=bias)


def _current_based(graph: Graph, name: str, node: CubaLIF, reset_to_zero: bool) -> NeuronMap:
    """A CubaLIF as a current-based population (module docstring); whose synaptic current follows its input
    (dt/τ_syn = 1 up to 1e-6: a float32 τ_syn = dt), a LIF of r·w_in."""
    follows = graph.dt / np.asarray(node.tau_syn, np.float64)
    fields = ("v_leak", "v_threshold", "v_reset", "reset", "firing", "origin")
    if np.allclose(follows, 1.0, rtol=1e-6, atol=0.0):
        r = np.asarray(node.r) * np.asarray(node.w_in) * follows
        return _leaky(graph, name, LIF(tau=node.tau_mem, r=r, **{f: getattr(node, f) for f in fields}), reset_to_zero)
    if not np.all((follows > 0) & (follows < 1)):
        raise fail(
            graph,
            name,
            f"has dt/tau_syn in [{follows.min():g}, {follows.max():g}]; a current-based population decays its "
            "current by 1 - dt/tau_syn in (0, 1) (make every tau_syn > dt, or every tau_syn = dt: then it is a LIF)",
        )
    v_leak = np.asarray(node.v_leak, np.float64)
    if node.reset == "subtract" and np.any(v_leak != 0) and not reset_to_zero:
        raise fail(graph, name, "resets by subtraction with v_leak != 0, which the membrane shift cannot keep exact")
    unshifted = _leaky(graph, name, LIF(tau=node.tau_mem, r=node.r, **{f: getattr(node, f) for f in fields}),
                       reset_to_zero)  # fmt: skip
    gain = unshifted.gain * follows * np.asarray(node.w_in, np.float64)
    return dataclasses.replace(
        unshifted,
        gain=gain,
        threshold=unshifted.threshold - v_leak,
        v_init=unshifted.v_init - v_leak,
        v_reset=unshifted.v_reset - v_leak,
        bias=np.zeros(()),
        syn_decay=1.0 - follows,
    )


NEURONS: dict[type[Node], Callable[[Graph, str, Any, bool], NeuronMap]] = {
    IF: _integrate_and_fire,
    LIF: _leaky,
    CubaLIF: _current_based,
    I: _readout,
}  # each float neuron kind's SpiNNaker2 form
