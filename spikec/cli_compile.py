"""The ``compile`` and ``eval`` commands (registered in spikec.cli): arguments in, the driver's result printed.

``spikec compile MODEL --target T [--calib X.npy] --timesteps T -o DIR`` runs ``spikec.compiler.compile_model``
(conversion by ``--method``, the target's pipeline, legalize, emit; ``DIR`` is never half-written);
``spikec eval MODEL --data X.npy --labels y.npy --timesteps T`` runs ``spikec.compiler.evaluate``. The
methods and what each prints are in ``spikec.methods``. Progress goes to stderr (not with ``--json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spikec.cli_args import add_model_args, model_options, model_suffixes
from spikec.coding import DECODINGS, ENCODINGS, Progress
from spikec.convert import MAXPOOL as MAXPOOL_MODES
from spikec.methods import METHODS, ConversionOptions, method_help


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


def add_conversion_args(p: argparse.ArgumentParser, *, snn: bool) -> None:
    """The options of every method (``spikec.methods.ConversionOptions``); ``snn``: ``--method snn`` is offered."""
    add_model_args(p, f"the model ({model_suffixes()}): an ANN to convert" + (", or an SNN" if snn else ""))
    p.add_argument("--timesteps", type=int, required=True, metavar="T", help="time steps the SNN runs per sample")
    p.add_argument(
        "--method",
        choices=[name for name, m in METHODS.items() if m.calibrated or snn],
        help=f"{method_help(calibrated_only=not snn)} (default: percentile{' with --calib, else snn' if snn else ''})",
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
    p.add_argument("--levels", type=int, default=16, metavar="L", help="--method exact: levels per activation (16)")
    p.add_argument(
        "--max-spikes", type=int, default=1, metavar="K", help="--method exact: spikes per neuron and step (1)"
    )


def conversion_options(args: argparse.Namespace) -> ConversionOptions:
    return ConversionOptions(
        timesteps=args.timesteps, percentile=args.percentile, granularity=args.granularity, encoding=args.encoding,
        decoding=args.decoding, init=args.init, maxpool=args.maxpool, seed=args.seed, backend=args.backend,
        batch_size=args.batch_size, levels=args.levels, max_spikes=args.max_spikes,
        progress=None if args.json else stderr_progress(),
    )  # fmt: skip


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


# -- compile ------------------------------------------------------------------------------------------
def add_compile_args(p: argparse.ArgumentParser) -> None:
    add_conversion_args(p, snn=True)
    p.add_argument("--target", default="interp", help="target name (spikec targets lists them; default interp)")
    p.add_argument(
        "--calib", metavar="X.npy", help="calibration samples (N, *input shape); omit for a model already an SNN"
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="artifact directory (replaced atomically)")
    p.add_argument(
        "--inputs", metavar="X.npy", help="sample inputs (T, N, *shape) (.npz by input name) kept for spikec verify"
    )
    p.add_argument(
        "--pass-option",
        action="append",
        default=[],
        metavar="PASS.KEY=VALUE",
        help="an option for a pass of the target's pipeline, e.g. quantize.input_max=255 (repeatable)",
    )


def compile_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.compiler import CompileJob, compile_model

    job = CompileJob(
        model=args.model, output=Path(args.output), target=args.target, options=conversion_options(args),
        method=args.method, calib=_path(args.calib), inputs=_path(args.inputs),
        pass_options=tuple(args.pass_option), load_options=model_options(args),
    )  # fmt: skip
    return compile_model(job)


def print_compile(r: dict[str, Any]) -> None:
    files = ", ".join(r["files"])
    print(f"compiled {r['model']} for {r['target']} -> {r['output']} ({files}), method {r['method']}, T={r['steps']}")
    for step in r["pipeline"]:
        reason = f" ({step['reason']})" if "reason" in step else ""
        print(f"  pass {step['pass']}: {step['status']}{reason}")
    for line in METHODS[r["method"]].compile_lines(r):
        print(line)


# -- eval -----------------------------------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    add_conversion_args(p, snn=False)
    p.add_argument("--data", required=True, metavar="X.npy", help="samples (N, *input shape)")
    p.add_argument("--labels", required=True, metavar="y.npy", help="class indices (N,)")
    p.add_argument(
        "--calib", metavar="C.npy", help="calibration samples (default: the first min(1000, N/10) of --data)"
    )


def eval_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.compiler import EvalJob, evaluate

    job = EvalJob(
        model=args.model, data=Path(args.data), labels=Path(args.labels), options=conversion_options(args),
        method=args.method, calib=_path(args.calib), load_options=model_options(args),
    )  # fmt: skip
    return evaluate(job)


def print_eval(r: dict[str, Any]) -> None:
    source = r["calibration"]["source"]
    print(f"evaluated {r['model']} on {r['samples']} samples, method {r['method']} (calibration: {source})")
    for line in METHODS[r["method"]].eval_lines(r):
        print(line)
