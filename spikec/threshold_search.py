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
While the lowest fraction tried is the best — by agreement, or by the correlation of the SNN's outputs with
the ANN's (a smoother measure than the argmax on few samples) — the search goes on down ``LOWER_CANDIDATES``:
a deep network loses more to reset to zero, layer after layer. The zoo's 2-block binary ViT on 16 MNIST
digits at T = 32: agreement 0.06, 0.25, 0.19, 0.12 at 1 … 0.7 λ (0.9 would win), correlation −0.17, 0.07, 0.13,
0.27 (still rising at 0.7), and 0.56 at 0.6 λ, which wins (on 200 other digits: 54 % against 5.5 % at 0.9 λ).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from spikec.coding import Progress, simulate
from spikec.interp import evaluate
from spikec.ir.graph import Graph

THRESHOLD_CANDIDATES = (1.0, 0.9, 0.8, 0.7)  # fractions of each layer's activation scale λ
LOWER_CANDIDATES = (0.6, 0.5, 0.4, 0.3)  # tried in turn while the lowest fraction tried is the best
SEARCH_SAMPLES = 64  # calibration samples each candidate runs on
SEARCH_TIE = 0.01  # agreement within this of the best counts as equal


@dataclasses.dataclass(frozen=True)
class ThresholdSearch:
    """The chosen fraction, every candidate's agreement, and each candidate's spike rates (mean spikes per neuron
    and step of each counted layer, on the samples the search ran)."""

    chosen: float
    agreement: dict[str, float]
    rates: dict[str, dict[str, float]]


def _flat(outputs: dict[str, np.ndarray], lead: int) -> list[np.ndarray]:
    """Per output (sorted by name), each sample's values flattened: (*lead, values)."""
    return [outputs[k].reshape(*outputs[k].shape[:lead], -1) for k in sorted(outputs)]


def _correlation(got: np.ndarray, want: np.ndarray) -> float:
    """Mean over samples of the correlation of the (N, K) values ``got`` and ``want`` across K (0 where either
    is constant: one output value, a silent readout)."""
    a, b = got - got.mean(1, keepdims=True), want - want.mean(1, keepdims=True)
    norms = np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1))
    return float(np.mean(np.divide(np.sum(a * b, 1), norms, out=np.zeros(len(a)), where=norms > 0)))


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
    dtype: str = "float64",
    progress: Progress | None = None,
    count: Sequence[str] = (),
) -> ThresholdSearch:
    """The threshold fraction whose SNN (``build(fraction)``) agrees best with the balanced ANN on ``x``'s head after
    ``timesteps`` steps, every candidate's agreement (fraction of samples and outputs with the ANN's argmax), and
    the spike rates of the ``count`` layers in each candidate's run (a caller whose samples are all in the head
    needs no run of its own to report them)."""
    head = x[:SEARCH_SAMPLES]
    wanted = _flat(evaluate(balanced, head, backend=backend).outputs, 1)
    agreement: dict[str, float] = {}
    correlation: dict[str, float] = {}
    rates: dict[str, dict[str, float]] = {}

    def lowest_is_best() -> bool:  # not bracketed yet, and room to improve
        lowest = min(agreement, key=float)
        return max(agreement.values()) < 1.0 and any(
            score[lowest] >= max(score.values()) for score in (agreement, correlation)
        )

    for fraction in (*THRESHOLD_CANDIDATES, *LOWER_CANDIDATES):
        if fraction in LOWER_CANDIDATES and not lowest_is_best():
            break
        sim = simulate(
            build(fraction), head, timesteps=timesteps, encoding=encoding, decoding=decoding, scale=scale,
            seed=seed, backend=backend, dtype=dtype, batch_size=batch_size, progress=progress,
            stage=f"threshold {fraction:g}",
            count=count,
        )  # fmt: skip
        rates[f"{fraction:g}"] = {name: float(np.mean(np.abs(c))) / timesteps for name, c in sim.counts.items()}
        got = _flat({k: v[-1] for k, v in sim.answers.items()}, 1)
        pairs = list(zip(got, wanted, strict=True))
        agreement[f"{fraction:g}"] = float(np.mean([np.mean(g.argmax(-1) == w.argmax(-1)) for g, w in pairs]))
        correlation[f"{fraction:g}"] = float(np.mean([_correlation(g, w) for g, w in pairs]))
    best = max(agreement.values())
    chosen = max(float(f) for f, a in agreement.items() if a >= best - SEARCH_TIE)
    return ThresholdSearch(chosen, agreement, rates)
