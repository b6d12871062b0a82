"""snnTorch neurons → SIR, from ``snntorch/_neurons/{leaky,synaptic}.py`` (1.0).

One call of ``Leaky`` (``β`` clamped to [0, 1], ``θ`` the threshold, ``mem`` the stored membrane):

1. ``reset = [mem > θ]`` (from the membrane the *previous* step left);
2. ``subtract``: ``mem = β·mem + x − reset·θ``; ``zero``: ``mem = β·((1 − reset)·mem) + x``;
   ``none``: ``mem = β·mem + x``;
3. ``spk = [mem > θ]`` (strict);
4. only with ``reset_delay=False``: ``mem −= (spk − reset)·θ`` (or ``·mem`` for ``zero``).

With the default ``reset_delay=True`` the stored membrane is the one *before* its reset, and the
threshold is subtracted at the next step after the decay: it never decays. That is SIR's
``reset="subtract_next"``; a decayed subtraction (SIR ``subtract``) would differ from step 2 on.
``zero`` zeroes the membrane before its decay, which is SIR's ``value`` reset to 0 applied at the
end of the firing step. ``β·mem + x`` is SIR ``LIF(τ = 1/(1 − β), r = 1/(1 − β))`` in steps
(``β = 1``: ``IF``). ``Synaptic`` adds ``syn = α·syn + x`` before the membrane, which takes
``syn`` in place of ``x``: ``CubaLIF(τ_syn = w_in = 1/(1 − α), τ_mem = r = 1/(1 − β))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikec.frontends.torch_snn.params import array
from spikec.frontends.torch_snn.registry import Unsupported, neuron_mapper
from spikec.ir import snn
from spikec.ir.node import Node

_SNN = "snntorch._neurons"


def _checks(module: Any) -> None:
    if getattr(module, "inhibition", False):
        raise Unsupported("inhibition=True (winner-take-all over the batch) is not supported")
    if getattr(module, "state_quant", False):
        raise Unsupported("state_quant is not supported; quantize with spikec's passes instead")
    if not np.all(array(module.graded_spikes_factor) == 1.0):
        raise Unsupported("graded_spikes_factor != 1 is not supported (spikes would not be 0/1)")


def _reset(module: Any) -> dict[str, Any]:
    threshold = array(module.threshold)
    mechanism = module.reset_mechanism
    delayed = bool(getattr(module, "reset_delay", True))
    if mechanism == "subtract":
        if not delayed:
            raise Unsupported(
                "reset_mechanism='subtract' with reset_delay=False is not supported: its firing test also "
                "subtracts the previous step's reset when the membrane stays above threshold after a reset, "
                "which no SIR reset reproduces; use reset_delay=True (the default)"
            )
        reset = snn.Reset.SUBTRACT_NEXT
    elif mechanism == "zero":
        if not delayed and np.any(threshold < 0):
            raise Unsupported("reset_mechanism='zero' with reset_delay=False needs threshold >= 0")
        reset = snn.Reset.VALUE
    elif mechanism == "none":
        reset = snn.Reset.NONE
    else:
        raise Unsupported(f"reset_mechanism={mechanism!r} is not one of 'subtract', 'zero', 'none'")
    return {"v_threshold": threshold, "v_reset": array(0.0), "reset": reset.value}


def _steps(decay: np.ndarray, name: str) -> np.ndarray:
    """``x ← decay·x + input`` as an Euler step: τ = r = 1/(1 − decay) steps."""
    if np.any(decay >= 1.0):
        raise Unsupported(f"{name} = 1 (no leak) for some neurons; only Leaky maps that (to IF), uniformly")
    return 1.0 / (1.0 - decay)


@neuron_mapper(f"{_SNN}.leaky.Leaky", "snntorch.Leaky")
def leaky(module: Any) -> Node:
    """Leaky(beta, threshold, reset_mechanism, reset_delay)."""
    _checks(module)
    beta = np.clip(array(module.beta), 0.0, 1.0)
    common = _reset(module)
    if np.all(beta == 1.0):
        return snn.IF(r=array(1.0), **common)
    steps = _steps(beta, "beta")
    return snn.LIF(tau=steps, r=steps, v_leak=array(0.0), **common)


@neuron_mapper(f"{_SNN}.synaptic.Synaptic", "snntorch.Synaptic")
def synaptic(module: Any) -> Node:
    """Synaptic(alpha, beta, threshold, reset_mechanism, reset_delay)."""
    _checks(module)
    if module.reset_mechanism == "zero":
        raise Unsupported(
            "reset_mechanism='zero' is not supported for Synaptic: after a spike snnTorch sets the next step's "
            "membrane to 0 *after* integrating that step's input (the input is lost), which no SIR reset does"
        )
    alpha = np.clip(array(module.alpha), 0.0, 1.0)
    beta = np.clip(array(module.beta), 0.0, 1.0)
    syn, mem = _steps(alpha, "alpha"), _steps(beta, "beta")
    return snn.CubaLIF(tau_syn=syn, w_in=syn, tau_mem=mem, r=mem, v_leak=array(0.0), **_reset(module))
