"""The compile driver: model → (conversion by method) → target pipeline → legalize → emit, atomically.

One code path for every method (``spikec.methods``)::

    load the model and the calibration samples → method.convert → Target.lower (its pipeline, with
    --pass-option) → Target.legalize → Target.emit into a temporary directory → report.json → rename to -o

``report.json`` (schema ``SCHEMA_VERSION``, docs/report-schema.md) holds what the compile did — ``model``, ``target``,
``spikec_version``, ``method``, ``steps`` (what ``spikec verify`` runs by default), the method's report (per-layer
scales, …), ``host_side``, ``pipeline`` (each step and whether it ran), ``files`` and ``sha256`` (every other file's,
checked by ``spikec verify``), the NeuroBench ``metrics`` of the SNN, the ``energy`` estimates, the cores per layer
(``placement``; ``spikec.report``) and, for a rate-coded conversion, the ``timestep_advice`` — and, under ``artifact``,
the report the target wrote about its artifact, if any; ``report.html`` shows it for people (``spikec report DIR``
renders it again). It holds no wall-clock time (``split_wall_clock``): identical inputs and options give byte-identical
artifacts; the passes' times are in the command's result under ``timings``, the whole compile's under ``seconds``,
and ``summary`` (``compile_summary``) sums the report up for the terminal. ``options.progress`` hears each stage
(``spikec.progress``). ``inputs`` (``--inputs X.npy``, (T, N, *shape)) are kept as ``inputs.npz``, ``spikec
verify``'s default inputs. ``evaluate`` is ``spikec eval``: the same loading and conversion, then the method's
comparison of ANN and SNN on labelled data.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spikec import __version__
from spikec.arrays import load_array, load_feeds
from spikec.artifact import (
    HASHES,
    REPORT,
    REPORT_HTML,
    SAMPLE_INPUTS,
    check_destination,
    file_hashes,
    replace_directory,
    split_wall_clock,
)
from spikec.coding import as_samples
from spikec.errors import InputError, SpikecError, UsageError
from spikec.fileio import model_files, save_npz, write_text
from spikec.ir.graph import Graph
from spikec.ir.structure import host_side_notes
from spikec.methods import METHODS, ConversionOptions, choose_method
from spikec.report.advice import SECTION, advice_section
from spikec.report.html import render_html
from spikec.report.schema import SCHEMA_VERSION
from spikec.report.sections import METRIC_SAMPLES, metric_trains, report_sections
from spikec.target import merge_pass_options


@dataclasses.dataclass(frozen=True)
class CompileJob:
    """What ``spikec compile`` was asked: ``method`` None picks ``percentile`` with ``calib``, else ``snn``."""

    model: str | Path
    output: Path
    target: str
    options: ConversionOptions
    method: str | None = None
    calib: Path | None = None
    inputs: Path | None = None  # sample inputs kept as inputs.npz
    pass_options: tuple[str, ...] = ()  # 'pass.key=value' for the target's pipeline
    load_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # spikec.models.load_model's
    metric_samples: int = METRIC_SAMPLES  # calibration samples report.json's metrics run on (0: static ones only)


@dataclasses.dataclass(frozen=True)
class EvalJob:
    """What ``spikec eval`` was asked; without ``calib`` the head of ``data`` calibrates."""

    model: str | Path
    data: Path
    labels: Path
    options: ConversionOptions
    method: str | None = None
    calib: Path | None = None
    load_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    target: str | None = None  # convert with the settings this target chooses (its conversion_defaults)


def load_source(path: str | Path, options: Mapping[str, Any]) -> Graph:
    """The model at ``path``; a load error names the file (same error, message prefixed)."""
    from spikec.models import load_model

    try:
        return load_model(Path(path), **options)
    except SpikecError as err:
        if str(path) not in str(err):
            err.args = (f"{path}: {err}",)
        raise


def compile_model(job: CompileJob) -> dict[str, Any]:
    """Compile ``job.model`` for ``job.target`` into ``job.output``; the command's result (see the module
    docstring). Every check that can fail on the user's files runs before anything is written."""
    from spikec.plugins import load_target

    started = time.perf_counter()
    progress = job.options.progress or _unseen
    target = load_target(job.target)
    method = choose_method(job.method, job.calib is not None, target.preferred_method)
    job.options.check(method.name)
    inputs = [*model_files(job.model), *(p for p in (job.calib, job.inputs) if p is not None)]
    check_destination(job.output, inputs)
    calib = None if job.calib is None else load_array(job.calib, "--calib")
    graph = load_source(job.model, job.load_options)
    samples = None if calib is None else as_samples(graph, calib, f"--calib {job.calib}")
    chosen = target.conversion_defaults(method.name, samples, job.options, graph)
    options, settings = method.settle(job.options, chosen, target.name)
    pass_options, pass_settings = merge_pass_options(chosen.pass_options, job.pass_options, target.name)
    snn, conversion = method.convert(graph, samples, options, rates=True)
    settings = method.explain(settings, conversion)
    feeds = {} if job.inputs is None else load_feeds(snn, job.inputs, "--inputs")
    lowered = target.lower(snn, pass_options, progress=job.options.progress)
    lowered = dataclasses.replace(lowered, graph=target.legalize(lowered.graph))
    pipeline = [dict(step) for step in lowered.log]
    method_report, timings = split_wall_clock(method.report(conversion, options))
    progress("metrics", 0, 0)
    trains = metric_trains(
        snn, samples, feeds, timesteps=options.timesteps, encoding=options.encoding,
        input_scale=getattr(conversion, "input_scale", None), seed=options.seed, limit=job.metric_samples,
    )  # fmt: skip
    clock = time.perf_counter()
    sections = report_sections(snn, trains, target, lowered.results, conversion=conversion, samples=samples)
    timings.append(("report/metrics", time.perf_counter() - clock))
    clock = time.perf_counter()
    advice = advice_section(
        conversion, samples, compiled_timesteps=options.timesteps, source=str(job.calib), batch_size=options.batch_size
    )
    if advice is not None:
        sections[SECTION] = advice
        timings.append(("report/timestep_advice", time.perf_counter() - clock))
    progress("metrics", 1, 1)
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": str(job.model),
        "target": target.name,
        "spikec_version": __version__,
        "method": method.name,
        "steps": job.options.timesteps or 1,
        "conversion_settings": {**settings, **pass_settings},
        **method_report,
        "host_side": [*host_side_notes(lowered.graph), *method.host_side(conversion)],
        "pipeline": pipeline,
        **sections,
    }
    files: list[str] = []
    summary: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        steps = [f"{target.name} files", *([SAMPLE_INPUTS] if feeds else []), REPORT, REPORT_HTML]
        progress(f"emission: {steps[0]}", 0, len(steps))
        artifact = target.emit(lowered, tmp)
        if feeds:
            progress(f"emission: {SAMPLE_INPUTS}", 1, len(steps))
            save_npz(tmp / SAMPLE_INPUTS, feeds)
        progress(f"emission: {REPORT}", len(steps) - 2, len(steps))
        path = tmp / REPORT
        emitted = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if emitted is not None:
            emitted, emit_timings = split_wall_clock(emitted)
            timings.extend((f"artifact/{where}", t) for where, t in emit_timings)
        files.extend(sorted({*artifact.files, REPORT, REPORT_HTML, *([SAMPLE_INPUTS] if feeds else [])}))
        full = {**report, "files": files, HASHES: file_hashes(tmp)}
        full |= {"artifact": emitted} if emitted is not None else {}
        write_text(path, json.dumps(full, indent=2) + "\n")
        progress(f"emission: {REPORT_HTML}", len(steps) - 1, len(steps))
        write_text(tmp / REPORT_HTML, render_html(full))
        progress("emission", len(steps), len(steps))
        summary.update(compile_summary(full, lowered.results, target, job.output))

    replace_directory(job.output, build, inputs)
    return {
        "model": str(job.model),
        "target": target.name,
        "method": method.name,
        "output": str(job.output),
        "files": files,
        "steps": job.options.timesteps,
        "pipeline": pipeline,
        "sample_inputs": int(next(iter(feeds.values())).shape[1]) if feeds else 0,
        "conversion_settings": {**settings, **pass_settings},
        "host_side": report["host_side"],
        "timings": [{"step": where, "seconds": round(t, 4)} for where, t in timings],  # not in report.json
        "seconds": round(time.perf_counter() - started, 3),  # the whole compile, wall clock (not in report.json)
        "summary": summary,
        **method.result(conversion, options),
    }


def _unseen(stage: str, done: int, total: int) -> None:
    """A ``Progress`` nobody watches."""


def compile_summary(report: Mapping[str, Any], results: Mapping[str, Any], target: Any, output: Path) -> dict[str, Any]:
    """What ``spikec compile`` sums up after its result, from the finished ``report`` (nothing measured again): the
    network's neurons and synapses (its ``metrics``), the cores and chips its layers were placed on (the core map a
    pass of the pipeline left, if any; cores as the target's resource model calls them), the target's own lines
    (``Target.summary``) and the page to open."""
    from spikec.coremap import CoreMap

    metrics = report.get("metrics") or {}
    neurons, synapses = metrics.get("neuron_layers", []), metrics.get("synapse_layers", [])
    out: dict[str, Any] = {
        "neuron_layers": len(neurons),
        "neurons": sum(int(layer["neurons"]) for layer in neurons),
        "synapse_layers": len(synapses),
        "synapses": sum(int(layer["weights"]) for layer in synapses),
    }
    core_map = next((r.core_map for r in results.values() if isinstance(getattr(r, "core_map", None), CoreMap)), None)
    if core_map is not None:
        unit = target.resource_model().chip["neuro_cores"].unit  # "cores per chip", "PEs per chip"
        out |= {"cores": core_map.cores_used, "chips": core_map.chips_used, "core_unit": unit.split(" per ")[0]}
    return out | {"lines": list(target.summary(report)), "report_html": str(output / REPORT_HTML)}


def evaluate(job: EvalJob) -> dict[str, Any]:
    """Convert ``job.model`` and compare ANN and SNN on ``job.data``/``job.labels`` (``spikec eval``)."""
    from spikec.compare import check_labels, class_count

    name = job.method or "percentile"
    if name in METHODS and not METHODS[name].calibrated:
        raise UsageError(f"spikec eval converts an ANN and compares it with its SNN; --method {name} converts nothing")
    method = choose_method(name, True)
    job.options.check(method.name)
    data = load_array(job.data, "--data")
    labels = load_array(job.labels, "--labels")
    calib = None if job.calib is None else load_array(job.calib, "--calib")
    graph = load_source(job.model, job.load_options)
    x = as_samples(graph, data, f"--data {job.data}")
    y = check_labels(labels, x.shape[0], f"--labels {job.labels}", classes=class_count(graph))
    if calib is None:  # calibrate on the head of the data and evaluate on the rest
        k = min(1000, x.shape[0] // 10)
        if k < 1:
            raise InputError(f"--data {job.data} holds {x.shape[0]} samples: too few to split; pass --calib")
        calib, x, y, source = x[:k], x[k:], y[k:], f"the first {k} samples of --data (not evaluated)"
    else:
        calib, source = as_samples(graph, calib, f"--calib {job.calib}"), str(job.calib)
    chosen = None
    if job.target is not None:
        from spikec.plugins import load_target

        target = load_target(job.target)
        chosen = target.conversion_defaults(method.name, calib, job.options, graph)
    options, settings = method.settle(job.options, chosen, job.target or "")
    snn, conversion = method.convert(graph, calib, options, rates=False)
    settings = method.explain(settings, conversion)
    return {
        "model": str(job.model),
        "method": method.name,
        **method.compare(graph, snn, conversion, x, y, options),
        "conversion_settings": settings,
        "calibration": {"samples": conversion.calibration_samples, "source": source},
    }
