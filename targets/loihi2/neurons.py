"""How each float neuron kind maps onto Loihi's LIF (``LoihiLIF``): decays, input gain, bias, threshold.

Loihi's LIF (docs/semantics.md) with ``du = 4095`` keeps no current (``u = 2⁶ a_in``) and with
``dv = 0`` no leak, so per step ``v ← (1 − dv/4096)·v + 2⁶ a_in + b``, fire ``v > vth·2⁶``, reset to 0.
A float neuron becomes ``NeuronSpec``: the factor ``gain`` its synaptic input enters ``v`` with, the
constant ``bias`` added to ``v`` each step, the decays and the threshold (``None``: a readout that
never fires and is read from its v). With ``a = dt/τ``:

====================  =====  ==================  ================  ===============  ==========
kind                  du     dv                  gain              bias             threshold
====================  =====  ==================  ================  ===============  ==========
IF                    4095   0                   r                 0                v_threshold
LIF                   4095   round(4096 a)       a·r               a·v_leak         v_threshold
CubaLIF               round(4096 a_syn) − 1      round(4096 a_mem) a_mem·r·a_syn·w_in a_mem·v_leak v_threshold
I (readout)           4095   0                   r                 0                none
====================  =====  ==================  ================  ===============  ==========

Loihi resets to zero and starts at v = 0: a subtract reset or ``v_init ≠ 0`` is refused unless the
caller accepts the approximation (``reset_to_zero``); a value reset to ``v_reset ≠ 0``, bipolar IFs
and ``reset=none`` have no Loihi LIF equivalent and are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from spikec.errors import SpikecError
from spikec.ir import snn
from spikec.ir.node import Node
from spikec.targets.loihi2.fixed import decay_field

NO_CURRENT = (1 << 12) - 1  # du = 4095: u holds only this step's input


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
    du: int
    dv: int
    gain: np.ndarray  # factor of the synaptic input in v (per neuron, broadcastable)
    bias: np.ndarray  # constant added to v per step, in the float SNN's units
    threshold: np.ndarray | None  # None: a non-firing readout integrator
    approximations: tuple[str, ...] = ()  # what differs from the float neuron (reported)


class NeuronMappingError(SpikecError):
    """A float neuron has no Loihi LIF equivalent (raised as QuantizationError by the pass, with the node named)."""


def _reset(node: Node, reset_to_zero: bool) -> tuple[str, ...]:
    """The reset/initial-state approximations of a firing neuron, or an error if not allowed."""
    notes = []
    reset = snn.Reset(node.reset)  # type: ignore[attr-defined]
    if reset == snn.Reset.VALUE and np.any(np.asarray(node.v_reset) != 0):  # type: ignore[attr-defined]
        raise NeuronMappingError("resets to v_reset != 0; Loihi's LIF resets to 0")
    if reset == snn.Reset.NONE:
        raise NeuronMappingError("has reset=none; Loihi's LIF always resets to 0 when it fires")
    if reset in (snn.Reset.SUBTRACT, snn.Reset.SUBTRACT_NEXT):
        if not reset_to_zero:
            raise NeuronMappingError(
                f"resets by subtraction (reset={reset.value}); Loihi's LIF resets to 0. Pass "
                "quantize{target=loihi2,reset_to_zero=true} to accept reset-to-zero (it drops the residue above "
                "threshold at each spike: docs/semantics.md measures the accuracy effect), or convert with "
                "relu-to-if{reset=value}"
            )
        notes.append(f"reset {reset.value} -> reset to zero")
    v_init = getattr(node, "v_init", None)
    if v_init is not None and np.any(np.asarray(v_init) != 0):
        if not reset_to_zero:
            raise NeuronMappingError(
                "starts at v_init != 0; Loihi's LIF starts at 0. Pass quantize{target=loihi2,reset_to_zero=true} "
                "to start at 0, or convert with init-membrane{fraction=0}"
            )
        notes.append("v_init -> 0")
    if getattr(node, "firing", snn.Firing.ABOVE.value) != snn.Firing.ABOVE.value:
        notes.append("firing at_or_above -> above (one threshold LSB)")
    return tuple(notes)


def _if(node: snn.IF, dt: float, reset_to_zero: bool) -> NeuronSpec:
    if node.polarity != snn.Polarity.UNIPOLAR.value:
        raise NeuronMappingError("is a bipolar IF (-1 spikes); Loihi's LIF fires only +1: decode with mode=membrane")
    notes = _reset(node, reset_to_zero)
    return NeuronSpec(NO_CURRENT, 0, np.asarray(node.r, np.float64), np.asarray(0.0), node.v_threshold, notes)


def _lif(node: snn.LIF, dt: float, reset_to_zero: bool) -> NeuronSpec:
    a = dt / np.asarray(node.tau, np.float64)
    dv = decay_field(a, "dt/tau")
    a_used = dv / 4096.0
    notes = _reset(node, reset_to_zero)
    gain, bias = a_used * np.asarray(node.r, np.float64), a_used * np.asarray(node.v_leak, np.float64)
    return NeuronSpec(NO_CURRENT, dv, gain, bias, node.v_threshold, notes)


def _cuba_lif(node: snn.CubaLIF, dt: float, reset_to_zero: bool) -> NeuronSpec:
    a_syn, a_mem = dt / np.asarray(node.tau_syn, np.float64), dt / np.asarray(node.tau_mem, np.float64)
    du, dv = decay_field(a_syn, "dt/tau_syn") - 1, decay_field(a_mem, "dt/tau_mem")
    notes = _reset(node, reset_to_zero)
    s, m = (du + 1) / 4096.0, dv / 4096.0
    gain = m * np.asarray(node.r, np.float64) * s * np.asarray(node.w_in, np.float64)
    return NeuronSpec(du, dv, gain, m * np.asarray(node.v_leak, np.float64), node.v_threshold, notes)


def _integrator(node: snn.I, dt: float, reset_to_zero: bool) -> NeuronSpec:
    return NeuronSpec(NO_CURRENT, 0, np.asarray(node.r, np.float64), np.asarray(0.0), None)


NEURONS: dict[type[Node], Callable[..., NeuronSpec]] = {
    snn.IF: _if,
    snn.LIF: _lif,
    snn.CubaLIF: _cuba_lif,
    snn.I: _integrator,
}
"""Float neuron kind -> its Loihi LIF mapping (one entry per kind the quantizer lowers)."""
