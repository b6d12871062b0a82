"""`make demo`: a trained MNIST CNN compiled for every installed target and verified in each target's own software.

The model is the ONNX model zoo's MNIST CNN (examples/models/mnist-conv.onnx: Conv-ReLU-MaxPool twice, then MatMul;
raw 0..255 pixels; 98.91 % on the MNIST test set), the images the first 500 of the MNIST test set
(examples/models/mnist/). For each target `spikec targets` lists, the demo types what a user would, printing each
command before it runs it (through spikec's command line, in this process):

    spikec compile examples/models/mnist-conv.onnx --target T --calib demo-out/data/calib.npy --timesteps 16 \
        -o demo-out/T
    spikec verify demo-out/T --inputs demo-out/data/T-inputs.npy   # the artifact in T's software against spikec
    spikec eval examples/models/mnist-conv.onnx --target T --data demo-out/data/images.npy --labels ... --timesteps 16

A target that keeps the ANN (akida) compiles without --timesteps and measures its accuracy in `verify --labels`
(the chip's engine on every evaluation image); the interp target's artifact is what the interpreter runs, the
reference the others are checked against. A target whose software is not installed is listed as skipped with the
command that installs it. Then a table, and the report.html of each artifact. 57 s on a 2-core machine.

    python examples/demo.py [--out demo-out] [--timesteps 16] [--verify-images 4] [--eval-images 400]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spikec.cli import PRINTERS
from spikec.cli import main as spikec_main
from spikec.coding import encode
from spikec.data.mnist import load_mnist
from spikec.errors import SpikecError
from spikec.methods import UNTIMED
from spikec.plugins import load_target
from spikec.target import Target

HERE = Path(__file__).resolve().parent
MODEL = HERE / "models" / "mnist-conv.onnx"
MNIST = HERE / "models" / "mnist"
CALIB_IMAGES = 100  # test images 0..99 calibrate; the evaluation images follow them


def _lava() -> None:
    from spikec.targets.loihi2.lava_env import find_lava_python

    find_lava_python()


def _pynn() -> None:
    from spikec.targets.spinnaker2 import PYNN_INSTALL

    for module in ("pyNN", "brian2"):
        load_target("spinnaker2").require(module, PYNN_INSTALL)


def _akida() -> None:
    from spikec.targets.akida import INSTALL

    load_target("akida").require("akida", INSTALL)


# the software each chip target runs its artifact in: a check that raises SpikecError saying how to install it
SOFTWARE: dict[str, Callable[[], None]] = {"loihi2": _lava, "spinnaker2": _pynn, "akida": _akida}


@dataclasses.dataclass
class Row:
    """One target's outcome: ``status`` ok, skipped (its software is missing: ``note`` says how to install it)
    or failed (``note``: the error)."""

    target: str
    status: str = "ok"
    note: str = ""
    compile_s: float | None = None
    verified: str = "-"
    mismatches: int | None = None
    compared: int | None = None
    ann_accuracy: float | None = None
    accuracy: float | None = None
    report: Path | None = None


def shown(path: Path | str) -> str:
    """``path`` relative to the working directory where it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def spikec(*args: str | Path) -> tuple[int, dict[str, Any]]:
    """Print ``spikec ARGS`` as a user types it, run it through spikec's command line and print what it prints;
    the exit code and the command's ``--json`` result."""
    argv = [shown(a) if isinstance(a, Path) else a for a in args]
    print(f"\n$ spikec {shlex.join(argv)}", flush=True)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = spikec_main([*argv, "--json"])
    result = json.loads(captured.getvalue())
    for note in result.get("warnings", []):
        print(f"warning: {note}")
    if code == 0:
        PRINTERS[argv[0]](result)
    else:
        print(f"error: {result['error']}")
    sys.stdout.flush()
    return code, result


def software_missing(target: str) -> str | None:
    """Why ``target``'s own software cannot run here, with how to install it; None when it can (or has none)."""
    check = SOFTWARE.get(target)
    try:
        if check is not None:
            check()
    except SpikecError as err:
        return str(err)
    return None


def artifact_inputs(artifact: Path, images: np.ndarray, path: Path) -> Path:
    """``images`` (N, 1, 28, 28) as the compiled model takes them, saved to ``path``: as they are for a model kept an
    ANN, else encoded over its steps as its conversion chose (report.json)."""
    report = json.loads((artifact / "report.json").read_text(encoding="utf-8"))
    if report["method"] in UNTIMED:
        np.save(path, images)
        return path
    train = encode(images, report["steps"], report["encoding"], scale=report["input_scale"], seed=report["seed"])
    np.save(path, train)
    return path


def run_target(name: str, data: dict[str, Path], out: Path, options: argparse.Namespace) -> Row:
    """Compile the model for ``name``, verify the artifact in the target's software, measure its accuracy."""
    row = Row(name)
    missing = software_missing(name)
    if missing is not None:
        print(f"\n# {name}: skipped, its software is not installed: {missing}")
        return dataclasses.replace(row, status="skipped", note=missing)
    target = load_target(name)
    timed = [] if target.preferred_method in UNTIMED else ["--timesteps", str(options.timesteps)]
    artifact = out / name
    start = time.perf_counter()
    code, compiled = spikec("compile", MODEL, "--target", name, "--calib", data["calib"], *timed, "-o", artifact)
    if code:
        return dataclasses.replace(row, status="failed", note=compiled["error"])
    row.compile_s, row.report = time.perf_counter() - start, artifact / "report.html"
    images = np.load(data["images"])
    if type(target).verify is Target.verify:  # no software of its own: its artifact is what the interpreter runs
        row.verified = "reference"
    else:
        labelled = "labels" in target.verify_options  # its verify measures accuracy: on every evaluation image
        count = len(images) if labelled else options.verify_images
        inputs = artifact_inputs(artifact, images[:count], out / "data" / f"{name}-inputs.npy")
        scored = ["--labels", data["labels"]] if labelled else []
        code, verified = spikec("verify", artifact, "--inputs", inputs, *scored)
        if "compared" in verified:  # also when it found mismatches (exit 1)
            row.mismatches, row.compared = verified["mismatches"], verified["compared"]
            row.verified = f"{row.mismatches} / {row.compared:,} values, {verified['samples']} images"
        if code:
            return dataclasses.replace(row, status="failed", note=verified["error"])
        if "accuracy" in verified:
            accuracy = verified["accuracy"]
            row.ann_accuracy = accuracy["ann"]
            row.accuracy = next(value for key, value in accuracy.items() if key != "ann")
    if row.accuracy is None:
        code, evaluated = spikec(
            "eval", MODEL, "--target", name, "--data", data["images"], "--labels", data["labels"],
            "--calib", data["calib"], *timed,
        )  # fmt: skip
        if code:
            return dataclasses.replace(row, status="failed", note=evaluated["error"])
        row.ann_accuracy, row.accuracy = evaluated["ann"]["accuracy"], evaluated["snn"]["accuracy"]
    return row


def prepare_data(out: Path, eval_images: int) -> dict[str, Path]:
    """Calibration images, evaluation images and their labels as .npy files under ``out/data``."""
    images, labels = load_mnist(MNIST)
    if not 1 <= eval_images <= len(images) - CALIB_IMAGES:
        raise SystemExit(f"--eval-images must be 1..{len(images) - CALIB_IMAGES}, got {eval_images}")
    x = images[:, None].astype(np.float32)  # (N, 1, 28, 28): the CNN takes raw 0..255 pixels
    end = CALIB_IMAGES + eval_images
    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    data = {"calib": folder / "calib.npy", "images": folder / "images.npy", "labels": folder / "labels.npy"}
    np.save(data["calib"], x[:CALIB_IMAGES])
    np.save(data["images"], x[CALIB_IMAGES:end])
    np.save(data["labels"], labels[CALIB_IMAGES:end].astype(np.int64))
    return data


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def summary(rows: Sequence[Row], seconds: float) -> list[str]:
    """The table at the end: per target compile time, verify result, accuracy, report."""
    lines = [
        "",
        f"{'target':<11} {'compile':>8}  {'verify: mismatches / compared':<36} {'ANN':>8} {'compiled':>8}  report",
    ]
    for r in rows:
        if r.status == "skipped":
            lines.append(f"{r.target:<11} skipped: {r.note}")
            continue
        compile_s = "-" if r.compile_s is None else f"{r.compile_s:.1f} s"
        verified = r.verified if r.status == "ok" else f"FAILED: {r.note.splitlines()[0]}"
        report = shown(r.report) if r.report and r.report.is_file() else "-"
        ann, acc = percent(r.ann_accuracy), percent(r.accuracy)
        lines.append(f"{r.target:<11} {compile_s:>8}  {verified:<36} {ann:>8} {acc:>8}  {report}")
    lines.append(f"demo: {len(rows)} targets in {seconds:.0f} s")
    lines += [f"open {shown(r.report)}" for r in rows if r.report is not None and r.report.is_file()]
    return lines


def run(out: Path, *, timesteps: int = 16, verify_images: int = 4, eval_images: int = 400) -> list[Row]:
    """The demo: every installed target, one row each (printing as it goes)."""
    start = time.perf_counter()
    options = argparse.Namespace(timesteps=timesteps, verify_images=verify_images)
    data = prepare_data(out, eval_images)
    code, listed = spikec("targets")
    if code:
        raise SystemExit(f"spikec targets failed: {listed['error']}")
    rows = [
        Row(t["name"], "failed", t["error"]) if "error" in t else run_target(t["name"], data, out, options)
        for t in listed["targets"]  # a target that does not load: its error
    ]
    print("\n".join(summary(rows, time.perf_counter() - start)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="where the artifacts go (demo-out)")
    parser.add_argument("--timesteps", type=int, default=16, help="time steps of the converted SNN (16)")
    parser.add_argument("--verify-images", type=int, default=4, help="images each SNN target's software runs (4)")
    parser.add_argument("--eval-images", type=int, default=400, help="images accuracy is measured on (400)")
    args = parser.parse_args(argv)
    rows = run(args.out, timesteps=args.timesteps, verify_images=args.verify_images, eval_images=args.eval_images)
    return 1 if any(r.status == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
