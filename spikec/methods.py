"""Conversion methods by name: what ``spikec compile`` and ``spikec eval`` do to a model before the target.

One small class per method, in ``METHODS`` (``--method NAME``):

- ``percentile``, ``max``: rate coding (``spikec.convert``), the activation scale of each layer taken as
  that statistic of its calibration activations;
- ``binary``: a Spikformer-style transformer to 0/1 spikes only (``spikec.convert_binary``);
- ``exact``: a quantized ANN and an SNN whose summed output equals it (``spikec.convert_exact``);
- ``snn``: the model is already an SNN (a ``.sir``, ``.nir`` or a target's format) and is taken as it is.

A method converts (model, calibration samples) → (SNN, its report); says which of the report's fields go in
``report.json`` and in the command's result; compares the ANN with the SNN on labelled data (``eval``); and
gives the lines the command line prints. The driver (``spikec.compiler``) is the same for every method.

Options a target may choose (``reset``, ``init``, ``maxpool``, ``encoding``, ...) are None until settled:
``Method.settle`` takes, for each option the method reads (``Method.defaults``), the user's value, else the
target's choice (``spikec.target.Target.conversion_defaults``: value and reason), else spikec's default, and
records which and why; a user's value that the target says its chip cannot run is a ``ConversionConflict``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from spikec.coding import Progress
from spikec.errors import InputError, SpikecError, TargetError, UsageError
from spikec.ir.graph import Graph

if TYPE_CHECKING:
    from spikec.target import ConversionDefaults


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    """The options of every method (each reads those it needs; docs/conversion.md). None: not given, to be
    settled by ``Method.settle`` (the target's choice, else spikec's default)."""

    timesteps: int
    percentile: float = 99.9
    granularity: str = "layer"
    encoding: str | None = None  # direct; a target may choose graded
    decoding: str | None = None  # membrane
    init: float | None = None  # 0.5 with reset by subtraction, 0 with reset to zero
    maxpool: str | None = None  # rate
    reset: str | None = None  # subtract | zero
    threshold: str | None = None  # IF threshold over the activation scale: a number, or auto (reset to zero)
    attention: str | None = None  # binary: compensated (products of spike counts) or per-step (of spike trains)
    input_scale: float | None = None  # the input value L graded levels (or one poisson spike) stand for: max|x|
    seed: int = 0
    backend: str = "numpy"
    batch_size: int = 128
    levels: int = 16  # exact: levels per activation
    max_spikes: int = 1  # exact: spikes per neuron and step
    progress: Progress | None = None  # (stage, done, total) as batches finish

    def check(self, method: str = "") -> None:
        if self.timesteps == 0 and method not in UNTIMED:
            raise UsageError(f"--timesteps T is required (the steps the SNN runs per sample) for --method {method}")
        if self.timesteps < 0:
            raise SpikecError(f"--timesteps must be >= 1, got {self.timesteps}")
        if self.batch_size < 1:
            raise SpikecError(f"--batch-size must be >= 1, got {self.batch_size}")


UNTIMED = ("ann",)  # methods whose result has no time axis: --timesteps may be left out


class ConversionConflict(TargetError):
    """A conversion option the user gave that the target's chip cannot run (names what the chip does instead)."""


def settled(options: ConversionOptions, key: str) -> Any:
    """``options.key`` after ``Method.settle`` (an error if it was not settled)."""
    value = getattr(options, key)
    if value is None:
        raise SpikecError(f"conversion option {key!r} was not settled: call Method.settle first")
    return value


def calibration(calib: np.ndarray | None, method: str) -> np.ndarray:
    """``calib``, or a usage error: a method that converts an ANN needs calibration samples."""
    if calib is None:
        raise UsageError(f"--method {method} converts an ANN on calibration samples: pass --calib X.npy")
    return calib


class Method:
    """A conversion method; subclasses override what differs."""

    name: str = ""
    help: str = ""
    calibrated: bool = True  # converts an ANN on calibration samples (False: the model is an SNN)
    defaults: ClassVar[Mapping[str, Any]] = {}  # options it reads that a target may choose, with spikec's defaults

    def settle(
        self, options: ConversionOptions, chosen: ConversionDefaults | None = None, target: str = ""
    ) -> tuple[ConversionOptions, dict[str, dict[str, Any]]]:
        """``options`` with each of ``defaults`` filled in: the user's value, else the target's choice, else spikec's
        default; and per option what was used, by whom (``user``, ``target NAME``, ``spikec``) and why. A user's
        value the target ``required`` otherwise is a ``ConversionConflict`` saying what the chip does instead."""
        settings = {} if chosen is None else dict(chosen.settings)
        values: dict[str, Any] = {}
        record: dict[str, dict[str, Any]] = {}
        for key in self.defaults:  # in order: a later default may depend on an earlier option
            given, choice = getattr(options, key), settings.get(key)
            if given is not None:
                if choice is not None and choice.required and given != choice.value:
                    flag = "--" + key.replace("_", "-")
                    raise ConversionConflict(
                        f"{flag} {given}: target '{target}' cannot run it: {choice.reason}. Leave {flag} out "
                        f"(the target chooses {choice.value}) or compile for another target"
                    )
                values[key], record[key] = given, {"value": given, "by": "user"}
            elif choice is not None:
                values[key] = choice.value
                record[key] = {"value": choice.value, "by": f"target {target}", "reason": choice.reason}
            else:
                values[key] = self.spikec_default(key, values)
                record[key] = {"value": values[key], "by": "spikec"}
        return dataclasses.replace(options, **values), record

    def spikec_default(self, key: str, settled: Mapping[str, Any]) -> Any:
        """spikec's own value of option ``key`` given the options ``settled`` before it."""
        return self.defaults[key]

    def convert(
        self, graph: Graph, calib: np.ndarray | None, options: ConversionOptions, *, rates: bool
    ) -> tuple[Graph, Any]:
        """The SNN and the method's report; ``rates``: measure spike rates for the report (compile, not eval)."""
        raise NotImplementedError

    def report(self, report: Any, options: ConversionOptions) -> dict[str, Any]:
        """The method's fields of ``report.json``."""
        return dict(report.to_dict())

    def result(self, report: Any, options: ConversionOptions) -> dict[str, Any]:
        """The method's fields of ``spikec compile``'s result."""
        return {}

    def host_side(self, report: Any) -> list[str]:
        """Lines for what the conversion left to the host (``report.json``'s ``host_side``)."""
        return []

    def explain(self, settings: dict[str, dict[str, Any]], report: Any) -> dict[str, dict[str, Any]]:
        """``settings`` (from ``settle``) with what the conversion chose for values decided on the data (``auto``)."""
        return settings

    def compile_lines(self, r: dict[str, Any]) -> list[str]:
        """What ``spikec compile`` prints after its first line, from the result ``r``."""
        return []

    def compare(
        self, ann: Graph, snn: Graph, report: Any, x: np.ndarray, y: np.ndarray, options: ConversionOptions
    ) -> dict[str, Any]:
        """``spikec eval``'s result: the ANN and the SNN on samples ``x`` with labels ``y``."""
        raise UsageError(f"--method {self.name} does not convert an ANN, so there is nothing to evaluate")

    def eval_lines(self, r: dict[str, Any]) -> list[str]:
        return []


class RateMethod(Method):
    """Rate coding, activation scales by a statistic of the calibration activations (``spikec.convert``)."""

    defaults: ClassVar[Mapping[str, Any]] = {
        "reset": "subtract",
        "init": 0.5,  # θ/2 with reset by subtraction; 0 with reset to zero (spikec_default)
        "threshold": "1",  # with reset to zero: auto (spikec_default)
        "maxpool": "rate",
        "encoding": "direct",
        "decoding": "membrane",
        "input_scale": None,  # the calibration samples' largest |x| (spikec.convert)
    }

    def __init__(self, statistic: str, help: str) -> None:
        self.statistic = self.name = statistic
        self.help = help

    def spikec_default(self, key: str, settled: Mapping[str, Any]) -> Any:
        """Reset to zero starts at v = 0 (a residue it would drop anyway) and searches its threshold."""
        zero = settled.get("reset") == "zero"
        if key == "init" and zero:
            return 0.0
        if key == "threshold" and zero:
            return "auto"
        return super().spikec_default(key, settled)

    def convert(
        self, graph: Graph, calib: np.ndarray | None, options: ConversionOptions, *, rates: bool
    ) -> tuple[Graph, Any]:
        from spikec.convert import convert

        calib = calibration(calib, self.name)
        o, _ = self.settle(options)  # a no-op when the driver settled them already
        return convert(
            graph, calib, timesteps=o.timesteps, method=self.statistic, percentile=o.percentile,
            granularity=o.granularity, encoding=settled(o, "encoding"), decoding=settled(o, "decoding"),
            init=settled(o, "init"), maxpool=settled(o, "maxpool"), reset=settled(o, "reset"),
            threshold=settled(o, "threshold"), input_scale=o.input_scale, seed=o.seed, backend=o.backend,
            batch_size=o.batch_size, measure_rates=rates, progress=o.progress,
        )  # fmt: skip

    def host_side(self, report: Any) -> list[str]:
        return [
            f"node '{d['node']}' ({d['kind']}) from {d['origin'] or 'the model'}: decoding on the host; the SNN "
            f"outputs the scores before it at '{d['output']}' (argmax unchanged; apply {d['kind']} over axis "
            f"{d['axis']} there for probabilities)"
            for d in report.host_decoding
        ]

    def explain(self, settings: dict[str, dict[str, Any]], report: Any) -> dict[str, dict[str, Any]]:
        """threshold=auto: the fraction the search chose, and each candidate's agreement with the ANN."""
        threshold = settings.get("threshold")
        if threshold is None or threshold["value"] != "auto" or report.threshold_search is None:
            return settings
        tried = ", ".join(f"{f}: {a:.3f}" for f, a in report.threshold_search.items())
        why = (
            f"reset to zero drops the residue above threshold: of the fractions of each layer's activation scale "
            f"tried, {report.threshold:g} gave the best argmax agreement with the ANN on the calibration samples "
            f"at T={report.timesteps} ({tried})"
        )
        return {**settings, "threshold": {**threshold, "chosen": report.threshold, "reason": why}}

    def result(self, report: Any, options: ConversionOptions) -> dict[str, Any]:
        return {
            "timesteps": report.timesteps,
            "calibration_samples": report.calibration_samples,
            "layers": [layer.to_dict() for layer in report.layers],
        }

    def compile_lines(self, r: dict[str, Any]) -> list[str]:
        lines = [f"  {'layer':<16} {'threshold':>12} {'spike rate':>11}  origin"]
        for layer in r["layers"]:
            th = layer["threshold"]
            shown = f"{th:.4g}" if isinstance(th, float) else f"{len(th)} channels"
            rate = "-" if layer["spike_rate"] is None else f"{layer['spike_rate']:.4f}"
            lines.append(f"  {layer['name']:<16} {shown:>12} {rate:>11}  {layer['origin']}")
        return lines

    def compare(
        self, ann: Graph, snn: Graph, report: Any, x: np.ndarray, y: np.ndarray, options: ConversionOptions
    ) -> dict[str, Any]:
        from spikec.compare import compare

        o = options
        result = compare(ann, snn, report, x, y, backend=o.backend, batch_size=o.batch_size, progress=o.progress)
        settings = ("method", "percentile", "granularity", "encoding", "decoding", "reset", "threshold", "maxpool")
        return {**result.to_dict(), "settings": {k: getattr(report, k) for k in settings}}

    def eval_lines(self, r: dict[str, Any]) -> list[str]:
        snn = r["snn"]
        steps = "  ".join(f"T={t}: {100 * a:.2f}%" for t, a in snn["by_timesteps"].items())
        lines = [
            f"  ANN accuracy {100 * r['ann']['accuracy']:.2f}%",
            f"  SNN accuracy {100 * snn['accuracy']:.2f}% at T={snn['timesteps']} (loss {r['loss_pp']:.2f} pp)  "
            f"[{steps}]",
            f"  {'layer':<16} {'drift':>7} {'error':>7} {'rate':>7}  origin"
            "   (drift: correlation ANN vs SNN, 1 = none)",
        ]
        for layer in r["layers"]:
            drift = "-" if layer["drift"] is None else f"{layer['drift']:.4f}"
            error = "-" if layer["error"] is None else f"{layer['error']:.4f}"
            lines.append(f"  {layer['name']:<16} {drift:>7} {error:>7} {layer['rate']:>7.4f}  {layer['origin']}")
        return lines


class BinaryMethod(RateMethod):
    """Rate coding of a Spikformer-style transformer into 0/1 spikes only (``spikec.convert_binary``):
    percentile statistic, one scale per layer, a direct input through an IF encoding layer."""

    defaults: ClassVar[Mapping[str, Any]] = {
        "reset": "subtract",
        "init": 0.5,  # θ/2 with reset by subtraction; 0 with reset to zero (RateMethod.spikec_default)
        "threshold": "1",  # with reset to zero: auto
        "encoding": "direct",
        "decoding": "membrane",
        "attention": "compensated",
        "input_scale": None,  # the calibration samples' largest |x| (spikec.convert)
    }

    def __init__(self) -> None:
        super().__init__("binary", "a Spikformer-style transformer to 0/1 spikes only (spikec.convert_binary)")

    def convert(
        self, graph: Graph, calib: np.ndarray | None, options: ConversionOptions, *, rates: bool
    ) -> tuple[Graph, Any]:
        from spikec.convert_binary import convert_binary

        calib = calibration(calib, self.name)
        o, _ = self.settle(options)  # a no-op when the driver settled them already
        return convert_binary(
            graph, calib, timesteps=o.timesteps, percentile=o.percentile, encoding=settled(o, "encoding"),
            decoding=settled(o, "decoding"), init=settled(o, "init"), reset=settled(o, "reset"),
            threshold=settled(o, "threshold"), attention=settled(o, "attention"), input_scale=o.input_scale,
            seed=o.seed, backend=o.backend, batch_size=o.batch_size, measure_rates=rates, progress=o.progress,
        )  # fmt: skip


class ExactMethod(Method):
    """A quantized ANN (``levels``, ``max_spikes``) and an SNN whose outputs summed over steps equal it."""

    name = "exact"
    help = "quantized ANN + spike-equivalent SNN (spikec.convert_exact)"

    def convert(
        self, graph: Graph, calib: np.ndarray | None, options: ConversionOptions, *, rates: bool
    ) -> tuple[Graph, Any]:
        from spikec.convert_exact import convert_exact

        calib = calibration(calib, self.name)
        shown = options.progress

        def progress(done: int, total: int) -> None:
            if shown is not None:
                shown("calibration", done, total)

        o = options
        return convert_exact(
            graph, calib, levels=o.levels, percentile=o.percentile, max_spikes=o.max_spikes,
            batch_size=o.batch_size, backend=o.backend, progress=progress,
        )  # fmt: skip

    def report(self, report: Any, options: ConversionOptions) -> dict[str, Any]:
        return {"timesteps": options.timesteps, **report.to_dict()}

    def result(self, report: Any, options: ConversionOptions) -> dict[str, Any]:
        return {
            "timesteps": options.timesteps,
            "settle_bound": report.settle_bound,
            "calibration_samples": report.calibration_samples,
            "neurons": [n.to_dict() for n in report.neurons],
            "host_nodes": report.host_nodes,
        }

    def compile_lines(self, r: dict[str, Any]) -> list[str]:
        lines = [
            f"  sum of the outputs over steps equals the QANN's after at most {r['settle_bound']} steps",
            f"  {'ST-BIF layer':<28} {'step':>10} {'levels':>9}  origin",
        ]
        for n in r["neurons"]:
            step = n["step"]
            shown = f"{step:.4g}" if isinstance(step, float) else f"{len(step)} values"
            lines.append(f"  {n['name']:<28} {shown:>10} {n['lo']:>4}..{n['hi']:<4}  {n['origin']}")
        if r["host_nodes"]:
            lines.append("  not event-driven (accumulate -> f -> difference, on the host or a graded-spike core):")
            lines += [f"    {h['name']} ({h['kind']}) {h['origin']}" for h in r["host_nodes"]]
        return lines

    def compare(
        self, ann: Graph, snn: Graph, report: Any, x: np.ndarray, y: np.ndarray, options: ConversionOptions
    ) -> dict[str, Any]:
        from spikec.compare_exact import compare_exact

        o = options
        result = compare_exact(
            ann, snn, report, x, y, timesteps=o.timesteps, backend=o.backend, batch_size=o.batch_size,
            progress=o.progress,
        )  # fmt: skip
        settings = {"levels": o.levels, "percentile": o.percentile, "max_spikes": o.max_spikes}
        return {**result.to_dict(), "settings": settings, "host_nodes": report.host_nodes}

    def eval_lines(self, r: dict[str, Any]) -> list[str]:
        snn = r["snn"]
        lines = [
            f"  ANN accuracy  {100 * r['ann']['accuracy']:.2f}%",
            f"  QANN accuracy {100 * r['qann']['accuracy']:.2f}% (L={r['settings']['levels']})",
            f"  {'T':>5} {'SNN accuracy':>13} {'= QANN':>8}",
        ]
        for t, acc in snn["by_timesteps"].items():
            lines.append(f"  {t:>5} {100 * acc:>12.2f}% {100 * snn['equal_to_qann_by_timesteps'][t]:>7.1f}%")
        lines.append(f"  every output equals the QANN's after at most {snn['settle_bound']} steps (bound)")
        return lines


class AnnMethod(Method):
    """The ANN kept an ANN, for targets that run quantized ANNs: ``quantize-activations`` marks each
    ReLU's output with a ``Quantize`` whose range is a ``--percentile`` of the calibration activations; the
    target's quantizer takes its scales from them."""

    name = "ann"
    help = "keep the ANN, marking each activation's calibrated range for a target that runs quantized ANNs"

    def convert(
        self, graph: Graph, calib: np.ndarray | None, options: ConversionOptions, *, rates: bool
    ) -> tuple[Graph, Any]:
        from spikec.coding import as_samples
        from spikec.pipeline import PassManager, PassStep

        if graph.is_spiking:
            raise InputError("--method ann keeps an ANN as an ANN: this model already spikes")
        x = as_samples(graph, calibration(calib, self.name), "calibration set")
        o = options
        quantize = {"calib": x, "levels": o.levels, "percentile": o.percentile, "inputs": False,
                    "batch_size": o.batch_size, "backend": o.backend}  # fmt: skip
        steps: list[PassStep] = ["inline-subgraphs", "fold-batchnorm", "output-softmax"]
        steps.append(("quantize-activations", quantize))
        decoded: list[dict[str, Any]] = []
        passes: list[dict[str, Any]] = []
        clock = [time.perf_counter()]

        def keep(name: str, result: Any) -> None:
            decoded.extend(getattr(result, "decoded", ()))
            now = time.perf_counter()
            passes.append({"name": name, "changed": result.changed, "seconds": round(now - clock[0], 4)})
            clock[0] = now

        kept = PassManager(steps).run(graph, observe=keep)
        samples = {"calibration_samples": int(x.shape[0]), "percentile": o.percentile}
        return kept, {"calibration": samples, "host_decoding": decoded, "passes": passes}

    def report(self, report: Any, options: ConversionOptions) -> dict[str, Any]:
        return dict(report)

    def compare(
        self, ann: Graph, snn: Graph, report: Any, x: np.ndarray, y: np.ndarray, options: ConversionOptions
    ) -> dict[str, Any]:
        raise UsageError(
            "--method ann keeps the ANN: its accuracy on the chip is measured after the target quantizes it; "
            "spikec compile MODEL --target NAME --calib X.npy -o DIR, then spikec verify DIR --inputs X --labels Y"
        )

    def host_side(self, report: Any) -> list[str]:
        return [
            f"node '{d['node']}' ({d['kind']}) from {d['origin'] or 'the model'}: decoding on the host; the model "
            f"outputs the scores before it at '{d['output']}' (argmax unchanged)"
            for d in report["host_decoding"]
        ]


class SnnMethod(Method):
    """The model is already an SNN (spiking nodes, or a target's fixed-point dialect): no conversion."""

    name = "snn"
    help = "the model is already an SNN and is taken as it is (the default without --calib)"
    calibrated = False

    def convert(
        self, graph: Graph, calib: np.ndarray | None, options: ConversionOptions, *, rates: bool
    ) -> tuple[Graph, Any]:
        if not graph.is_spiking:
            raise InputError("the model is an ANN (no spiking nodes): pass --calib X.npy to convert it to an SNN")
        return graph, None

    def report(self, report: Any, options: ConversionOptions) -> dict[str, Any]:
        return {}


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        RateMethod("percentile", "rate coding, each layer's scale a percentile of its activations (--percentile)"),
        RateMethod("max", "rate coding, each layer's scale the largest of its activations"),
        ExactMethod(),
        BinaryMethod(),
        AnnMethod(),
        SnnMethod(),
    )
}


def method_help(calibrated_only: bool = False) -> str:
    """One line per method, for ``--method``'s help."""
    shown = [m for m in METHODS.values() if m.calibrated or not calibrated_only]
    return "; ".join(f"{m.name}: {m.help}" for m in shown)


def choose_method(name: str | None, calibrated: bool, preferred: str | None = None) -> Method:
    """The method called ``name`` (default: the target's ``preferred`` with calibration samples, else
    ``percentile``; without them ``snn``); a usage error when the calibration samples do not fit the method."""
    if name is None and preferred is not None and not calibrated and METHODS[preferred].calibrated:
        raise UsageError(f"the target compiles with --method {preferred}, which calibrates: pass --calib X.npy")
    if name is None:
        name = (preferred or "percentile") if calibrated else "snn"
    if name not in METHODS:
        raise UsageError(f"--method {name!r}: no such method; known: {', '.join(METHODS)}")
    method = METHODS[name]
    if method.calibrated and not calibrated:
        calibration(None, name)
    if not method.calibrated and calibrated:
        raise UsageError(f"--calib does not apply to --method {name}: the model is taken as it is; drop --calib")
    return method
