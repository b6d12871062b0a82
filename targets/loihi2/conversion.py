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
  graded integers ``round(x·255/input_scale)`` (``encoding = graded``): ``input_scale = max|x|`` (255
  levels), or, where the first layer's fan-in leaves its weights too few levels in the 24-bit u at 255 input
  levels (ResNet's 7×7×3 stem), a larger scale that feeds fewer (``graded_levels``); poisson spikes as 0/1.
* ``quantize.timesteps = --timesteps``: the readout's v must hold T steps without saturating.
* ``--method binary``: the same reset (to zero, threshold ``auto``), input, init and decoding, and
  ``attention = per-step`` (coincidence neurons multiply spike trains per step; the compensated product of
  spike counts has no Loihi form). Its float SNN is then the network Loihi runs: converted with reset by
  subtraction and only approximated by Loihi's reset to zero, a 2-block ViT's fixed-point network agreed
  with its ANN on none of 16 samples while its float SNN agreed on all.

Each is used where the user gave no value; a user's ``--reset subtract``, ``--init``, ``--maxpool`` or
``--decoding`` other than these is an error saying what Loihi does instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spikec.coding import GRADED_LEVELS
from spikec.ir import Graph
from spikec.methods import ConversionConflict
from spikec.target import Choice, ConversionDefaults
from spikec.targets.loihi2.quantize_report import STATE_MAX

ACT = 1 << 6  # Lava's LIF takes a_in into u shifted left by 6 bits
WEIGHT_LEVELS = 32  # mantissa levels the graded input leaves a typical first-layer weight

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


def first_layer_fan_in(graph: Graph | None) -> int:
    """The largest fan-in (inputs per output neuron) of the weighted layers (Conv, Dense) that read the graph's
    inputs, through any unweighted nodes before them (normalisation, reshapes); 1 without a graph."""
    if graph is None:
        return 1
    fan_in, seen, todo = 1, set(graph.inputs), list(graph.inputs)
    while todo:
        for edge in graph.out_edges(todo.pop()):
            node = graph.nodes[edge.dst]
            weight = getattr(node, "weight", None)
            if isinstance(weight, np.ndarray) and weight.ndim >= 2:
                fan_in = max(fan_in, int(np.prod(weight.shape[1:])))
            elif edge.dst not in seen:
                seen.add(edge.dst)
                todo.append(edge.dst)
    return fan_in


def graded_levels(fan_in: int) -> int:
    """The most graded input levels L <= 255 a first layer of ``fan_in`` inputs takes with room for its weights:
    its worst-case input sum ``fan_in · L · |w|`` (Lava shifts it by 6 bits into u) must fit u's 24 bits with
    the typical weight (|w| ≈ w_max/3) at >= 32 mantissa levels: ``L = ⌊3·(2²³−1) / (2⁶ · fan_in · 32)⌋``."""
    return max(1, min(GRADED_LEVELS, 3 * STATE_MAX // (ACT * fan_in * WEIGHT_LEVELS)))


def _input(
    samples: np.ndarray, options: ConversionOptions, graph: Graph | None
) -> tuple[dict[str, Choice], dict[str, Choice]]:
    """The encoding and input scale (when not given) and ``quantize.input_max`` for these calibration samples."""
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
            f"integers: inputs are fed as round(x * {GRADED_LEVELS}/input_scale), at most {GRADED_LEVELS} in size"
        )
        settings["encoding"] = Choice(encoding, why)
    elif encoding == "direct" and not integer:
        raise ConversionConflict(
            "--encoding direct: target 'loihi2' takes integer inputs (graded spikes), and the calibration samples are "
            f"not integers: leave --encoding out (graded: round(x * {GRADED_LEVELS}/max|x|)), use poisson, or give "
            "integer samples (e.g. raw 0..255 pixels)"
        )
    if encoding == "graded":
        levels = GRADED_LEVELS
        if options.input_scale is None:
            fan_in = first_layer_fan_in(graph)
            levels = graded_levels(fan_in)
            if levels < GRADED_LEVELS:
                settings["input_scale"] = Choice(
                    peak * GRADED_LEVELS / levels,
                    f"the first layer reads {fan_in} inputs per neuron: at {GRADED_LEVELS} input levels its worst-case "
                    f"input sum leaves its 8-bit weights few levels in Lava's 24-bit u; {levels} levels "
                    f"(round(x * {GRADED_LEVELS}/input_scale) up to {levels} for |x| up to {peak:g}) leave >= "
                    f"{WEIGHT_LEVELS} for a typical weight",
                )
        else:
            levels = min(GRADED_LEVELS, int(np.ceil(GRADED_LEVELS * peak / options.input_scale)))
        input_max, why = float(levels), f"graded input: integers up to {levels} in size"
    elif encoding == "poisson":
        input_max, why = 1.0, "poisson input: one spike per step and element"
    else:
        input_max = peak if peak > 1 else 1.0
        why = f"the largest |x| of the calibration samples ({peak:g})" + (": binary spikes" if peak <= 1 else "")
    return settings, {"quantize.input_max": Choice(input_max, why)}


def conversion_defaults(
    method: str, samples: np.ndarray | None, options: ConversionOptions, graph: Graph | None = None
) -> ConversionDefaults:
    """The settings above for ``method``; nothing for a model that is already an SNN."""
    if samples is None:
        return ConversionDefaults()
    timesteps = Choice(
        options.timesteps, f"the readout integrates --timesteps {options.timesteps} steps: its v must hold them"
    )
    if method == "exact":
        return ConversionDefaults(pass_options={"quantize.timesteps": timesteps})
    settings, pass_options = _input(samples, options, graph)
    if method not in RATE_METHODS:  # binary: a transformer's spiking attention, max-pool-free
        chosen = {"reset": CHIP["reset"], "init": CHIP["init"], "decoding": CHIP["decoding"], "attention": ATTENTION}
        return ConversionDefaults({**chosen, **settings}, {**pass_options, "quantize.timesteps": timesteps})
    return ConversionDefaults({**CHIP, **settings}, {**pass_options, "quantize.timesteps": timesteps})
