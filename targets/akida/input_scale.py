"""The pass ``akida-input{scale=S}``: make the model take Akida's 8-bit pixels.

Akida's ``InputConv2D`` reads uint8 pixels ``p``; a model trained on ``x = S · p`` (``S = 1/255`` for images in
[0, 1]) computes :math:`W \\star x = (S W) \\star p`, so the pass multiplies the weights of the convolution that
reads the input by ``S`` (its bias is unchanged): the model, and the float ANN the artifact keeps as ``ann.sir``,
then take pixels, and ``spikec verify --inputs`` takes pixels too. The calibrated ranges of the activations
after it do not change.

``S`` defaults to what the calibration range says (``input_scale_choice``, the target's ``conversion_defaults``):
images within [0, 1] are taken as pixel / 255 (``S = 1/255``), anything else as pixels already (``S = 1``);
``--pass-option akida-input.scale=S`` overrides it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikec.errors import PassError, TargetError
from spikec.ir import ann
from spikec.ir.graph import Graph
from spikec.pipeline import PassResult
from spikec.target import Choice


def input_scale_choice(samples: np.ndarray) -> Choice:
    """The default ``scale`` from the calibration images (module docstring)."""
    lo, hi = float(np.min(samples)), float(np.max(samples))
    if lo >= 0 and hi <= 1:
        return Choice(1 / 255, f"the calibration images lie in [{lo:.3g}, {hi:.3g}]: taken as pixel / 255")
    return Choice(1.0, f"the calibration images lie in [{lo:.3g}, {hi:.3g}]: taken as 8-bit pixels")


def akida_input(graph: Graph, *, scale: float = 1.0) -> PassResult:
    """Fold the input scale (one model input unit = ``1/scale`` pixels) into the first convolution's weights."""
    if not scale > 0:
        raise PassError(f"akida-input: scale={scale} must be > 0 (model input = scale x 8-bit pixel)")
    if scale == 1.0:
        return PassResult(graph, False)
    (inp,) = graph.inputs
    users = [e.dst for e in graph.out_edges(inp) if not e.recurrent]
    if len(users) != 1 or not isinstance(graph.nodes[users[0]], ann.Conv):
        raise TargetError(
            f"{graph.describe(inp)}: akida-input.scale={scale} folds into the convolution that reads the input, "
            f"but the input feeds {', '.join(graph.describe(u) for u in users)}; start the model with one convolution"
        )
    conv = graph.nodes[users[0]]
    assert isinstance(conv, ann.Conv)
    scaled = dataclasses.replace(conv, weight=np.asarray(conv.weight, np.float64) * scale)
    return PassResult(graph.with_node(users[0], scaled), True)
