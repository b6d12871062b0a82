"""SpikingJelly (activation_based) neurons → SIR, from the framework's Torch reference update.

SpikingJelly 2.0 (``spikingjelly/_ops/{if_,lif,plif}/reference.py``), one step, in this order:

- charge, IFNode: ``h = v + x``;
  LIFNode, ``decay_input=True``: ``h = v + (x − (v − v_r)) / τ``; ``decay_input=False``:
  ``h = v − (v − v_r) / τ + x`` (``v_r`` = ``v_reset``, or 0 for a soft reset);
  ParametricLIFNode: the same with ``1/τ = sigmoid(w)`` (``w`` learned);
- fire: ``spike = heaviside(h − v_threshold)`` with ``heaviside(u) = (u ≥ 0)``: **at or above**;
- reset: hard (``v_reset`` a float) ``v = spike·v_reset + (1 − spike)·h``; soft (``v_reset=None``)
  ``v = h − spike·v_threshold``.

So with ``a = 1/τ``: ``decay_input=True`` is SIR ``LIF(τ, r=1, v_leak=v_r)`` and ``decay_input=False``
is ``LIF(τ, r=τ, v_leak=v_r)`` (``v + a(v_leak − v) + a·r·x``), with ``firing="at_or_above"``.
A hard-reset neuron starts at ``v = v_reset`` (``register_memory("v", v_reset)``): ``v_init``.
The surrogate function and ``detach_reset`` only change gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikec.frontends.torch_snn.params import array
from spikec.frontends.torch_snn.registry import Unsupported, neuron_mapper
from spikec.ir import snn
from spikec.ir.node import Node

_SJ = "spikingjelly.activation_based.neuron"


def _reset(module: Any) -> dict[str, Any]:
    """v_reset None → soft reset (subtract v_threshold); a float → hard reset to it."""
    if getattr(module, "_neuron_precision", None) is not None:
        raise Unsupported("an explicit neuron precision (set_neuron_precision) is not supported; remove it")
    soft = module.v_reset is None
    return {
        "v_threshold": array(module.v_threshold),
        "v_reset": array(0.0 if soft else module.v_reset),
        "reset": snn.Reset.SUBTRACT.value if soft else snn.Reset.VALUE.value,
        "firing": snn.Firing.AT_OR_ABOVE.value,
    }


def _lif(module: Any, tau: np.ndarray) -> Node:
    common = _reset(module)
    v_leak = common["v_reset"] if common["reset"] == snn.Reset.VALUE else array(0.0)
    r = array(1.0) if module.decay_input else tau
    return snn.LIF(tau=tau, r=r, v_leak=v_leak, v_init=v_leak, **common)


@neuron_mapper(f"{_SJ}.integrate_and_fire.IFNode", f"{_SJ}.IFNode")
def if_node(module: Any) -> Node:
    """IFNode: ``h = v + x`` → ``IF(r=1)``."""
    common = _reset(module)
    v_init = common["v_reset"] if common["reset"] == snn.Reset.VALUE else array(0.0)
    return snn.IF(r=array(1.0), v_init=v_init, **common)


@neuron_mapper(f"{_SJ}.lif.LIFNode", f"{_SJ}.LIFNode")
def lif_node(module: Any) -> Node:
    """LIFNode(tau, decay_input, v_threshold, v_reset)."""
    return _lif(module, array(module.tau))


@neuron_mapper(f"{_SJ}.plif.ParametricLIFNode", f"{_SJ}.ParametricLIFNode")
def parametric_lif_node(module: Any) -> Node:
    """ParametricLIFNode: ``1/τ = sigmoid(w)``, evaluated in float64 from the learned ``w``."""
    w = array(module.w)
    return _lif(module, 1.0 + np.exp(-w))
