"""ANN → SNN conversion: a fixed pipeline of named passes (spikec.pipeline) plus a report.

``convert(graph, calib, timesteps=T)`` runs, through one ``PassManager``::

    inline-subgraphs, fold-batchnorm, fuse, avgpool-to-sumpool, fuse              (exact)
    threshold-balance{calib, method, percentile, granularity}                     (exact ANN)
    relu-to-if, rate-maxpool, init-membrane, decode-output, encode-input, fuse    (rate code)

and returns the SNN and a ``ConversionReport``: per spiking layer its activation scale λ and the
threshold it got (in the ANN's units: the value one spike per step stands for), the spike rate on
the calibration set, and every pass with its time. docs/conversion.md describes each step.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from spikec.coding import Progress, as_samples, check_coding, simulate
from spikec.errors import SpikecError
from spikec.ir.graph import Graph
from spikec.pipeline import PassManager, PassResult, PassStep

EXACT_PREPARATION = ("inline-subgraphs", "fold-batchnorm", "fuse", "avgpool-to-sumpool", "fuse")
# How MaxPool is lowered: steps before balancing, steps after relu-to-if (docs/conversion.md).
MAXPOOL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rate": ((), ("rate-maxpool",)),  # max of accumulated counts: exact in count (default)
    "current": (("maxpool-before-relu",), ()),  # pool the input currents of the neurons
    "spikes": ((), ()),  # max-pool the spikes as they come
}


def _number(value: Any) -> float | list[float]:
    arr = np.asarray(value, np.float64)
    return float(arr) if arr.size == 1 else [float(v) for v in arr.ravel()]


@dataclasses.dataclass
class LayerReport:
    """One spiking layer (named after the ReLU it replaced) or, for a spiking readout, one output."""

    name: str
    origin: str
    shape: list[int]
    activation_scale: float | list[float]  # λ on the calibration set (per channel with granularity=channel)
    threshold: float | list[float]  # the ANN value one spike per step stands for (≥ λ when shared)
    shared_with: list[str]
    spike_rate: float | None = None  # mean spikes per neuron per step on the calibration set

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ConversionReport:
    timesteps: int
    method: str
    percentile: float
    granularity: str
    encoding: str
    decoding: str
    init: float
    maxpool: str
    input_scale: float  # the input value one spike stands for (poisson encoding)
    seed: int
    calibration_samples: int
    layers: list[LayerReport]
    outputs: list[LayerReport]
    passes: list[dict[str, Any]]
    ann: Graph = dataclasses.field(repr=False)  # the balanced ANN (equal to the input ANN up to rounding)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "ann"}
        out["layers"] = [layer.to_dict() for layer in self.layers]
        out["outputs"] = [layer.to_dict() for layer in self.outputs]
        return out


def conversion_steps(
    calib: np.ndarray,
    *,
    method: str,
    percentile: float,
    granularity: str,
    encoding: str,
    decoding: str,
    init: float,
    input_scale: float,
    maxpool: str,
    batch_size: int,
    progress: Progress | None,
) -> list[PassStep]:
    """The pass pipeline of ``convert`` (names and options), e.g. to print or to run piecewise."""

    def calibration_progress(done: int, total: int) -> None:
        if progress is not None:
            progress("calibration", done, total)

    balance = {
        "calib": calib,
        "method": method,
        "percentile": percentile,
        "granularity": granularity,
        "outputs": decoding == "spikes",
        "batch_size": batch_size,
        "progress": calibration_progress,
    }
    before, after = MAXPOOL[maxpool]
    return [
        *EXACT_PREPARATION,
        *before,
        ("threshold-balance", balance),
        "relu-to-if{threshold=1.0,reset=subtract}",
        *after,
        f"init-membrane{{fraction={init!r}}}",
        f"decode-output{{mode={decoding}}}",
        f"encode-input{{mode={encoding},scale={input_scale!r}}}",
        "fuse",
    ]


def convert(
    graph: Graph,
    calib: np.ndarray,
    *,
    timesteps: int,
    method: str = "percentile",
    percentile: float = 99.9,
    granularity: str = "layer",
    encoding: str = "direct",
    decoding: str = "membrane",
    init: float = 0.5,
    maxpool: str = "rate",
    seed: int = 0,
    backend: str = "numpy",
    batch_size: int = 128,
    measure_rates: bool = True,
    progress: Progress | None = None,
) -> tuple[Graph, ConversionReport]:
    """Convert ANN ``graph`` into a rate-coded SNN calibrated on ``calib`` (N, *input shape).

    ``timesteps`` is the number of steps the SNN is meant to run (the report's spike rates are
    measured over it). ``progress(stage, done, total)`` is called as calibration batches finish.
    Raises ``InputError`` for a bad calibration set, ``PassError`` naming the pass that failed.
    """
    check_coding(encoding, decoding)
    if maxpool not in MAXPOOL:
        raise SpikecError(f"maxpool {maxpool!r} is not one of {list(MAXPOOL)}")
    if timesteps < 1:
        raise SpikecError(f"timesteps must be >= 1, got {timesteps}")
    if graph.is_spiking:
        raise SpikecError("the model already has spiking/stateful nodes: convert takes an ANN")
    x = as_samples(graph, calib, "calibration set")
    input_scale = float(np.max(np.abs(x))) or 1.0
    steps = conversion_steps(
        x,
        method=method,
        percentile=percentile,
        granularity=granularity,
        encoding=encoding,
        decoding=decoding,
        init=init,
        input_scale=input_scale,
        maxpool=maxpool,
        batch_size=batch_size,
        progress=progress,
    )
    passes: list[dict[str, Any]] = []
    balanced: dict[str, Any] = {}
    clock = [time.perf_counter()]

    def observe(name: str, result: PassResult) -> None:
        now = time.perf_counter()
        passes.append({"name": name, "changed": result.changed, "seconds": round(now - clock[0], 4)})
        clock[0] = now
        if name == "threshold-balance":
            balanced["graph"], balanced["layers"] = result.graph, getattr(result, "layers", ())

    snn = PassManager(steps).run(graph, observe=observe)
    scales = balanced["layers"]
    spiking = [s for s in scales if s.kind == "ReLU"]
    rates: dict[str, float] = {}
    if measure_rates and spiking:
        sim = simulate(
            snn, x, timesteps=timesteps, encoding=encoding, decoding=decoding, scale=input_scale, seed=seed,
            count=[s.name for s in spiking], backend=backend, batch_size=batch_size, progress=progress,
            stage="spike rates",
        )  # fmt: skip
        rates = {name: float(np.mean(np.abs(c))) / timesteps for name, c in sim.counts.items()}

    def layer(s: Any) -> LayerReport:
        shape = list(balanced["graph"].types[s.name])
        return LayerReport(
            s.name, s.origin, shape, _number(s.activation_scale), _number(s.scale), list(s.shared_with),
            rates.get(s.name),
        )  # fmt: skip

    report = ConversionReport(
        timesteps=timesteps,
        method=method,
        percentile=percentile,
        granularity=granularity,
        encoding=encoding,
        decoding=decoding,
        init=init,
        maxpool=maxpool,
        input_scale=input_scale,
        seed=seed,
        calibration_samples=int(x.shape[0]),
        layers=[layer(s) for s in spiking],
        outputs=[layer(s) for s in scales if s.kind != "ReLU"],
        passes=passes,
        ann=balanced["graph"],
    )
    return snn, report
