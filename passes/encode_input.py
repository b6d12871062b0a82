"""``encode-input``: how the (static) input reaches the first layer.

- ``mode=direct`` (default): the analog input is fed as a current at every step (the same array
  repeated ``T`` times); the graph is unchanged and nothing is lost to encoding.
- ``mode=poisson``: the input is fed as random spikes, ``P(z = ±1) = |x|/scale`` per step and element
  (sign of ``x``), so a spike stands for ``scale``; this pass puts ``Scale(scale)`` after each graph
  input so the first layer sees the same value on average (``fuse`` folds it into that layer's
  weights). ``spikec.coding.encode`` draws the spikes (seeded). Unbiased, with a standard error of
  ``scale·√(p(1−p)/T)`` per element.
- ``mode=graded``: the input is fed as integers ``round(x·L/scale)`` (``L = 255``: a chip's 8-bit graded
  input spikes; ``spikec.coding.graded``) every step; this pass puts ``Scale(scale/L)`` after each graph
  input (folded into the first layer). Rounding error at most ``scale/(2L)`` per element.
"""

from __future__ import annotations

import numpy as np

from spikec.coding import GRADED_LEVELS
from spikec.errors import PassError
from spikec.ir import ann
from spikec.ir.graph import Graph
from spikec.passes._graphedit import fresh_name, insert_after
from spikec.pipeline import PassResult

MODES = ("direct", "poisson", "graded")


def encode_input(graph: Graph, *, mode: str = "direct", scale: float = 1.0) -> PassResult:
    """mode=direct (analog current each step; no change), poisson (spikes standing for `scale`) or graded
    (integers x·255/scale): adds the Scale that gives them back their value."""
    if mode not in MODES:
        raise PassError(f"mode={mode!r} is not one of {list(MODES)}")
    if mode == "direct":
        return PassResult(graph, False)
    if not (np.isfinite(scale) and scale > 0):
        raise PassError(f"scale={scale} must be finite and > 0 (the input value one spike stands for)")
    value = scale / GRADED_LEVELS if mode == "graded" else scale
    for name in graph.inputs:
        graph = insert_after(graph, name, fresh_name(graph, f"{name}.encode"), ann.Scale(scale=np.asarray(value)))
    return PassResult(graph, True)
