"""The ``compile`` and ``eval`` commands (registered in spikec.cli): arguments in, the driver's result printed.

``spikec compile MODEL --target T [--calib X.npy] --timesteps T -o DIR`` runs ``spikec.compiler.compile_model``
(conversion by ``--method``, the target's pipeline, legalize, emit; ``DIR`` is never half-written), with the
``--pass-option``s of its pipeline, some of which a target offers as flags of its own (``cli_args.add_target_flags``);
``spikec eval MODEL --data X.npy --labels y.npy --timesteps T`` runs ``spikec.compiler.evaluate``. The
methods and what each prints are in ``spikec.methods``; ``compile`` closes with a few summary lines
(``summary_lines``). Progress bars go to stderr on a terminal only (``spikec.progress``: none with ``--json`` or
off a terminal), and so do the wall-clock times (with ``--json`` under ``timings`` and ``seconds``);
``report.json`` holds no wall clock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spikec.cli_args import add_model_args, add_target_flags, model_options, model_suffixes, target_flag_options
from spikec.coding import DECODINGS, ENCODINGS
from spikec.convert import MAXPOOL as MAXPOOL_MODES
from spikec.convert import RESETS
from spikec.errors import SpikecError, UsageError
from spikec.methods import METHODS, ConversionOptions, method_help
from spikec.progress import stderr_progress
from spikec.report.sections import METRIC_SAMPLES


def add_conversion_args(p: argparse.ArgumentParser, *, snn: bool) -> None:
    """The options of every method (``spikec.methods.ConversionOptions``); ``snn``: ``--method snn`` is offered."""
    add_model_args(p, f"the model ({model_suffixes()}): an ANN to convert" + (", or an SNN" if snn else ""))
    p.add_argument(
        "--timesteps", type=int, metavar="T", help="time steps the SNN runs per sample (required, except --method ann)"
    )
    p.add_argument(
        "--method",
        choices=[name for name, m in METHODS.items() if m.calibrated or snn],
        help=f"{method_help(calibrated_only=not snn)} (default: percentile{' with --calib, else snn' if snn else ''})",
    )
    p.add_argument("--percentile", type=float, default=99.9, help="percentile of positive activations (99.9)")
    p.add_argument("--granularity", choices=["layer", "channel"], default="layer", help="one scale per layer/channel")
    chosen = " (default: the target's choice, else %s; report.json's conversion_settings says which and why)"
    p.add_argument(
        "--encoding", choices=ENCODINGS,
        help="direct analog current, poisson spikes, or graded 8-bit integers" + chosen % "direct",
    )  # fmt: skip
    p.add_argument("--decoding", choices=DECODINGS, help="integrator membrane, or spike counts" + chosen % "membrane")
    p.add_argument(
        "--reset", choices=sorted(RESETS),
        help="what a spike does to the membrane: subtract the threshold, or reset it to zero" + chosen % "subtract",
    )  # fmt: skip
    p.add_argument(
        "--threshold", metavar="F|auto",
        help="IF threshold as a fraction of each layer's activation scale, or auto: the fraction whose SNN agrees "
        "best with the ANN on the calibration samples at --timesteps" + chosen % "1, auto with --reset zero",
    )  # fmt: skip
    p.add_argument(
        "--init", type=float,
        help="initial membrane as a fraction of threshold" + chosen % "0.5, 0 with --reset zero",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the poisson encoder")
    p.add_argument(
        "--maxpool",
        choices=sorted(MAXPOOL_MODES),
        help="max-pooling in the SNN: rate (max of counts), current, or spikes (OR of spikes)" + chosen % "rate",
    )
    p.add_argument(
        "--backend", choices=["numpy", "torch"], default="numpy", help="interpreter for SNN runs and exact calibration"
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--input-scale", type=float, metavar="X",
        help="the input value the largest graded integer (255) or a poisson spike stands for" + chosen % "the "
        "calibration samples' largest |x|",
    )  # fmt: skip
    p.add_argument(
        "--attention", choices=["compensated", "per-step"],
        help="--method binary: each attention multiplies spike counts (compensated: the attention of the rates, "
        "exactly) or spike trains per step (Spikformer's)" + chosen % "compensated",
    )  # fmt: skip
    p.add_argument("--levels", type=int, default=16, metavar="L", help="--method exact: levels per activation (16)")
    p.add_argument(
        "--max-spikes", type=int, default=1, metavar="K", help="--method exact: spikes per neuron and step (1)"
    )


def conversion_options(args: argparse.Namespace) -> ConversionOptions:
    if args.timesteps is not None and args.timesteps < 1:
        raise SpikecError(f"--timesteps must be >= 1, got {args.timesteps}")
    timesteps = 0 if args.timesteps is None else args.timesteps  # 0: not given (only --method ann runs without)
    return ConversionOptions(
        timesteps=timesteps, percentile=args.percentile, granularity=args.granularity, encoding=args.encoding,
        decoding=args.decoding, init=args.init, maxpool=args.maxpool, reset=args.reset, threshold=args.threshold,
        attention=args.attention, input_scale=args.input_scale, seed=args.seed, backend=args.backend,
        batch_size=args.batch_size, levels=args.levels, max_spikes=args.max_spikes,
        progress=stderr_progress(),
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
        help="an option for a pass of the target's pipeline, e.g. quantize.input_max=255 (repeatable); a target may "
        "offer some as flags of its own: the 'target NAME only' ones at the end of this list",
    )
    p.add_argument(
        "--metric-samples", type=int, default=METRIC_SAMPLES, metavar="N",
        help=f"calibration samples report.json's metrics run on, N x T steps in the interpreter ({METRIC_SAMPLES}; "
        "0: only the static ones)",
    )  # fmt: skip
    add_target_flags(p)


def compile_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.compiler import CompileJob, compile_model

    if args.metric_samples < 0:
        raise UsageError(f"--metric-samples must be >= 0, got {args.metric_samples}")
    pass_options = target_flag_options(args, args.target, args.pass_option)  # a target's flags are pass options
    job = CompileJob(
        model=args.model, output=Path(args.output), target=args.target, options=conversion_options(args),
        method=args.method, calib=_path(args.calib), inputs=_path(args.inputs), pass_options=tuple(pass_options),
        load_options=model_options(args), metric_samples=args.metric_samples,
    )  # fmt: skip
    return compile_model(job)


def settings_lines(r: dict[str, Any]) -> list[str]:
    """A line per conversion setting the user or the target chose, or chosen on the data (``auto``); spikec's plain
    defaults are not shown."""
    lines = []
    for key, setting in r.get("conversion_settings", {}).items():
        if setting["by"] != "spikec" or "chosen" in setting:
            value = f"{setting['value']} -> {setting['chosen']}" if "chosen" in setting else setting["value"]
            why = f": {setting['reason']}" if "reason" in setting else ""
            lines.append(f"  {key} = {value} ({setting['by']}{why})")
    return lines


def print_compile(r: dict[str, Any]) -> None:
    files = ", ".join(r["files"])
    steps = f", T={r['steps']}" if r["steps"] else ""
    print(f"compiled {r['model']} for {r['target']} -> {r['output']} ({files}), method {r['method']}{steps}")
    for step in r["pipeline"]:
        reason = f" ({step['reason']})" if "reason" in step else ""
        print(f"  pass {step['pass']}: {step['status']}{reason}")
    for line in settings_lines(r):
        print(line)
    for note in r.get("host_side", []):
        print(f"  host side: {note}")
    for line in [*METHODS[r["method"]].compile_lines(r), *summary_lines(r.get("summary") or {})]:
        print(line)
    if r.get("timings"):  # wall clock: on stderr, never in the artifact (identical inputs, identical bytes)
        total = sum(t["seconds"] for t in r["timings"])
        slowest = sorted(r["timings"], key=lambda t: -t["seconds"])[:3]
        shown = ", ".join(f"{t['step']} {t['seconds']:.2f} s" for t in slowest)
        whole = f"{r['seconds']:.2f} s in all; " if "seconds" in r else ""
        print(f"timing: {whole}{total:.2f} s in {len(r['timings'])} passes (slowest: {shown})", file=sys.stderr)


def _count(n: int, word: str) -> str:
    """``_count(1, "cores")`` is '1 core', ``_count(1200, "PEs")`` '1,200 PEs'."""
    return f"{n:,} {word.removesuffix('s') if n == 1 else word}"


def summary_lines(s: dict[str, Any]) -> list[str]:
    """The few lines closing ``spikec compile``'s output (``compile_summary``): the network, where it was placed,
    the target's own lines and the page to open."""
    if not s:
        return []
    parts = [
        f"{_count(s[what], what)} in {_count(s[f'{what[:-1]}_layers'], 'layers')}"
        for what in ("neurons", "synapses")
        if s[what]  # an ANN kept as it is (--method ann) has no neurons
    ]
    lines = [f"network: {', '.join(parts)}"] if parts else []
    if "cores" in s:
        lines.append(f"placement: {_count(s['cores'], s['core_unit'])} on {_count(s['chips'], 'chips')}")
    return [*lines, *s["lines"], f"report: {s['report_html']}"]


# -- eval -----------------------------------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    add_conversion_args(p, snn=False)
    p.add_argument("--data", required=True, metavar="X.npy", help="samples (N, *input shape)")
    p.add_argument("--labels", required=True, metavar="y.npy", help="class indices (N,)")
    p.add_argument(
        "--calib", metavar="C.npy", help="calibration samples (default: the first min(1000, N/10) of --data)"
    )
    p.add_argument(
        "--target", help="convert with the settings this target chooses for its chip (e.g. its reset), as compile does"
    )


def eval_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.compiler import EvalJob, evaluate

    job = EvalJob(
        model=args.model, data=Path(args.data), labels=Path(args.labels), options=conversion_options(args),
        method=args.method, calib=_path(args.calib), load_options=model_options(args), target=args.target,
    )  # fmt: skip
    return evaluate(job)


def print_eval(r: dict[str, Any]) -> None:
    source = r["calibration"]["source"]
    print(f"evaluated {r['model']} on {r['samples']} samples, method {r['method']} (calibration: {source})")
    for line in [*settings_lines(r), *METHODS[r["method"]].eval_lines(r)]:
        print(line)
