"""Activation statistics of an ANN on a calibration set (not a pass): what ``threshold-balance`` needs.

The ANN is evaluated in batches by the reference interpreter, tracing only the nodes asked for.
For each node the positive values are kept, per layer or per channel (axis 0 of the per-sample
shape), and reduced to their maximum or a percentile; nodes named in ``signed`` (graph outputs)
give ``|y|`` and one scale for the whole node. Large
layers are subsampled (at most ``MAX_VALUES`` values per layer, uniformly, seeded) so memory stays
bounded; percentiles of 2·10⁶ samples are exact to well below the spread between batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from spikec.errors import PassError
from spikec.interp import evaluate
from spikec.ir.graph import Graph

Progress = Callable[[int, int], None]
MAX_VALUES = 2_000_000
METHODS = ("max", "percentile")
GRANULARITIES = ("layer", "channel")


@dataclasses.dataclass
class _Collector:
    """Positive values (or running maxima) of one node, per channel when asked."""

    channels: int
    keep: int  # how many values to keep per batch and channel (subsampling)
    values: list[list[np.ndarray]] = dataclasses.field(default_factory=list)
    maxima: np.ndarray | None = None

    def add(self, a: np.ndarray, rng: np.random.Generator) -> None:
        per_channel = np.moveaxis(a, 1, 0).reshape(self.channels, -1) if self.channels > 1 else a.reshape(1, -1)
        top = np.max(per_channel, axis=1, initial=0.0)
        self.maxima = top if self.maxima is None else np.maximum(self.maxima, top)
        rows = []
        for row in per_channel:
            positive = row[row > 0]
            if positive.size > self.keep:
                positive = rng.choice(positive, self.keep, replace=False)
            rows.append(positive.astype(np.float32))
        self.values.append(rows)

    def reduce(self, method: str, percentile: float) -> tuple[np.ndarray, float]:
        """One scale per channel (NaN where the channel was never positive) and one for the whole node."""
        assert self.maxima is not None
        per_channel = np.array(
            [_scale([b[c] for b in self.values], self.maxima[c], method, percentile) for c in range(self.channels)]
        )
        whole = _scale([row for b in self.values for row in b], float(self.maxima.max()), method, percentile)
        return per_channel, whole


def _scale(values: list[np.ndarray], maximum: float, method: str, percentile: float) -> float:
    if method == "max":
        return float(maximum) if maximum > 0 else float("nan")
    joined = np.concatenate(values) if values else np.empty(0)
    return float(np.percentile(joined.astype(np.float64), percentile)) if joined.size else float("nan")


def check_options(method: str, percentile: float, granularity: str) -> None:
    if method not in METHODS:
        raise PassError(f"method={method!r} is not one of {list(METHODS)}")
    if granularity not in GRANULARITIES:
        raise PassError(f"granularity={granularity!r} is not one of {list(GRANULARITIES)}")
    if not 0.0 < percentile <= 100.0:
        raise PassError(f"percentile={percentile} must be in (0, 100]")


def activation_scales(
    graph: Graph,
    calib: np.ndarray,
    names: Sequence[str],
    *,
    method: str = "percentile",
    percentile: float = 99.9,
    granularity: str = "layer",
    signed: Sequence[str] = (),
    batch_size: int = 256,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Scale λ of each node in ``names``: a 0-d array (layer) or one value per channel (channel).

    A channel never active on the calibration set takes its layer's scale; a layer never active
    takes 1.0 (its neurons will simply stay silent).
    """
    check_options(method, percentile, granularity)
    n = calib.shape[0]
    if n == 0:
        raise PassError("the calibration set is empty")
    if not names:
        return {}
    shapes = {name: graph.types[name] for name in names}
    by_channel = granularity == "channel"
    channels = {
        name: (shape[0] if by_channel and shape and name not in signed else 1) for name, shape in shapes.items()
    }
    collectors = {
        name: _Collector(channels[name], max(1, MAX_VALUES * batch_size // (n * channels[name] or 1))) for name in names
    }
    rng = np.random.default_rng(0)
    for start in range(0, n, batch_size):
        batch = calib[start : start + batch_size]
        traced = evaluate(graph, batch, trace=list(names)).traces
        for name in names:
            a = traced[name]
            collectors[name].add(np.abs(a) if name in signed else a, rng)
        if progress is not None:
            progress(min(start + batch_size, n), n)
    scales: dict[str, np.ndarray] = {}
    for name, collector in collectors.items():
        per_channel, whole = collector.reduce(method, percentile)
        whole = whole if np.isfinite(whole) and whole > 0 else 1.0
        if channels[name] > 1:
            scales[name] = np.where(np.isfinite(per_channel) & (per_channel > 0), per_channel, whole)
        else:
            scales[name] = np.asarray(whole)
    return scales
