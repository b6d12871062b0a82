"""ANN → SNN conversion: a fixed pipeline of named passes (spikec.pipeline) plus a report.

``convert(graph, calib, timesteps=T)`` runs, through ``PassManager``::

    inline-subgraphs, fold-batchnorm, fuse, avgpool-to-sumpool, fuse              (exact)
    output-softmax                                                                (host-side decoding)
    threshold-balance{calib, method, percentile, granularity}                     (exact ANN)
    relu-to-if{threshold, reset}, rate-maxpool, init-membrane, decode-output,
    encode-input, fuse                                                            (rate code)

and returns the SNN and a ``ConversionReport``: per spiking layer its activation scale λ and the
threshold it got (in the ANN's units: the value one spike per step stands for), the spike rate on
the calibration set, the (log-)softmax left to the host, and every pass with its time.
``reset="zero"`` makes IFs that reset to 0 (chips without a subtractive reset); its ``threshold="auto"``
picks the threshold, as a fraction of each layer's scale, whose SNN agrees best with the ANN on the
calibration samples after ``timesteps`` steps (``THRESHOLD_CANDIDATES``; docs/conversion.md measures
why). A graph whose kinds no activation scale passes through is refused naming every such node and
the method that converts them. docs/conversion.md describes each step.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from spikec.coding import Progress, as_samples, check_coding, simulate
from spikec.errors import PassError, SpikecError
from spikec.ir import tensor
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.passes.threshold_balance import TAKES, ScaleBlocked, blocked_kinds
from spikec.pipeline import PassManager, PassResult, PassStep
from spikec.threshold_search import SEARCH_SAMPLES, search_threshold

EXACT_PREPARATION = ("inline-subgraphs", "fold-batchnorm", "fuse", "avgpool-to-sumpool", "fuse")
# How MaxPool is lowered: steps before balancing, steps after relu-to-if (docs/conversion.md).
MAXPOOL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rate": ((), ("rate-maxpool",)),  # max of accumulated counts: exact in count (default)
    "current": (("maxpool-before-relu",), ()),  # pool the input currents of the neurons
    "spikes": ((), ()),  # max-pool the spikes as they come
}
RESETS = {"subtract": "subtract", "zero": "value"}  # --reset -> relu-to-if's reset
# The calibration runs (threshold search, spike rates) only choose a fraction and report rates: float32 halves
# their memory and runs their convolutions 2-4x faster than float64 (ResNet-50 at 224x224: 6.4 s against 14.8 s
# for 4 samples x 8 steps). Verification (spikec eval, compare, the bit-exact kernels) keeps float64.
CALIBRATION_DTYPE = "float32"
# The method that converts a kind rate coding cannot (no activation scale passes through it); any other: exact.
_SOFTMAX_METHOD = "--method exact; at a graph output it is host-side decoding instead"
METHOD_FOR: dict[type[Node], str] = {
    tensor.Softmax: _SOFTMAX_METHOD,
    tensor.LogSoftmax: _SOFTMAX_METHOD,
    tensor.MatMul: "--method exact; --method binary for Spikformer-style attention without softmax",
    tensor.Bias: "a constant added with no Conv/Dense before it to take it, e.g. position embeddings; --method exact",
}
EXACT_METHOD = (
    "--method exact (spikec.convert_exact) wraps each such node as accumulate -> f -> difference: exact, not "
    "event-driven"
)


class RateCodingBlocked(PassError):
    """A graph the rate conversion cannot take: names every blocking node and the method that converts it."""


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
    reset: str  # subtract | zero
    threshold: float  # IF threshold as a fraction of each layer's activation scale
    threshold_search: dict[str, float] | None  # threshold="auto": candidate -> agreement with the ANN
    input_scale: float  # the input value one spike stands for (poisson), or L levels stand for (graded)
    seed: int
    calibration_samples: int
    layers: list[LayerReport]
    outputs: list[LayerReport]
    host_decoding: list[dict[str, Any]]  # (log-)softmax at an output, left to the host (argmax unchanged)
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
    reset: str = "subtract",
    threshold: float = 1.0,
) -> list[PassStep]:
    """The pass pipeline of ``convert`` (names and options), e.g. to print or to run piecewise."""
    return [
        *balancing_steps(calib, method=method, percentile=percentile, granularity=granularity, decoding=decoding,
                         maxpool=maxpool, batch_size=batch_size, progress=progress),
        *spiking_steps(threshold=threshold, reset=reset, maxpool=maxpool, init=init, decoding=decoding,
                       encoding=encoding, input_scale=input_scale),
    ]  # fmt: skip


def balancing_steps(
    calib: np.ndarray,
    *,
    method: str,
    percentile: float,
    granularity: str,
    decoding: str,
    maxpool: str,
    batch_size: int,
    progress: Progress | None,
) -> list[PassStep]:
    """The exact part of the pipeline: preparation, host-side softmax, threshold balancing (the ANN rescaled)."""

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
    return [*EXACT_PREPARATION, "output-softmax", *MAXPOOL[maxpool][0], ("threshold-balance", balance)]


def spiking_steps(
    *, threshold: float, reset: str, maxpool: str, init: float, decoding: str, encoding: str, input_scale: float
) -> list[PassStep]:
    """The rate-coding part: neurons, max-pooling, initial membrane, readout, input encoding."""
    if reset not in RESETS:
        raise SpikecError(f"reset {reset!r} is not one of {list(RESETS)}")
    return [
        f"relu-to-if{{threshold={threshold!r},reset={RESETS[reset]}}}",
        *MAXPOOL[maxpool][1],
        f"init-membrane{{fraction={init!r}}}",
        f"decode-output{{mode={decoding}}}",
        f"encode-input{{mode={encoding},scale={input_scale!r}}}",
        "fuse",
    ]


def _threshold(threshold: float | str) -> float | None:
    """A threshold fraction > 0, or None for ``"auto"``."""
    if threshold == "auto":
        return None
    try:
        value = float(threshold)
    except ValueError:
        raise SpikecError(f"threshold {threshold!r} is not a number or 'auto'") from None
    if not value > 0:
        raise SpikecError(f"threshold {threshold!r} must be > 0 (a fraction of each layer's activation scale)")
    return value


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
    reset: str = "subtract",
    threshold: float | str = 1.0,
    input_scale: float | None = None,
    seed: int = 0,
    backend: str = "numpy",
    batch_size: int = 128,
    measure_rates: bool = True,
    progress: Progress | None = None,
) -> tuple[Graph, ConversionReport]:
    """Convert ANN ``graph`` into a rate-coded SNN calibrated on ``calib`` (N, *input shape).

    ``timesteps`` is the number of steps the SNN is meant to run (the report's spike rates are
    measured over it, and ``threshold="auto"`` chooses for it). ``reset``: ``subtract`` or ``zero``;
    ``threshold``: the IF threshold as a fraction of each layer's activation scale, or ``"auto"``
    (``spikec.threshold_search``). ``input_scale``: the input value the largest graded integer (or a poisson
    spike) stands for; default the calibration samples' largest |x| (a larger one feeds fewer graded levels).
    ``progress(stage, done, total)`` is called as calibration batches finish.
    Raises ``InputError`` for a bad calibration set, ``PassError`` naming the pass that failed
    (``RateCodingBlocked`` naming every node no activation scale passes through).
    """
    check_coding(encoding, decoding)
    if maxpool not in MAXPOOL:
        raise SpikecError(f"maxpool {maxpool!r} is not one of {list(MAXPOOL)}")
    if reset not in RESETS:
        raise SpikecError(f"reset {reset!r} is not one of {list(RESETS)}")
    fixed = _threshold(threshold)
    if timesteps < 1:
        raise SpikecError(f"timesteps must be >= 1, got {timesteps}")
    if graph.is_spiking:
        raise SpikecError("the model already has spiking/stateful nodes: convert takes an ANN")
    x = as_samples(graph, calib, "calibration set")
    if input_scale is None:
        input_scale = float(np.max(np.abs(x))) or 1.0
    elif not (np.isfinite(input_scale) and input_scale > 0):
        raise SpikecError(f"input_scale must be finite and > 0, got {input_scale}")
    passes: list[dict[str, Any]] = []
    balanced: dict[str, Any] = {"decoded": ()}
    clock = [time.perf_counter()]

    def observe(name: str, result: PassResult) -> None:
        now = time.perf_counter()
        passes.append({"name": name, "changed": result.changed, "seconds": round(now - clock[0], 4)})
        clock[0] = now
        if name == "threshold-balance":
            balanced["graph"], balanced["layers"] = result.graph, getattr(result, "layers", ())
        if name == "output-softmax":
            balanced["decoded"] = getattr(result, "decoded", ())

    head = balancing_steps(x, method=method, percentile=percentile, granularity=granularity, decoding=decoding,
                           maxpool=maxpool, batch_size=batch_size, progress=progress)  # fmt: skip
    try:
        ann = PassManager(head).run(graph, observe=observe)
    except PassError as err:
        cause = err.__cause__
        if isinstance(cause, ScaleBlocked):
            kinds = blocked_kinds(cause.graph, cause.blocked, lambda node: METHOD_FOR.get(type(node), "--method exact"))
            raise RateCodingBlocked(
                f"rate coding (--method {method}) cannot convert {kinds}: no activation scale passes through them "
                f"(threshold-balance takes {TAKES}); {EXACT_METHOD}"
            ) from err
        raise

    def spiking(fraction: float) -> list[PassStep]:
        return spiking_steps(threshold=fraction, reset=reset, maxpool=maxpool, init=init, decoding=decoding,
                             encoding=encoding, input_scale=input_scale)  # fmt: skip

    coding = {"timesteps": timesteps, "encoding": encoding, "decoding": decoding, "scale": input_scale, "seed": seed,
              "backend": backend, "dtype": CALIBRATION_DTYPE, "batch_size": batch_size}  # fmt: skip
    scales = balanced["layers"]
    spiking_layers = [s for s in scales if s.kind != "Output"]
    counted = [s.name for s in spiking_layers] if measure_rates else []
    search, rates = None, {}
    if fixed is None:
        found = search_threshold(
            ann, x, lambda f: PassManager(spiking(f)).run(ann), progress=progress, count=counted,
            **coding,  # type: ignore[arg-type]
        )  # fmt: skip
        fixed, search = found.chosen, found.agreement
        if x.shape[0] <= SEARCH_SAMPLES:  # the chosen candidate ran on every sample: its rates are the SNN's
            rates = found.rates[f"{fixed:g}"]
        clock[0] = time.perf_counter()
    snn = PassManager(spiking(fixed)).run(ann, observe=observe)
    if counted and not rates:
        sim = simulate(
            snn,
            x,
            count=[s.name for s in spiking_layers],
            progress=progress,
            stage="spike rates",
            **coding,  # type: ignore[arg-type]
        )
        rates = {name: float(np.mean(np.abs(c))) / timesteps for name, c in sim.counts.items()}

    def layer(s: Any) -> LayerReport:
        shape = list(balanced["graph"].types[s.name])
        return LayerReport(
            s.name, s.origin, shape, _number(s.activation_scale), _number(np.asarray(s.scale) * fixed),
            list(s.shared_with), rates.get(s.name),
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
        reset=reset,
        threshold=fixed,
        threshold_search=search,
        input_scale=input_scale,
        seed=seed,
        calibration_samples=int(x.shape[0]),
        layers=[layer(s) for s in spiking_layers],
        outputs=[layer(s) for s in scales if s.kind == "Output"],
        host_decoding=[dict(d) for d in balanced["decoded"]],
        passes=passes,
        ann=balanced["graph"],
    )
    return snn, report
