"""report.json's ``timestep_advice``: how many time steps the rate-coded SNN needs (``spikec.timesteps``), beside the
T it was compiled with, and the accuracy against T that ``spikec timesteps --report DIR`` measures into an
existing report (docs/report-schema.md, docs/timesteps.md).

The compile computes the advice from what it already holds after conversion: the balanced ANN, its spiking layers
and the calibration samples (one more ANN pass over them, traced at those layers). The measurement needs
labelled data, which a compile does not have; ``spikec timesteps --report DIR`` converts the model again with the
conversion settings the report records, checks that its layers' thresholds are the report's (the same model and
calibration), measures, and rewrites report.json and report.html together.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from spikec.errors import InputError
from spikec.ir.graph import Graph
from spikec.methods import ConversionOptions, Method, RateMethod
from spikec.timesteps import Advice, advise

SECTION = "timestep_advice"


def section(
    advice: Advice, *, source: str, compiled_timesteps: int, measured: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``timestep_advice`` object: the calibration it came from, the compiled T, the advice (its
    ``to_dict()``) and, when measured, the accuracy against T."""
    out: dict[str, Any] = {
        "calibration": {"samples": advice.calibration_samples, "source": source},
        "compiled_timesteps": compiled_timesteps,
        **advice.to_dict(),
    }
    if measured is not None:
        out["measured"] = dict(measured)
    return out


def advice_section(
    conversion: Any, samples: np.ndarray | None, *, compiled_timesteps: int, source: str, batch_size: int = 128
) -> dict[str, Any] | None:
    """``timestep_advice`` for a conversion that keeps its balanced ANN and spiking layers (the rate methods),
    from the calibration ``samples``; None for any other (exact, ann, snn) or without samples."""
    layers = getattr(conversion, "layers", None)
    if samples is None or not layers or not isinstance(getattr(conversion, "ann", None), Graph):
        return None
    advice = advise(conversion.ann, layers, samples, init=conversion.init, batch_size=batch_size)
    return section(advice, source=source, compiled_timesteps=compiled_timesteps)


@dataclasses.dataclass(frozen=True)
class ReportToRecord:
    """An artifact's report.json that ``spikec timesteps --report DIR`` records its measurement in."""

    path: Path
    report: dict[str, Any]
    method: Method  # the rate method that wrote it

    @property
    def steps(self) -> int:
        return int(self.report["steps"])

    def conversion_options(self, **common: Any) -> ConversionOptions:
        """The options the compile converted with, all given as the user's: its conversion settings (a searched
        threshold as the fraction it chose), percentile, granularity, seed, the input scale it used and its T.
        ``common``: ``batch_size``, ``backend``, ``progress``."""
        report = self.report
        settings = report.get("conversion_settings", {})
        values = {key: settings[key]["value"] for key in self.method.defaults if key in settings}
        threshold = settings.get("threshold", {})
        if "chosen" in threshold:
            values["threshold"] = str(threshold["chosen"])
        if report.get("input_scale") is not None:
            values["input_scale"] = report["input_scale"]
        fixed = {key: report[key] for key in ("percentile", "granularity", "seed") if key in report}
        return ConversionOptions(timesteps=self.steps, **fixed, **values, **common)

    def check_layers(self, conversion: Any, model: str) -> None:
        """An ``InputError`` unless ``conversion``'s spiking layers are the report's, thresholds included (the same
        model converted on the same calibration samples)."""
        ours = [(layer.name, np.max(layer.threshold)) for layer in conversion.layers]
        theirs = [(layer["name"], np.max(layer["threshold"])) for layer in self.report["layers"]]
        same_names = [n for n, _ in ours] == [n for n, _ in theirs]
        if not same_names or not np.allclose([t for _, t in ours], [t for _, t in theirs], rtol=1e-6, atol=0):
            raise InputError(
                f"{self.path}: its layers are not those of {model} converted on this --calib (report: "
                f"{_layers(theirs)}; now: {_layers(ours)}): pass the model and the --calib samples the compile used"
            )

    def record(self, advice: Mapping[str, Any]) -> dict[str, Any]:
        """The report with ``advice`` as its ``timestep_advice``, written with its report.html as one atomic
        write (nothing changes on failure); the new report."""
        from spikec.artifact import REPORT_HTML
        from spikec.fileio import atomic_write_files
        from spikec.report.html import render_html

        updated = {**self.report, SECTION: dict(advice)}
        page = render_html(updated).encode("utf-8")
        data = (json.dumps(updated, indent=2) + "\n").encode("utf-8")
        atomic_write_files({self.path: _writes(data), self.path.parent / REPORT_HTML: _writes(page)})
        return updated


def open_report(directory: Path) -> ReportToRecord:
    """The report.json of artifact ``directory``, checked before any work: of this schema version, written by a
    rate method, in a folder that can take a new file (else an ``InputError`` or ``OutputError``)."""
    from spikec.artifact import REPORT
    from spikec.methods import METHODS
    from spikec.report.schema import check_report
    from spikec.safe_read import read_json

    if not directory.is_dir():
        raise InputError(f"--report {directory}: no such directory; give the folder spikec compile -o wrote")
    path = directory / REPORT
    if not path.exists() and not path.is_symlink():
        raise InputError(f"--report {directory}: holds no report.json; give the folder spikec compile -o wrote")
    report = check_report(read_json(path, expect="spikec report.json"), path)
    method = METHODS.get(str(report["method"]))
    if not isinstance(method, RateMethod) or not report.get("layers"):
        raise InputError(
            f"{path}: compiled with --method {report['method']}, which does not rate-code ReLU layers: time-step "
            "advice applies to --method percentile, max or binary; compile with one of them"
        )
    _check_writable(directory)
    return ReportToRecord(path, report, method)


def _layers(layers: list[tuple[str, Any]]) -> str:
    return ", ".join(f"{name} θ={float(t):.4g}" for name, t in layers)


def _check_writable(directory: Path) -> None:
    """An ``OutputError`` now, before any long measurement, when ``directory`` cannot take a new file."""
    from spikec.fileio import output_error

    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise output_error(directory, err) from err


def _writes(data: bytes) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    return write
