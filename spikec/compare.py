"""ANN vs converted SNN on labelled data: accuracy of both, and per-layer drift (docs/conversion.md).

Drift says where a conversion loses accuracy: for every spiking layer, the Pearson correlation of
the ANN's activation (in the balanced ANN, where a layer's scale is 1) with the SNN's rate times its
threshold (also 1 there) over all neurons and samples; 1.0 is a perfect match. ``error`` is the
relative mean absolute difference Σ|a − r| / Σ|a|.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from spikec.coding import Progress, simulate
from spikec.convert import ConversionReport
from spikec.errors import InputError
from spikec.interp import evaluate
from spikec.ir.graph import Graph


@dataclasses.dataclass
class LayerDrift:
    name: str
    origin: str
    drift: float | None  # correlation of ANN activation with SNN rate × threshold (None: constant layer)
    error: float | None  # Σ|ann − snn| / Σ|ann|
    rate: float  # mean spikes per neuron per step
    threshold: float | list[float]  # ANN value of one spike per step


@dataclasses.dataclass
class Comparison:
    samples: int
    timesteps: int
    ann_accuracy: float
    snn_accuracy: float
    by_timesteps: dict[int, float]  # SNN accuracy after t steps, t = 1, 2, 4, ..., T
    layers: list[LayerDrift]

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "ann": {"accuracy": self.ann_accuracy},
            "snn": {
                "accuracy": self.snn_accuracy,
                "timesteps": self.timesteps,
                "by_timesteps": {str(t): a for t, a in self.by_timesteps.items()},
            },
            "loss_pp": round(100 * (self.ann_accuracy - self.snn_accuracy), 4),
            "layers": [dataclasses.asdict(layer) for layer in self.layers],
        }


class _Moments:
    """Running sums for the correlation and relative error of two equally shaped streams."""

    def __init__(self) -> None:
        self.s = np.zeros(7)  # n, Σa, Σr, Σa², Σr², Σar, Σ|a−r|
        self.abs_a = 0.0

    def add(self, a: np.ndarray, r: np.ndarray) -> None:
        a, r = a.ravel(), r.ravel()
        self.s += [a.size, a.sum(), r.sum(), a @ a, r @ r, a @ r, np.abs(a - r).sum()]
        self.abs_a += float(np.abs(a).sum())

    def correlation(self) -> float | None:
        n, sa, sr, saa, srr, sar, _ = self.s
        var = (n * saa - sa * sa) * (n * srr - sr * sr)
        return float((n * sar - sa * sr) / np.sqrt(var)) if var > 0 else None

    def error(self) -> float | None:
        return float(self.s[6] / self.abs_a) if self.abs_a > 0 else None

    def summary(self, name: str, origin: str, threshold: float | list[float], timesteps: int) -> LayerDrift:
        rate = float(self.s[2] / self.s[0]) if self.s[0] else 0.0  # mean of r = count/T: spikes per step
        return LayerDrift(name, origin, self.correlation(), self.error(), rate, threshold)


def check_labels(labels: Any, n: int, what: str = "labels", classes: int | None = None) -> np.ndarray:
    """``labels`` as (n,) int64 class indices; ``InputError`` for another shape, non-integers, or (given the
    model's ``classes``) an index outside ``0 .. classes - 1``."""
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{what} have shape {y.shape}; give class indices of shape ({n},)")
    if y.shape[0] != n:
        raise InputError(f"{what} hold {y.shape[0]} entries but the data holds {n} samples; they must match")
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.rint(y))):
        raise InputError(f"{what} must be integer class indices (got dtype {y.dtype})")
    if classes is not None and y.size and (y.min() < 0 or y.max() >= classes):
        bad = int(np.flatnonzero((y < 0) | (y >= classes))[0])
        raise InputError(
            f"{what}: label {y[bad].item()!r} (entry {bad}) is not a class of the model, whose output has "
            f"{classes} classes (0 to {classes - 1}); give class indices in that range"
        )
    return y.astype(np.int64)


def compare(
    ann: Graph,
    snn: Graph,
    report: ConversionReport,
    x: np.ndarray,
    labels: np.ndarray,
    *,
    backend: str = "numpy",
    batch_size: int = 128,
    progress: Progress | None = None,
    at: Iterable[int] = (),
    workers: int | None = None,
) -> Comparison:
    """Accuracy of ``ann`` and ``snn`` on samples ``x`` (N, *shape), and drift of each spiking layer; the SNN's
    accuracy after 1, 2, 4, … and T steps, and after each step count in ``at`` (up to T).

    Batches run on ``workers`` threads (default ``default_workers``); their results are summed in batch order, so
    every number is the same for any count of workers."""
    y = check_labels(labels, x.shape[0], classes=class_count(ann))
    timesteps = report.timesteps
    names = [layer.name for layer in report.layers]
    ann_correct = 0
    snn_correct = np.zeros(timesteps)
    moments = {name: _Moments() for name in names}

    def one_batch(start: int) -> _BatchResult:
        batch, truth = x[start : start + batch_size], y[start : start + batch_size]
        ann_right = int(np.sum(class_scores(evaluate(ann, batch, backend=backend).outputs, 1).argmax(-1) == truth))
        balanced = evaluate(report.ann, batch, trace=names, backend=backend).traces
        sim = simulate(
            snn, batch, timesteps=timesteps, encoding=report.encoding, decoding=report.decoding,
            scale=report.input_scale, seed=report.seed + start, count=names, backend=backend, batch_size=len(batch),
        )  # fmt: skip
        snn_right = np.sum(class_scores(sim.answers, 2).argmax(-1) == truth, axis=1)
        return _BatchResult(ann_right, snn_right, {n: balanced[n] for n in names}, sim.counts)

    starts = range(0, x.shape[0], batch_size)
    threads = max(1, min(default_workers(backend) if workers is None else workers, len(starts)))
    with ThreadPoolExecutor(threads) as pool:
        results = map(one_batch, starts) if threads == 1 else _in_order(pool, one_batch, starts, threads)
        for start, result in zip(starts, results, strict=True):
            ann_correct += result.ann_correct
            snn_correct += result.snn_correct
            for name in names:
                moments[name].add(result.activations[name], result.counts[name] / timesteps)
            if progress is not None:
                progress("evaluation", min(start + batch_size, x.shape[0]), x.shape[0])
    n = x.shape[0]
    powers = {t for t in (2**k for k in range(timesteps.bit_length())) if t <= timesteps}
    checkpoints = sorted(powers | {timesteps} | {t for t in at if 1 <= t <= timesteps})
    layers = [
        moments[layer.name].summary(layer.name, layer.origin, layer.threshold, timesteps) for layer in report.layers
    ]
    return Comparison(
        samples=n,
        timesteps=timesteps,
        ann_accuracy=ann_correct / n,
        snn_accuracy=float(snn_correct[-1] / n),
        by_timesteps={t: float(snn_correct[t - 1] / n) for t in checkpoints},
        layers=layers,
    )


MAX_WORKERS = 4  # each holds one batch; on 2 cores 2 threads ran mnist-conv's eval 15-20 % faster than one


def default_workers(backend: str) -> int:
    """Threads for ``compare``'s batches: the cores this process may use (at most ``MAX_WORKERS``), since the
    neurons' scans run numpy on host memory one operation per core with either backend; one on a GPU, whose
    operations queue on one device."""
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


@dataclasses.dataclass
class _BatchResult:
    ann_correct: int
    snn_correct: np.ndarray  # (T,) right answers after each step
    activations: dict[str, np.ndarray]  # the balanced ANN's, per spiking layer
    counts: dict[str, np.ndarray]  # the SNN's spike counts, per spiking layer


def _in_order(pool: ThreadPoolExecutor, fn: Any, items: Sequence[int], ahead: int) -> Iterator[Any]:
    """``fn`` of each item on ``pool``, yielded in order, with at most ``ahead`` items submitted but not yet yielded
    (each holds a batch's arrays)."""
    pending: collections.deque[Future[Any]] = collections.deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def class_count(graph: Graph) -> int:
    """Classes of a classifier's one output: per-sample shape (C,), or C with axes of 1 ((C, 1, 1), (1, C)).

    An output with several axes longer than 1 (tokens × classes, a map) has no one class axis: ``InputError``.
    """
    if len(graph.outputs) != 1:
        raise InputError(f"accuracy needs a model with one output; this one has {sorted(graph.outputs)}")
    (name,) = graph.outputs
    shape = graph.types[name]
    if sum(d > 1 for d in shape) > 1:
        raise InputError(
            f"output '{name}' has per-sample shape {tuple(shape)}: accuracy needs one class axis (e.g. (C,) or "
            f"(C, 1, 1)); end the model with the class scores (a Flatten, or a pooling over the other axes)"
        )
    return int(np.prod(shape, dtype=np.int64))


def class_scores(outputs: dict[str, np.ndarray], lead: int) -> np.ndarray:
    """The one output (*lead, *shape) as class scores (*lead, C); ``shape`` as ``class_count`` accepts it."""
    if len(outputs) != 1:
        raise InputError(f"accuracy needs a model with one output; this one has {sorted(outputs)}")
    values = next(iter(outputs.values()))
    return values.reshape(*values.shape[:lead], -1)
