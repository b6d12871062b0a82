"""Accuracy of the float ANN, its QANN and the exact SNN per number of steps (``spikec eval --method exact``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from spikec.coding import Progress
from spikec.compare import check_labels, class_count, class_scores
from spikec.convert_exact import ExactReport
from spikec.interp import evaluate, make_backend
from spikec.interp.interpreter import Interpreter
from spikec.ir.graph import Graph

RTOL = 1e-9  # the SNN "equals" the QANN when its summed output is within this (relative to the largest value)


@dataclasses.dataclass
class ExactComparison:
    samples: int
    timesteps: int
    ann_accuracy: float
    qann_accuracy: float
    snn_by_timesteps: dict[int, float]  # accuracy of the SNN's summed output after t steps
    equal_by_timesteps: dict[int, float]  # fraction of samples whose summed output equals the QANN's
    settle_bound: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "ann": {"accuracy": self.ann_accuracy},
            "qann": {"accuracy": self.qann_accuracy, "loss_pp": 100 * (self.ann_accuracy - self.qann_accuracy)},
            "snn": {
                "timesteps": self.timesteps,
                "accuracy": self.snn_by_timesteps[self.timesteps],
                "by_timesteps": self.snn_by_timesteps,
                "equal_to_qann_by_timesteps": self.equal_by_timesteps,
                "settle_bound": self.settle_bound,
            },
            "loss_pp": 100 * (self.ann_accuracy - self.snn_by_timesteps[self.timesteps]),
        }


def checkpoints(timesteps: int) -> list[int]:
    return sorted({t for t in (2**k for k in range(timesteps.bit_length())) if t <= timesteps} | {timesteps})


def compare_exact(
    ann: Graph,
    snn: Graph,
    report: ExactReport,
    x: np.ndarray,
    labels: np.ndarray,
    *,
    timesteps: int,
    backend: str = "numpy",
    device: str | None = None,
    batch_size: int = 128,
    progress: Progress | None = None,
    at: Sequence[int] | None = None,
) -> ExactComparison:
    """Accuracy of ``ann``, of ``report.qann`` and of ``snn`` (outputs summed over steps) on ``x`` (N, *shape),
    after each number of steps in ``at`` (default: powers of two up to ``timesteps``, and ``timesteps``)."""
    y = check_labels(labels, x.shape[0], classes=class_count(ann))
    xp = make_backend(backend, device=device)
    (input_name,) = snn.inputs
    marks = checkpoints(timesteps) if at is None else sorted({t for t in at if 1 <= t <= timesteps} | {timesteps})
    ann_ok = qann_ok = 0
    # after settle_bound steps every increment is exactly 0 (convert_exact.settle_bound): run no further
    steps = min(timesteps, report.settle_bound)
    snn_ok = np.zeros(steps)
    equal = np.zeros(steps)
    for start in range(0, x.shape[0], batch_size):
        batch, truth = x[start : start + batch_size], y[start : start + batch_size]
        ann_ok += int(np.sum(class_scores(evaluate(ann, batch, backend=xp).outputs, 1).argmax(-1) == truth))
        q = class_scores(evaluate(report.qann, batch, backend=xp).outputs, 1)
        qann_ok += int(np.sum(q.argmax(-1) == truth))
        train = np.broadcast_to(batch, (steps, *batch.shape))
        outputs, _ = Interpreter(snn, xp).run({input_name: np.asarray(train)}, steps)
        summed = np.cumsum(class_scores(outputs, 2), axis=0)  # (T, B, classes)
        snn_ok += np.sum(summed.argmax(-1) == truth, axis=1)
        scale = np.max(np.abs(q), axis=tuple(range(1, q.ndim)), keepdims=True) + 1e-300
        close = np.abs(summed - q).reshape(steps, len(batch), -1).max(-1) <= RTOL * scale.reshape(1, -1)
        equal += close.sum(axis=1)
        if progress is not None:
            progress("evaluation", min(start + batch_size, x.shape[0]), x.shape[0])
    n = x.shape[0]
    return ExactComparison(
        samples=n,
        timesteps=timesteps,
        ann_accuracy=ann_ok / n,
        qann_accuracy=qann_ok / n,
        snn_by_timesteps={t: float(snn_ok[min(t, steps) - 1] / n) for t in marks},
        equal_by_timesteps={t: float(equal[min(t, steps) - 1] / n) for t in marks},
        settle_bound=report.settle_bound,
    )
