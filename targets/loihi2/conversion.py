"""What the Loihi 2 target chooses for converting an ANN (``Loihi2Target.conversion_defaults``): settings Lava's
neurons can run, each with its reason, so ``spikec compile MODEL --target loihi2 --calib X.npy --timesteps T``
needs no other flag (docs/loihi2-target.md, "Conversion settings").

* ``reset = zero``, ``init = 0``: Lava's LIF resets v to 0 when it fires and starts at v = 0. The
  threshold is then spikec's ``auto`` (``spikec.threshold_search``): the fraction of each layer's activation
  scale that makes the reset-to-zero SNN agree best with the ANN at ``--timesteps``.
* ``maxpool = spikes``: a max-pool of spikes is an OR layer on Loihi; the count-based ``RateMaxPool`` and
  the max of currents have no Loihi neuron.
* ``decoding = membrane``: the readout is a LIF that never fires, read from its v (Loihi fires +1 only).
* The input: integers enter as graded spikes of that size (``quantize.input_max`` = the calibration
  samples' largest |x|; 0/1 samples are binary spikes); samples that are not integers are encoded as
  8-bit graded integers ``round(x·255/max|x|)`` (``encoding = graded``, ``input_max = 255``), poisson
  spikes as 0/1 (``input_max = 1``).
* ``quantize.timesteps = --timesteps``: the readout's v must hold T steps without saturating.
* ``--method binary``: the same input, init and decoding, ``quantize.reset_to_zero`` (its IFs reset by
  subtraction) and ``attention = per-step`` (coincidence neurons multiply spike trains per step; the
  compensated product of spike counts has no Loihi form).

Each is used where the user gave no value; a user's ``--reset subtract``, ``--init``, ``--maxpool`` or
``--decoding`` other than these is an error saying what Loihi does instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spikec.coding import GRADED_LEVELS
from spikec.methods import ConversionConflict
from spikec.target import Choice, ConversionDefaults

if TYPE_CHECKING:
    from spikec.methods import ConversionOptions

RATE_METHODS = ("percentile", "max")

CHIP = {
    "reset": Choice(
        "zero",
        "Lava's LIF resets v to 0 when it fires; it has no subtractive reset (the residue above threshold is "
        "dropped, which the threshold search at --timesteps accounts for)",
        required=True,
    ),
    "init": Choice(0.0, "Lava's LIF starts at v = 0 (the quantizer lowers no initial membrane)", required=True),
    "maxpool": Choice(
        "spikes",
        "Loihi max-pools spikes as an OR layer (a depthwise conv of ones into a LIF that fires on any input); "
        "rate (a running count per input) and current (a max of synaptic currents) have no Loihi neuron",
        required=True,
    ),
    "decoding": Choice(
        "membrane",
        "the readout is a LIF that never fires, read from its v; Loihi's LIF fires +1 only, so there is no "
        "bipolar spike readout",
        required=True,
    ),
}
ATTENTION = Choice(
    "per-step",
    "Loihi's coincidence neurons multiply spike trains step by step (Spikformer's attention); the product of "
    "spike counts divided by t² has no Loihi neuron or synapse",
    required=True,
)


def _is_integer(samples: np.ndarray) -> bool:
    return bool(np.all(samples == np.round(samples)))


def _input(samples: np.ndarray, options: ConversionOptions) -> tuple[dict[str, Choice], dict[str, Choice]]:
    """The encoding (when not given) and ``quantize.input_max`` for these calibration samples."""
    peak = float(np.max(np.abs(samples))) or 1.0
    integer = _is_integer(samples)
    settings: dict[str, Choice] = {}
    encoding = options.encoding
    if encoding is None:
        encoding = "direct" if integer else "graded"
        why = (
            f"the calibration samples are integers (largest |x| {peak:g}): they enter as graded spikes of that size"
            if integer
            else f"the calibration samples are not integers (largest |x| {peak:g}) and Loihi's graded spikes carry "
            f"integers: inputs are fed as round(x * {GRADED_LEVELS}/{peak:g}) (8 bits and a sign)"
        )
        settings["encoding"] = Choice(encoding, why)
    elif encoding == "direct" and not integer:
        raise ConversionConflict(
            "--encoding direct: target 'loihi2' takes integer inputs (graded spikes), and the calibration samples are "
            f"not integers: leave --encoding out (graded: round(x * {GRADED_LEVELS}/max|x|)), use poisson, or give "
            "integer samples (e.g. raw 0..255 pixels)"
        )
    if encoding == "graded":
        input_max, why = float(GRADED_LEVELS), f"graded input: integers up to {GRADED_LEVELS} in size"
    elif encoding == "poisson":
        input_max, why = 1.0, "poisson input: one spike per step and element"
    else:
        input_max = peak if peak > 1 else 1.0
        why = f"the largest |x| of the calibration samples ({peak:g})" + (": binary spikes" if peak <= 1 else "")
    return settings, {"quantize.input_max": Choice(input_max, why)}


def conversion_defaults(method: str, samples: np.ndarray | None, options: ConversionOptions) -> ConversionDefaults:
    """The settings above for ``method``; nothing for a model that is already an SNN."""
    if samples is None:
        return ConversionDefaults()
    timesteps = Choice(
        options.timesteps, f"the readout integrates --timesteps {options.timesteps} steps: its v must hold them"
    )
    if method == "exact":
        return ConversionDefaults(pass_options={"quantize.timesteps": timesteps})
    if method not in RATE_METHODS:  # binary: its IFs reset by subtraction, approximated as reset to zero
        reset = Choice(True, "the binary method's IFs reset by subtraction; Lava's LIF resets to zero (per layer)")
        settings, pass_options = _input(samples, options)
        chosen = {"init": CHIP["init"], "decoding": CHIP["decoding"], "attention": ATTENTION, **settings}
        return ConversionDefaults(
            chosen, {**pass_options, "quantize.reset_to_zero": reset, "quantize.timesteps": timesteps}
        )
    settings, pass_options = _input(samples, options)
    return ConversionDefaults({**CHIP, **settings}, {**pass_options, "quantize.timesteps": timesteps})
