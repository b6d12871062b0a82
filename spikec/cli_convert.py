"""The ``compile`` and ``eval`` commands (registered in spikec.cli): ANN → SNN conversion from the shell.

``spikec compile MODEL --target interp --calib X.npy --timesteps T -o DIR`` writes ``DIR/model.sir``
(+ sidecar) and ``DIR/report.json``, building everything in a temporary directory beside ``DIR`` and
renaming it into place, so ``DIR`` is never half-written. ``spikec eval MODEL --data X.npy --labels
y.npy --timesteps T`` converts and prints the accuracy of the ANN and of the SNN and each layer's drift.
Progress goes to stderr (not with ``--json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spikec.cli_args import add_model_args, model_options
from spikec.cli_exact import add_exact_args, compile_exact, eval_exact, print_compile_exact, print_eval_exact
from spikec.coding import DECODINGS, ENCODINGS, Progress, as_samples
from spikec.convert import MAXPOOL as MAXPOOL_MODES
from spikec.errors import InputError, SpikecError
from spikec.ir.structure import host_side_notes

if TYPE_CHECKING:
    from spikec.ir import Graph
    from spikec.target import Target

REPORT = "report.json"


# -- shared options and helpers ---------------------------------------------------------------------
def add_conversion_args(p: argparse.ArgumentParser) -> None:
    add_model_args(p, "the ANN (.onnx, .pt, .nir, .sir)")
    p.add_argument("--timesteps", type=int, required=True, metavar="T", help="time steps the SNN runs per sample")
    p.add_argument(
        "--method",
        choices=["percentile", "max", "exact", "binary"],
        default="percentile",
        help="activation scale statistic (rate coding), or exact: quantized ANN + spike-equivalent SNN, "
        "or binary: a Spikformer-style transformer to 0/1 spikes only (spikec.convert_binary)",
    )
    p.add_argument("--percentile", type=float, default=99.9, help="percentile of positive activations (99.9)")
    p.add_argument("--granularity", choices=["layer", "channel"], default="layer", help="one scale per layer/channel")
    p.add_argument("--encoding", choices=ENCODINGS, default="direct", help="direct analog current, or poisson spikes")
    p.add_argument("--decoding", choices=DECODINGS, default="membrane", help="integrator membrane, or spike counts")
    p.add_argument("--init", type=float, default=0.5, help="initial membrane as a fraction of threshold (0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the poisson encoder")
    p.add_argument(
        "--maxpool",
        choices=sorted(MAXPOOL_MODES),
        default="rate",
        help="max-pooling in the SNN: rate (max of counts, host-side), current, or spikes (OR of spikes, on-chip)",
    )
    p.add_argument(
        "--backend", choices=["numpy", "torch"], default="numpy", help="interpreter for SNN runs and exact calibration"
    )
    p.add_argument("--batch-size", type=int, default=128)
    add_exact_args(p)


def load_array(path: str, option: str) -> np.ndarray:
    """A numeric .npy array for ``option`` (never unpickled)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{option} {path}: no such file")
    try:
        data = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{option} {path}: not a numpy .npy file (object arrays are refused): {err}") from None
    if not isinstance(data, np.ndarray):
        data.close()
        raise InputError(f"{option} {path}: give one array as .npy, not an .npz archive")
    return data


def stderr_progress() -> Progress:
    """Progress lines on stderr: rewritten in place on a terminal, one per tenth otherwise."""
    shown: dict[str, int] = {}
    tty = sys.stderr.isatty()

    def show(stage: str, done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tty:
            print(f"\r{stage}: {done}/{total} samples", end="\n" if done >= total else "", file=sys.stderr, flush=True)
        elif shown.get(stage, -1) < tenth:
            shown[stage] = tenth
            print(f"{stage}: {done}/{total} samples", file=sys.stderr, flush=True)

    return show


def _convert(args: argparse.Namespace, graph: Any, calib: np.ndarray, *, rates: bool) -> tuple[Any, Any]:
    from spikec.convert import convert
    from spikec.convert_binary import convert_binary

    if args.method == "binary":  # percentile statistic, layer granularity; encoding direct = IF encoding layer
        return convert_binary(
            graph, calib, timesteps=args.timesteps, percentile=args.percentile, encoding=args.encoding,
            decoding=args.decoding, init=args.init, seed=args.seed, backend=args.backend,
            batch_size=args.batch_size, measure_rates=rates, progress=None if args.json else stderr_progress(),
        )  # fmt: skip

    return convert(
        graph,
        calib,
        timesteps=args.timesteps,
        method=args.method,
        percentile=args.percentile,
        granularity=args.granularity,
        encoding=args.encoding,
        decoding=args.decoding,
        init=args.init,
        maxpool=args.maxpool,
        seed=args.seed,
        backend=args.backend,
        batch_size=args.batch_size,
        measure_rates=rates,
        progress=None if args.json else stderr_progress(),
    )


def load_ann(args: argparse.Namespace) -> Any:
    """The model of ``args``; a load error names the file (same error, message prefixed)."""
    from spikec.models import load_model

    path = args.model
    try:
        return load_model(Path(path), **model_options(args))
    except SpikecError as err:
        if path not in str(err):
            err.args = (f"{path}: {err}",)
        raise


def _check_options(args: argparse.Namespace) -> None:
    if args.timesteps < 1:
        raise SpikecError(f"--timesteps must be >= 1, got {args.timesteps}")
    if args.batch_size < 1:
        raise SpikecError(f"--batch-size must be >= 1, got {args.batch_size}")


# -- compile ------------------------------------------------------------------------------------------
def replace_directory(target: Path, build: Callable[[Path], None]) -> None:
    """Run ``build(tmp)`` on a fresh directory beside ``target``, then rename it to ``target``.

    A previous artifact at ``target`` (a directory holding report.json, or an empty one) is replaced;
    anything else there is refused. On failure the temporary directory is removed and ``target`` is
    left as it was.
    """
    if target.exists() and not (target.is_dir() and (not any(target.iterdir()) or (target / REPORT).is_file())):
        raise SpikecError(f"{target} exists and is not a spikec artifact directory; choose another -o or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        build(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.rename(target, old / target.name)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def prepare_compile(args: argparse.Namespace) -> tuple[Path, Target, Graph, np.ndarray]:
    """Check ``-o``, load the target, the calibration set and the ANN (errors name the file before any work)."""
    from spikec.plugins import load_target

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise SpikecError(f"-o {out}: exists and is not a directory")
    target = load_target(args.target)
    calib = load_array(args.calib, "--calib")
    graph = load_ann(args)
    return out, target, graph, as_samples(graph, calib, f"--calib {args.calib}")


def sample_feeds(graph: Graph, path: str | None) -> dict[str, np.ndarray]:
    """``--inputs X.npy`` (T, N, *shape) as the graph's feeds by input name (empty without a path)."""
    from spikec.interp.interpreter import prepare_inputs

    if path is None:
        return {}
    try:
        feeds, _, _ = prepare_inputs(graph, load_array(path, "--inputs"))
    except SpikecError as err:
        raise InputError(f"--inputs {path}: {err}") from None
    return feeds


def write_artifact(
    out: Path,
    target: Target,
    snn: Graph,
    report: dict[str, Any],
    pass_options: list[str] | None = None,
    sample_inputs: str | None = None,
) -> list[str]:
    """Lower (the target's pipeline, with ``--pass-option``s), legalize and emit ``snn`` with ``report.json``
    into ``out``, atomically. The files written. A ``report.json`` the target emitted is kept under ``"artifact"``.
    ``sample_inputs`` (``--inputs X.npy``, (T, N, *shape)) is kept as ``inputs.npz``, ``spikec verify``'s default.
    """
    feeds = sample_feeds(snn, sample_inputs)
    lowered = target.lower(snn, pass_options or ())
    lowered = dataclasses.replace(lowered, graph=target.legalize(lowered.graph))
    snn, pipeline = lowered.graph, [dict(step) for step in lowered.log]
    files: list[str] = []

    def build(tmp: Path) -> None:
        artifact = target.emit(lowered, tmp)
        if feeds:
            np.savez_compressed(tmp / "inputs.npz", **feeds)  # type: ignore[arg-type]
        emitted = json.loads((tmp / REPORT).read_text(encoding="utf-8")) if (tmp / REPORT).is_file() else None
        full = {**report, "host_side": host_side_notes(snn), **({"pipeline": pipeline} if pipeline else {})}
        full |= {"artifact": emitted} if emitted else {}
        (tmp / REPORT).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
        files.extend(sorted({*artifact.files, REPORT, *(["inputs.npz"] if feeds else [])}))

    replace_directory(out, build)
    return files


def compile_command(args: argparse.Namespace) -> dict[str, Any]:
    if args.calib is None:  # an SNN already (netx .net, Loihi .sir): lowered by the target, not converted
        from spikec.cli_compile_snn import compile_snn

        return compile_snn(args)
    _check_options(args)
    if args.method == "exact":
        return compile_exact(args)
    out, target, graph, samples = prepare_compile(args)
    snn, report = _convert(args, graph, samples, rates=True)
    data = {"model": args.model, "target": target.name, **report.to_dict()}
    files = write_artifact(out, target, snn, data, args.pass_option, args.inputs)
    return {
        "model": args.model,
        "target": target.name,
        "output": str(out),
        "files": files,
        "timesteps": report.timesteps,
        "calibration_samples": report.calibration_samples,
        "layers": [layer.to_dict() for layer in report.layers],
    }


def print_compile(r: dict[str, Any]) -> None:
    if r.get("method") == "exact":
        return print_compile_exact(r)
    if r.get("method") == "snn":
        from spikec.cli_compile_snn import print_compile_snn

        return print_compile_snn(r)
    print(f"compiled {r['model']} for {r['target']} -> {r['output']} ({', '.join(r['files'])}), T={r['timesteps']}")
    print(f"  {'layer':<16} {'threshold':>12} {'spike rate':>11}  origin")
    for layer in r["layers"]:
        th = layer["threshold"]
        shown = f"{th:.4g}" if isinstance(th, float) else f"{len(th)} channels"
        rate = "-" if layer["spike_rate"] is None else f"{layer['spike_rate']:.4f}"
        print(f"  {layer['name']:<16} {shown:>12} {rate:>11}  {layer['origin']}")


def add_compile_args(p: argparse.ArgumentParser) -> None:
    add_conversion_args(p)
    p.add_argument("--target", default="interp", help="target name (spikec targets lists them)")
    p.add_argument(
        "--calib",
        metavar="X.npy",
        help="calibration samples (N, *input shape); omit for a model that is already an SNN",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="artifact directory (replaced atomically)")
    p.add_argument("--inputs", metavar="X.npy", help="sample inputs (T, N, *shape) kept for spikec verify")
    p.add_argument(
        "--pass-option",
        action="append",
        default=[],
        metavar="PASS.KEY=VALUE",
        help="an option for a pass of the target's pipeline, e.g. quantize.input_max=255 (repeatable)",
    )


# -- eval -----------------------------------------------------------------------------------------------
def eval_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.compare import check_labels, compare

    _check_options(args)
    if args.method == "exact":
        return eval_exact(args)
    data = load_array(args.data, "--data")
    labels = load_array(args.labels, "--labels")
    calib = None if args.calib is None else load_array(args.calib, "--calib")
    graph = load_ann(args)
    x = as_samples(graph, data, f"--data {args.data}")
    y = check_labels(labels, x.shape[0], f"--labels {args.labels}")
    if calib is None:  # calibrate on the head of the data and evaluate on the rest
        k = min(1000, x.shape[0] // 10)
        if k < 1:
            raise InputError(f"--data {args.data} holds {x.shape[0]} samples: too few to split; pass --calib")
        calib, x, y, source = x[:k], x[k:], y[k:], f"the first {k} samples of --data (not evaluated)"
    else:
        calib, source = as_samples(graph, calib, f"--calib {args.calib}"), args.calib
    snn, report = _convert(args, graph, calib, rates=False)
    progress = None if args.json else stderr_progress()
    result = compare(graph, snn, report, x, y, backend=args.backend, batch_size=args.batch_size, progress=progress)
    return {
        "model": args.model,
        **result.to_dict(),
        "calibration": {"samples": report.calibration_samples, "source": source},
        "settings": {k: getattr(report, k) for k in ("method", "percentile", "granularity", "encoding", "decoding")},
    }


def print_eval(r: dict[str, Any]) -> None:
    if r.get("method") == "exact":
        return print_eval_exact(r)
    snn = r["snn"]
    print(f"evaluated {r['model']} on {r['samples']} samples (calibration: {r['calibration']['source']})")
    print(f"  ANN accuracy {100 * r['ann']['accuracy']:.2f}%")
    steps = "  ".join(f"T={t}: {100 * a:.2f}%" for t, a in snn["by_timesteps"].items())
    print(
        f"  SNN accuracy {100 * snn['accuracy']:.2f}% at T={snn['timesteps']} (loss {r['loss_pp']:.2f} pp)  [{steps}]"
    )
    print(f"  {'layer':<16} {'drift':>7} {'error':>7} {'rate':>7}  origin   (drift: correlation ANN vs SNN, 1 = none)")
    for layer in r["layers"]:
        drift = "-" if layer["drift"] is None else f"{layer['drift']:.4f}"
        error = "-" if layer["error"] is None else f"{layer['error']:.4f}"
        print(f"  {layer['name']:<16} {drift:>7} {error:>7} {layer['rate']:>7.4f}  {layer['origin']}")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    add_conversion_args(p)
    p.add_argument("--data", required=True, metavar="X.npy", help="samples (N, *input shape)")
    p.add_argument("--labels", required=True, metavar="y.npy", help="class indices (N,)")
    p.add_argument(
        "--calib", metavar="C.npy", help="calibration samples (default: the first min(1000, N/10) of --data)"
    )
