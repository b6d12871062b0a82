"""The IF threshold for reset to zero (``convert(..., reset="zero", threshold="auto")``), chosen on the calibration set.

An IF that resets to 0 drops the residue ``v − θ`` at each spike: fed ``c`` per step from ``v = 0`` it fires every
``⌊θ/c⌋ + 1`` steps, so its first spike comes late (latency adds up layer by layer) and its rate falls below
``c/θ``. A threshold below the layer's activation scale λ fires sooner and drops less, but clips at
``θ`` and over-counts weak inputs. Which matters more depends on the run length T: docs/conversion.md
measured that at T = 8 a threshold of 0.8 λ recovers most of what reset to zero loses on a 7-layer CNN
(97.7 % agreement with the ANN against 11.7 % at λ), while at T ≥ 16 the threshold at λ is as good as
reset by subtraction and a lower one costs up to 2 %. So the threshold is measured, not guessed: each
fraction of ``THRESHOLD_CANDIDATES`` builds the SNN, which runs ``timesteps`` steps on the first
``SEARCH_SAMPLES`` calibration samples; the fraction whose answers agree best with the ANN's (argmax of
each output) wins, and among fractions within ``SEARCH_TIE`` of the best the largest (the least change).
While the best is the lowest fraction tried, the search goes on down ``LOWER_CANDIDATES`` until the best is
bracketed: a deep network loses more to reset to zero, layer after layer (a 2-block binary ViT at T = 32
agrees with its ANN on none of 4 samples at 0.8 λ, on 3 at 0.7 and on all at 0.6).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spikec.coding import Progress, simulate
from spikec.interp import evaluate
from spikec.ir.graph import Graph

THRESHOLD_CANDIDATES = (1.0, 0.9, 0.8, 0.7)  # fractions of each layer's activation scale λ
LOWER_CANDIDATES = (0.6, 0.5, 0.4, 0.3)  # tried in turn while the best so far is the lowest fraction tried
SEARCH_SAMPLES = 64  # calibration samples each candidate runs on
SEARCH_TIE = 0.01  # agreement within this of the best counts as equal


def _answers(outputs: dict[str, np.ndarray], lead: int) -> list[np.ndarray]:
    """Per output (sorted by name), the argmax of each sample's values: (*lead,) each."""
    return [outputs[k].reshape(*outputs[k].shape[:lead], -1).argmax(-1) for k in sorted(outputs)]


def search_threshold(
    balanced: Graph,
    x: np.ndarray,
    build: Callable[[float], Graph],
    *,
    timesteps: int,
    encoding: str,
    decoding: str,
    scale: float,
    seed: int,
    backend: str,
    batch_size: int,
    progress: Progress | None = None,
) -> tuple[float, dict[str, float]]:
    """The threshold fraction whose SNN (``build(fraction)``) agrees best with the balanced ANN on ``x``'s head after
    ``timesteps`` steps, and every candidate's agreement (fraction of samples and outputs with the ANN's argmax)."""
    head = x[:SEARCH_SAMPLES]
    wanted = _answers(evaluate(balanced, head, backend=backend).outputs, 1)
    agreement: dict[str, float] = {}

    def best_at_the_lowest() -> bool:  # the best is not bracketed yet (and could be better)
        best = max(agreement.values())
        return agreement[min(agreement, key=float)] >= best and best < 1.0

    for fraction in (*THRESHOLD_CANDIDATES, *LOWER_CANDIDATES):
        if fraction in LOWER_CANDIDATES and not best_at_the_lowest():
            break
        sim = simulate(
            build(fraction), head, timesteps=timesteps, encoding=encoding, decoding=decoding, scale=scale,
            seed=seed, backend=backend, batch_size=batch_size, progress=progress, stage=f"threshold {fraction:g}",
        )  # fmt: skip
        last = {k: v[-1] for k, v in sim.answers.items()}
        got = _answers(last, 1)
        agreement[f"{fraction:g}"] = float(np.mean([np.mean(g == w) for g, w in zip(got, wanted, strict=True)]))
    best = max(agreement.values())
    chosen = max(float(f) for f, a in agreement.items() if a >= best - SEARCH_TIE)
    return chosen, agreement
