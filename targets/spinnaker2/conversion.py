"""What the SpiNNaker2 target chooses for converting an ANN (``SpiNNaker2Target.conversion_defaults``), so
``spikec compile MODEL --target spinnaker2 --calib X.npy --timesteps T`` needs no other flag. Each is required:
a user's other value is an error saying what the PyNN network does instead.

* ``encoding = poisson``: populations read 0/1 spike sources (PyNN ``SpikeSourceArray``, py-spinnaker2's
  ``spike_list``); a graded integer input has no PyNN form.
* ``reset = zero``: PyNN's standard cells reset to ``v_reset``; none subtracts the threshold.
* ``maxpool = spikes``: an OR population per max-pool (``quantize.or_pool``).
* ``decoding = membrane``: the readout is a population that never fires, read from its v (PyNN cells fire +1
  only, so there is no bipolar spike readout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spikec.ir import Graph
from spikec.target import Choice, ConversionDefaults

if TYPE_CHECKING:
    from spikec.methods import ConversionOptions

CHOICES = {
    "encoding": Choice(
        "poisson",
        "SpiNNaker2 and PyNN populations read 0/1 spike sources (SpikeSourceArray, spike_list); a graded input value "
        "has no PyNN form",
        required=True,
    ),
    "reset": Choice(
        "zero",
        "PyNN's IF_curr_delta resets v to v_reset when it fires; no PyNN standard cell resets by subtraction",
        required=True,
    ),
    "maxpool": Choice(
        "spikes", "a max-pool of spikes is an OR population (a depthwise conv of ones into θ = 0)", required=True
    ),
    "decoding": Choice(
        "membrane", "the readout never fires and is read from its v; PyNN cells fire +1 spikes only", required=True
    ),
}


def conversion_defaults(
    method: str, samples: np.ndarray | None, options: ConversionOptions, graph: Graph | None = None
) -> ConversionDefaults:
    """The settings above and ``quantize.timesteps``; nothing for a model that is already an SNN."""
    if samples is None:
        return ConversionDefaults()
    timesteps = Choice(
        options.timesteps, f"the readout integrates --timesteps {options.timesteps} steps: its v must hold them"
    )
    return ConversionDefaults(dict(CHOICES), {"quantize.timesteps": timesteps})
