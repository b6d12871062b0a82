"""Walk the corpus: each (model, export variant) through the commands a user types first.

For one case, in its own directory: export ``model.onnx`` (the exporter's failure is recorded as the
exporter's); run it in onnxruntime on a random input ``x.npy``; ``spikec import model.onnx -o model.sir``;
``spikec run model.onnx --input x.npy -o out.npz``, compared with onnxruntime (|spikec − ort| ≤ RTOL·|ort| +
ATOL·max|ort|); and ``spikec eval model.onnx --data d.npy --labels y.npy --calib c.npy --timesteps 32`` where
the labels are onnxruntime's argmax, so the SNN's accuracy is its agreement with the ANN. Every command runs
in process through ``spikec.cli.main``. A step that exits 1 is *refused* with its one-line error; an
exception out of ``main`` is a *crash*; numbers that differ are a *mismatch*.

    python -m tests.corpus.walk                        # the whole walk: one line per case, totals, time
    python -m tests.corpus.walk vit                    # every variant of one model
    python -m tests.corpus.walk vit dynamo-b2          # one case, with its full error and eval summary
    python -m tests.corpus.walk vit dynamo-b2 --export vit.onnx   # only write the export
    python -m tests.corpus.walk ... --workdir DIR      # keep the case directories (default: a temp dir)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .export import VARIANTS, ExportError, Variant, export
from .models import MODELS, CorpusModel

RTOL, ATOL = 1e-4, 1e-5  # ATOL is relative to the output's scale: atol = ATOL · max|ort|
TIMESTEPS = 32
DYNAMIC_RUN_BATCH = 3  # a dynamic export is run on a batch it was not exported with
EVAL_SAMPLES, CALIB_SAMPLES = 8, 4

# what each status means (the doc's legend, in order)
STATUSES = {
    "converted": "imported, matches onnxruntime, and `spikec eval` converted and ran it",
    "imported": "imported and matches onnxruntime; `spikec eval` refused the conversion",
    "refused": "`spikec import` or `spikec run` refused it (exit 1, one-line error)",
    "export-failed": "the exporter (or onnxruntime on its output) failed; not spikec's failure",
    "mismatch": "spikec's numbers differ from onnxruntime's (a bug)",
    "crash": "a spikec command raised an exception instead of a one-line error (a bug)",
}
FAILING = ("mismatch", "crash")


@dataclasses.dataclass
class CaseResult:
    """One (model, variant). ``step``: where a refusal, mismatch or crash happened (export, import, run,
    eval); ``error``: its one-line message. ``rel_error``: max|spikec − ort| / max|ort| of ``spikec run``.
    ``agreement``: SNN argmax = ANN argmax on (k, n) samples; ``min_drift``: the lowest per-layer drift."""

    model: str
    variant: str
    status: str = "converted"
    step: str = ""
    error: str = ""
    opset: int | None = None  # the export's default-domain opset
    rel_error: float | None = None
    agreement: tuple[int, int] | None = None
    min_drift: float | None = None
    eval_error: str = ""
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.model}/{self.variant}"


def cases() -> list[tuple[str, str]]:
    """Every (model, variant) of the walk: the walked variants whose families include the model's."""
    return [(m.name, v.name) for m in MODELS.values() for v in VARIANTS.values() if v.walked and m.family in v.families]


# -- running spikec's commands in process --------------------------------------------------------
@dataclasses.dataclass
class Outcome:
    code: int
    stdout: str
    error: str  # the "error: ..." line (exit 1), or "Type: message" of an exception


def spikec(argv: list[str]) -> Outcome:
    """``spikec ARGV`` through ``spikec.cli.main`` with its stdout and stderr captured."""
    from spikec.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Exception as exc:  # a crash: spikec should have raised a SpikecError
        return Outcome(-1, out.getvalue(), f"{type(exc).__name__}: {first_line(str(exc))}")
    errors = [line.removeprefix("error: ") for line in err.getvalue().splitlines() if line.startswith("error: ")]
    return Outcome(code, out.getvalue(), errors[-1] if errors else "")


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else ""


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def stable(message: str, directory: Path) -> str:
    """``message`` without the case directory, terminal colours and memory addresses."""
    for prefix in (str(directory.resolve()), str(directory)):
        message = message.replace(prefix + "/", "").replace(prefix, ".")
    return _ADDRESS.sub("0x…", message)


# -- one case ------------------------------------------------------------------------------------------
class Walker:
    """Runs cases in ``workdir/<model>/<variant>/``, each once (results cached)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.results: dict[tuple[str, str], CaseResult] = {}

    def result(self, model: str, variant: str) -> CaseResult:
        key = (model, variant)
        if key not in self.results:
            self.results[key] = run_case(MODELS[model], VARIANTS[variant], self.workdir / model / variant)
        return self.results[key]

    def all(self) -> list[CaseResult]:
        return [self.result(m, v) for m, v in cases()]


def run_case(model: CorpusModel, variant: Variant, directory: Path) -> CaseResult:
    """Export, then import, run and eval, stopping at the first step that does not succeed."""
    directory.mkdir(parents=True, exist_ok=True)
    result = CaseResult(model.name, variant.name)
    with contextlib.chdir(directory), _timed(result, "export"):
        try:
            export(model, variant, Path("model.onnx"))
            session = _ort_session(Path("model.onnx"))
            result.opset = _opset(Path("model.onnx"))
        except ExportError as err:
            return _stop(result, "export-failed", "export", stable(str(err), directory))
    with contextlib.chdir(directory):
        _check(model, variant, session, result, directory)
    return result


def _check(model: CorpusModel, variant: Variant, session: Any, result: CaseResult, directory: Path) -> None:
    x = model.inputs(variant.batch or DYNAMIC_RUN_BATCH, seed=2)
    np.save("x.npy", x)
    with _timed(result, "import"):
        done = spikec(["import", "model.onnx", "-o", "model.sir"])
    if done.code != 0:
        _stop(result, "crash" if done.code < 0 else "refused", "import", stable(done.error, directory))
        return
    with _timed(result, "run"):
        done = spikec(["run", "model.onnx", "--input", "x.npy", "-o", "out.npz"])
    if done.code != 0:
        _stop(result, "crash" if done.code < 0 else "refused", "run", stable(done.error, directory))
        return
    want = _ort_run(session, x, variant.batch)
    with np.load("out.npz") as data:
        got = data[next(k for k in data.files if not k.startswith("trace/"))]
    problem = _compare(got, want)
    result.rel_error = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)) if not problem else None
    if problem:
        _stop(result, "mismatch", "run", problem)
        return
    with _timed(result, "eval"):
        _eval(model, variant, session, result, directory)


def _compare(got: np.ndarray, want: np.ndarray) -> str:
    """'' when ``got`` matches ``want`` within RTOL and ATOL·max|want|, else what differs."""
    if got.shape != want.shape:
        return f"output shape {got.shape}, onnxruntime's {want.shape}"
    scale = float(np.abs(want).max())
    if not np.allclose(got, want, rtol=RTOL, atol=ATOL * scale):
        rel = float(np.abs(got - want).max()) / max(scale, 1e-30)
        return f"max|spikec − onnxruntime| = {rel:.2e} × max|onnxruntime|"
    return ""


def _eval(model: CorpusModel, variant: Variant, session: Any, result: CaseResult, directory: Path) -> None:
    data, calib = model.inputs(EVAL_SAMPLES, seed=3), model.inputs(CALIB_SAMPLES, seed=4)
    labels = _ort_run(session, data, variant.batch).reshape(EVAL_SAMPLES, -1).argmax(axis=1)
    for name, array in (("d.npy", data), ("c.npy", calib), ("y.npy", labels)):
        np.save(name, array)
    argv = ["eval", "model.onnx", "--data", "d.npy", "--labels", "y.npy", "--calib", "c.npy"]
    done = spikec([*argv, "--timesteps", str(TIMESTEPS), "--json"])
    if done.code < 0:
        _stop(result, "crash", "eval", stable(done.error, directory))
        return
    report = json.loads(done.stdout)
    if not report["ok"]:
        result.status, result.step = "imported", "eval"
        result.eval_error = stable(report["error"], directory)
        return
    result.agreement = (round(report["snn"]["accuracy"] * report["samples"]), report["samples"])
    drifts = [layer["drift"] for layer in report["layers"] if layer["drift"] is not None]
    result.min_drift = min(drifts) if drifts else None


def _stop(result: CaseResult, status: str, step: str, error: str) -> CaseResult:
    result.status, result.step, result.error = status, step, error
    return result


@contextlib.contextmanager
def _timed(result: CaseResult, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[step] = time.perf_counter() - start


def _ort_session(path: Path) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # the exporter wrote a model onnxruntime cannot load
        raise ExportError(f"onnxruntime cannot load the export: {type(err).__name__}: {first_line(str(err))}") from err


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _ort_run(session: Any, x: np.ndarray, batch: int | None) -> np.ndarray:
    """onnxruntime's first output for ``x``, in chunks of a static ``batch``."""
    name = session.get_inputs()[0].name
    step = batch or len(x)
    return np.concatenate([session.run(None, {name: x[i : i + step]})[0] for i in range(0, len(x), step)])


# -- the command line ----------------------------------------------------------------------------------
def describe(r: CaseResult) -> str:
    """One line: status, where, the error; or the relative error and the eval summary."""
    text = f"{r.name:<30} {r.status:<13}"
    if r.status in ("refused", "export-failed", "mismatch", "crash"):
        return f"{text} [{r.step}] {r.error}"
    text += f" rel.err {r.rel_error:.1e}"
    if r.agreement is not None:
        drift = "-" if r.min_drift is None else f"{r.min_drift:.3f}"
        return f"{text}  eval: agreement {r.agreement[0]}/{r.agreement[1]}, min drift {drift}"
    return f"{text}  eval refused: {r.eval_error}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.walk", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", choices=sorted(MODELS), metavar="MODEL", help=", ".join(MODELS))
    parser.add_argument("variant", nargs="?", choices=list(VARIANTS), metavar="VARIANT", help=", ".join(VARIANTS))
    parser.add_argument("--export", metavar="PATH", help="only export MODEL with VARIANT to PATH")
    parser.add_argument("--workdir", metavar="DIR", help="keep each case's files in DIR/<model>/<variant>/")
    args = parser.parse_args(argv)
    if args.export:
        if not (args.model and args.variant):
            parser.error("--export needs MODEL and VARIANT")
        try:
            export(MODELS[args.model], VARIANTS[args.variant], Path(args.export))
        except ExportError as err:
            print(f"export failed: {err}", file=sys.stderr)
            return 1
        print(f"wrote {args.export}: {VARIANTS[args.variant].call}")
        return 0
    if args.variant:  # any combination on demand, walked or not
        selected = [(m, args.variant) for m in MODELS if args.model in (None, m)]
    else:
        selected = [(m, v) for m, v in cases() if args.model in (None, m)]
    with contextlib.ExitStack() as stack:
        workdir = Path(args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="corpus-")))
        walker, start = Walker(workdir.resolve()), time.perf_counter()
        counts: dict[str, int] = {}
        for model, variant in selected:
            r = walker.result(model, variant)
            counts[r.status] = counts.get(r.status, 0) + 1
            print(describe(r), flush=True)
        totals = ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
        print(f"{len(selected)} cases in {time.perf_counter() - start:.1f} s: {totals}")
        steps: dict[str, float] = {}
        for r in walker.results.values():
            for step, seconds in r.seconds.items():
                steps[step] = steps.get(step, 0.0) + seconds
        print("seconds by step: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
    return 1 if any(s in counts for s in FAILING) else 0


if __name__ == "__main__":
    sys.exit(main())
