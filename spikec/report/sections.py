"""The sections of report.json that ``spikec.report`` adds to what the compile did: ``metrics``, ``energy`` and
(for targets that place neurons on cores) ``placement``.

The metrics are measured on the SNN the method made (before the target's pipeline: the float model the target
then quantizes), run in the reference interpreter on the first ``METRIC_SAMPLES`` calibration samples
(``compile --metric-samples N``), fed as the conversion feeds them (``encoding`` and input scale), for ``T`` steps;
without calibration samples, on ``compile --inputs``; without either (or with N = 0), only the static metrics.
The run costs about one more simulation of those samples (a ResNet-18 at 224x224, 4 samples x 32 steps: 58 s
against 44 s for the plain run, measured under load); reusing the conversion's own simulation is left to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from spikec.coding import encode
from spikec.coremap import CoreMap
from spikec.ir.graph import Graph
from spikec.report.energy import estimate
from spikec.report.metrics import measure

METRIC_SAMPLES = 4  # calibration samples the metrics are measured on (the first ones)


def metric_trains(
    graph: Graph,
    samples: np.ndarray | None,
    feeds: Mapping[str, np.ndarray],
    *,
    timesteps: int,
    encoding: str | None,
    input_scale: float | None,
    seed: int = 0,
    limit: int = METRIC_SAMPLES,
) -> dict[str, np.ndarray] | None:
    """The input trains (T, N, *shape) the metrics run on: the first ``limit`` calibration samples encoded as the
    conversion does (an ANN: one step), else the sample inputs ``feeds``, else (or with ``limit`` 0) None."""
    if limit <= 0:
        return None
    if samples is not None:
        x = samples[:limit]
        if not graph.is_spiking:
            return {graph.inputs[0]: x[None]}
        scale = input_scale or float(np.max(np.abs(x))) or 1.0
        train = encode(x, max(1, timesteps), encoding or "direct", scale=scale, seed=seed)
        return {graph.inputs[0]: np.asarray(train)}
    if feeds:
        return {name: a[:, :limit] for name, a in feeds.items()}
    return None


def placement(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """Cores per layer from the core map a pass of the target's pipeline left (``partition``), if any."""
    core_map = next(
        (getattr(r, "core_map", None) for r in results.values() if isinstance(getattr(r, "core_map", None), CoreMap)),
        None,
    )
    if core_map is None:
        return None
    return {
        "cores_used": core_map.cores_used,
        "layers": [
            {"name": name, "cores": len({p.core for p in places}), "neurons": sum(p.neurons for p in places)}
            for name, places in core_map.layers.items()
        ],
    }


def drift(conversion: Any, samples: np.ndarray, counts: Mapping[str, np.ndarray], steps: int) -> list[dict[str, Any]]:
    """Each converted layer's drift on the metric samples, as ``spikec eval`` measures it (``spikec.compare``): the
    correlation of the balanced ANN's activation with the SNN's spike count / T, and the relative error."""
    from spikec.compare import _Moments
    from spikec.interp import evaluate

    layers = [layer for layer in conversion.layers if layer.name in counts]
    traces = evaluate(conversion.ann, samples, trace=[layer.name for layer in layers]).traces
    found = []
    for layer in layers:
        moments = _Moments()
        moments.add(np.asarray(traces[layer.name], np.float64), counts[layer.name] / steps)
        d = moments.summary(layer.name, layer.origin, layer.threshold, steps)
        found.append({"name": d.name, "origin": d.origin, "drift": d.drift, "error": d.error, "rate": d.rate})
    return found


def report_sections(
    graph: Graph,
    trains: Mapping[str, np.ndarray] | None,
    target: Any,
    results: Mapping[str, Any],
    *,
    conversion: Any = None,
    samples: np.ndarray | None = None,
) -> dict[str, Any]:
    """report.json's ``metrics``, ``energy``, (when the target placed the layers) ``placement`` and (for a
    conversion that keeps its balanced ANN, measured on calibration ``samples``) ``drift``."""
    layers = getattr(conversion, "layers", None)
    balanced = isinstance(getattr(conversion, "ann", None), Graph) and bool(layers) and samples is not None
    record = [layer.name for layer in layers] if balanced and layers else []
    measured = measure(graph, trains, record=record)
    metrics = measured.to_json()
    sections: dict[str, Any] = {"metrics": metrics, "energy": estimate(metrics, target)}
    placed = placement(results)
    if placed is not None:
        sections["placement"] = placed
    if balanced and measured.counts and samples is not None:
        sections["drift"] = drift(conversion, samples[: measured.samples], measured.counts, measured.timesteps)
    return sections
