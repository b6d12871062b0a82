"""The neurons ``quantize{target=spinnaker2}`` lowers, as what a ``SpiNNaker2LIF`` population needs of each.

* ``IF`` (unipolar): no leak, ``alpha_decay = 1``; ``I``: a readout (never fires, outputs v).
* ``LIF``: forward Euler ``v ← (1 − a)·v + a·(v_leak + r·x)`` with ``a = dt/τ`` per neuron becomes
  ``alpha_decay = 1 − a``, input gain ``a·r`` and the bias ``a·v_leak`` of every step (per neuron).
* ``CubaLIF`` with ``dt/τ_syn = 1`` (its current is ``w_in·S``): a LIF of gain ``r·w_in``; any other is refused
  (docs/spinnaker2-target.md, "CubaLIF": PyNN's current-based cell sees the input one step later).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from spikec.ir import IF, LIF, CubaLIF, Graph, I
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


def neuron_map(graph: Graph, name: str, reset_to_zero: bool) -> NeuronMap:
    """The SpiNNaker2LIF form of float neuron ``name`` (module docstring); ``QuantizationError`` when it has none."""
    node = graph.nodes[name]
    if isinstance(node, IF):
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
    if isinstance(node, LIF):
        return _leaky(graph, name, node, reset_to_zero)
    if isinstance(node, CubaLIF):
        return _current_based(graph, name, node, reset_to_zero)
    if isinstance(node, I):
        return NeuronMap(np.asarray(node.r), np.ones(()), np.zeros(()), np.zeros(()), "value", 1)
    raise fail(
        graph,
        name,
        f"({node.kind}) has no SpiNNaker2 form: spikec lowers IF and LIF (lif_no_delay, alpha_decay = 1 − dt/τ) "
        "and I (a readout); lower other neurons first",
    )


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
    """A CubaLIF whose synaptic current follows its input (dt/τ_syn = 1: i = w_in·S) is a LIF of r·w_in (up to
    1e-6: a float32 τ_syn = dt); any other is refused (docs/spinnaker2-target.md, "CubaLIF")."""
    follows = graph.dt / np.asarray(node.tau_syn, np.float64)  # 1 up to the rounding of a float32 tau_syn
    if np.allclose(follows, 1.0, rtol=1e-6, atol=0.0):
        fields = ("v_leak", "v_threshold", "v_reset", "reset", "firing", "origin")
        r = np.asarray(node.r) * np.asarray(node.w_in) * follows
        return _leaky(graph, name, LIF(tau=node.tau_mem, r=r, **{f: getattr(node, f) for f in fields}), reset_to_zero)
    raise fail(
        graph,
        name,
        "(CubaLIF) has no exact SpiNNaker2 form in PyNN: IF_curr_exp adds a spike to its current after the step's "
        "membrane update, so v sees the input one step later than the SIR's forward Euler (v_t reads i_t, which "
        "holds S_t); lower it to a LIF (tau_syn = dt makes i = w_in·S, which spikec lowers) or convert with IF neurons",
    )
