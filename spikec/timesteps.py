"""Time-step advice: how many steps a rate-coded SNN needs, from its layers' effective dimension (docs/timesteps.md).

For each spiking layer of a converted ANN (``spikec.convert``), the layer's calibration activations give its
**effective dimension**, the participation ratio of their covariance spectrum λ_1 ≥ … ≥ λ_D ≥ 0::

    d_eff = (Σ_i λ_i)² / Σ_i λ_i² = tr(Σ)² / tr(Σ²)

over the layer's features (axis 0 of the per-sample shape: a conv layer's channels, with every sample and
position a row; a dense layer's units, with every sample a row). It is 1 for activations along one direction,
exactly ``k`` for ``k`` orthogonal directions of equal variance, and at most the number of features.

The **rule** (Guo, Wu, Yiu, "Closing the Theory-Practice Gap in Spiking Transformers via Effective Dimension",
arXiv:2604.15769, 2026; C = 2.3, 95 % CI [1.9, 2.7]) is taken as::

    T*(d_eff) = C · log10 d_eff,     T = max(1, ⌊T* + ½⌋)

the form that reproduces the paper's published figures (d_eff = 47–89 on CIFAR/ImageNet → T = 4); the paper's
own equation was not in the text we could read, so this form is an assumption (docs/timesteps.md). The model's
T is the largest layer's: every layer runs for the same T.

Beside it, the **rate-coding bound** at that T: an integrate-and-fire neuron with reset by subtraction, threshold
θ (the ANN value a spike per step stands for) and initial membrane ``f·θ`` fires N_T times in T steps with
``N_T·θ = Σ_t c_t + f·θ − v_T`` and ``v_T ∈ [0, θ]`` (while its mean input stays in [0, θ]), so its rate
``N_T·θ/T`` is within::

    ε(T) = θ · max(f, 1 − f) / T

of the mean input current it received: θ/(2T) with spikec's default f = ½, θ/T with f = 0 (the quantisation step
of a count code over T steps). This is the error a layer adds on its own; inputs above θ (the calibration
percentile) saturate and are not covered.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from spikec.errors import InputError
from spikec.interp import evaluate
from spikec.ir.graph import Graph

RULE_C = 2.3  # arXiv:2604.15769's calibrated constant
RULE_C_INTERVAL = (1.9, 2.7)  # its 95 % confidence interval
RULE_SOURCE = "arXiv:2604.15769 (Guo, Wu, Yiu 2026)"
RULE_ASSUMPTION = (
    "the rule's form is assumed: the paper's text we could read states C, its interval and T = 4 for d_eff 47-89, "
    "not the rule's equation; C * log10(d_eff) reproduces those figures (docs/timesteps.md)"
)
MAX_ROWS = 4096  # rows (sample positions) kept per layer: d_eff of up to a few thousand features, seconds each


def feature_rows(values: np.ndarray) -> np.ndarray:
    """Activations (N, F, *rest) as rows (N·∏rest, F): features on axis 1 (axis 0 of the per-sample shape), every
    sample and position one row; (N,) as (N, 1)."""
    a = np.asarray(values, np.float64)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def effective_dimension(rows: np.ndarray) -> float:
    """Participation ratio ``tr(Σ)² / tr(Σ²)`` of the covariance Σ of ``rows`` (M, D) (one observation a row);
    0.0 when every row is the same (no variance). Computed on the smaller of Σ (D×D) and the Gram matrix (M×M),
    which share their non-zero eigenvalues."""
    x = np.asarray(rows, np.float64)
    if x.ndim != 2:
        raise InputError(f"effective_dimension takes rows (M, D), got shape {x.shape}")
    if x.shape[0] < 2:
        return 0.0
    x = x - x.mean(axis=0)
    small = x.T @ x if x.shape[1] <= x.shape[0] else x @ x.T  # the common factor 1/(M-1) cancels
    trace = float(np.trace(small))
    if not trace > 0:
        return 0.0
    return trace * trace / float(np.sum(small * small))  # tr(S²) = ‖S‖_F² for symmetric S


def rule_timesteps(d_eff: float, c: float = RULE_C) -> float:
    """``T* = c · log10 d_eff`` (0 for ``d_eff <= 1``: one direction or none needs no more than one step)."""
    return c * math.log10(d_eff) if d_eff > 1 else 0.0


def recommended_timesteps(d_eff: float, c: float = RULE_C) -> int:
    """``T = max(1, ⌊T* + ½⌋)``: the rule's T* to the nearest step, at least one."""
    return max(1, math.floor(rule_timesteps(d_eff, c) + 0.5))


def rate_coding_bound(threshold: float, timesteps: int, init: float = 0.5) -> float:
    """``θ · max(f, 1 − f) / T``: how far an IF neuron's rate·θ (reset by subtraction, membrane starting at
    ``f·θ``) can be from the mean input current it received over ``T`` steps (module docstring)."""
    if timesteps < 1:
        raise InputError(f"timesteps must be >= 1, got {timesteps}")
    return threshold * max(init, 1.0 - init) / timesteps


class SpikingLayer(Protocol):
    """What advice needs of a converted layer (``spikec.convert.LayerReport`` has it)."""

    name: str
    origin: str
    shape: list[int]
    threshold: float | list[float]  # the ANN value one spike per step stands for (per channel: a list)


@dataclasses.dataclass(frozen=True)
class LayerAdvice:
    """One spiking layer: its effective dimension, the rule's T, and the rate-coding bound at that T."""

    name: str
    origin: str
    shape: list[int]
    features: int  # D: the channels (or units) d_eff is computed over
    rows: int  # observations used (samples × positions, subsampled to MAX_ROWS)
    effective_dimension: float
    rule_timesteps: float  # T* = C log10 d_eff, unrounded
    timesteps: int  # T: T* to the nearest step, >= 1
    timesteps_interval: tuple[int, int]  # T at the ends of C's 95 % confidence interval
    threshold: float  # θ in the ANN's units (the largest channel's with per-channel scales)
    bound: float  # θ·max(f, 1-f)/T in the ANN's units
    relative_bound: float  # the same as a fraction of θ

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["timesteps_interval"] = list(self.timesteps_interval)
        return out


@dataclasses.dataclass(frozen=True)
class Advice:
    """Every spiking layer's advice and the model's T (the largest layer's)."""

    layers: list[LayerAdvice]
    timesteps: int
    limiting_layer: str  # the layer whose T is the model's
    c: float
    c_interval: tuple[float, float]
    init: float  # f: the initial membrane as a fraction of θ the bound assumes
    calibration_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": {"T": "max(1, round(C * log10(d_eff)))", "C": self.c, "C_interval": list(self.c_interval),
                     "source": RULE_SOURCE, "assumption": RULE_ASSUMPTION},
            "bound": {"epsilon": "threshold * max(init, 1 - init) / T", "init": self.init},
            "timesteps": self.timesteps,
            "limiting_layer": self.limiting_layer,
            "layers": [layer.to_dict() for layer in self.layers],
        }  # fmt: skip


def layer_rows(
    graph: Graph, samples: np.ndarray, names: Sequence[str], *, batch_size: int = 128, max_rows: int = MAX_ROWS
) -> dict[str, np.ndarray]:
    """Rows of each node in ``names`` (``feature_rows``), evaluated as an ANN on ``samples`` (N, *shape) in batches:
    about ``max_rows`` of them, ⌈max_rows·b/N⌉ from each batch of b samples (uniform, seeded)."""
    n = samples.shape[0]
    rng = np.random.default_rng(0)
    kept: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, n, batch_size):
        batch = samples[start : start + batch_size]
        traces = evaluate(graph, batch, trace=list(names)).traces
        for name in names:
            rows = feature_rows(traces[name])
            keep = max(1, math.ceil(max_rows * len(batch) / n))
            if rows.shape[0] > keep:
                rows = rows[np.sort(rng.choice(rows.shape[0], keep, replace=False))]
            kept[name].append(rows)
    return {name: np.concatenate(parts) for name, parts in kept.items()}


def advise(
    balanced: Graph,
    layers: Sequence[SpikingLayer],
    calib: np.ndarray,
    *,
    init: float = 0.5,
    c: float = RULE_C,
    batch_size: int = 128,
    max_rows: int = MAX_ROWS,
) -> Advice:
    """Advice for the spiking ``layers`` (``spikec.convert.LayerReport``) of a conversion whose balanced ANN is
    ``balanced``, from its activations on ``calib`` (N, *shape).

    The balanced ANN's activation of a layer is what its neurons' rates code (a/θ); with one scale per layer
    its d_eff equals that of the ANN's own activation (the participation ratio ignores a common scale).
    """
    if not layers:
        raise InputError("timestep advice needs at least one spiking layer")
    rows = layer_rows(balanced, calib, [layer.name for layer in layers], batch_size=batch_size, max_rows=max_rows)
    advice = []
    for layer in layers:
        d_eff = effective_dimension(rows[layer.name])
        t = recommended_timesteps(d_eff, c)
        threshold = float(np.max(layer.threshold))
        low, high = (recommended_timesteps(d_eff, bound) for bound in RULE_C_INTERVAL)
        advice.append(
            LayerAdvice(
                name=layer.name, origin=layer.origin, shape=list(layer.shape), features=rows[layer.name].shape[1],
                rows=rows[layer.name].shape[0], effective_dimension=d_eff, rule_timesteps=rule_timesteps(d_eff, c),
                timesteps=t, timesteps_interval=(low, high), threshold=threshold,
                bound=rate_coding_bound(threshold, t, init), relative_bound=rate_coding_bound(1.0, t, init),
            )
        )  # fmt: skip
    limiting = max(advice, key=lambda a: a.timesteps)
    return Advice(advice, limiting.timesteps, limiting.name, c, RULE_C_INTERVAL, init, int(calib.shape[0]))


def default_max_timesteps(recommended: int) -> int:
    """The T an accuracy measurement runs to: the power of two at or above twice the recommendation, at least 8."""
    return max(8, 1 << (2 * recommended - 1).bit_length())


def measured_timesteps(ann_accuracy: float, by_timesteps: dict[int, float], tolerance_pp: float) -> int | None:
    """The smallest measured T whose SNN accuracy is within ``tolerance_pp`` percentage points of the ANN's
    (None when none is)."""
    within = [t for t, a in sorted(by_timesteps.items()) if 100 * (ann_accuracy - a) <= tolerance_pp]
    return within[0] if within else None
