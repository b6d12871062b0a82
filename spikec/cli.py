"""The ``spikec`` command line: a contract build pipelines script against.

Every command takes ``--json`` (one JSON object on stdout, a usage error's included) and ``--debug``;
exit 0 on success, 1 on a user error (bad model, unsupported, does not fit, an output that cannot be
written), 2 on bad usage, 3 on an internal error (any other exception: a bug in spikec, reported with
"please report" and, with ``--debug``, its traceback on stderr), 130 when interrupted. User errors never
print a traceback, and outputs are written atomically (``spikec.fileio``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from spikec import __version__, cli_check, cli_compile, cli_partition, cli_report, cli_timesteps, cli_verify
from spikec.cli_args import (
    FEATURES,
    add_model_args,
    installed_targets,
    layout_help,
    model_options,
    model_suffixes,
    target_with,
)
from spikec.errors import InputError, SpikecError
from spikec.fileio import model_files, refuse_overwrite
from spikec.ir.structure import host_side_notes
from spikec.pages import without_hugepage_advice
from spikec.progress import progress_bars
from spikec.registry import Registry

Command = Callable[[argparse.Namespace], dict[str, Any]]
COMMANDS: Registry[str, Command] = Registry("command")
command = COMMANDS.register


def output_files(path: Path) -> list[Path]:
    """The files writing a model to ``path`` may replace: ``path``, and a ``.sir``'s sidecar."""
    return [path, *([path.with_suffix(".npz")] if path.suffix.lower() == ".sir" else [])]


# -- import -------------------------------------------------------------------------------------
@command("import")
def _import(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.models import load_model, save_model

    model = Path(args.model)
    out = Path(args.output) if args.output else Path(model.stem + ".sir")
    refuse_overwrite("-o", output_files(out), model_files(model))
    graph = load_model(model, **model_options(args))
    save_model(graph, out)
    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        kinds[node.kind] = kinds.get(node.kind, 0) + 1
    return {
        "model": str(model),
        "output": str(out),
        "dt": graph.dt,
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "kinds": kinds,
        "inputs": {n: list(graph.nodes[n].feed_shape()) for n in graph.inputs},
        "outputs": {n: list(graph.types[n]) for n in graph.outputs},
        "host_side": host_side_notes(graph),
    }


def _print_import(r: dict[str, Any]) -> None:
    kinds = ", ".join(f"{k}×{v}" for k, v in r["kinds"].items())
    print(f"imported {r['model']} -> {r['output']}: {r['nodes']} nodes ({kinds}), {r['edges']} edges, dt={r['dt']:g}")
    print(f"  inputs {r['inputs']}  outputs {r['outputs']}")
    for note in r["host_side"]:
        print(f"  host side: {note}")


# -- run --------------------------------------------------------------------------------------------
def _inputs(specs: Sequence[str]) -> np.ndarray | dict[str, np.ndarray]:
    """``--input X.npy`` (or an .npz by input name), or ``--input NAME=X.npy`` per input."""
    from spikec.arrays import load_array, load_arrays

    if len(specs) == 1 and "=" not in specs[0]:
        return load_arrays(specs[0], "--input")
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep:
            raise InputError(f"--input {spec!r}: with several inputs, write NAME=FILE.npy")
        out[name] = load_array(file, "--input")
    return out


def _summarise(values: np.ndarray, timed: bool = True) -> dict[str, Any]:
    """Spike counts and steps for (T, batch, ...) spike trains; range (and argmax) otherwise."""
    binary = timed and bool(np.isin(values, (0.0, 1.0)).all())
    entry: dict[str, Any] = {"shape": list(values.shape), "binary": binary}
    if not timed and values.ndim == 2:
        entry["argmax"] = [int(i) for i in values.argmax(axis=1)[:100]]
    if binary:
        entry["spikes"] = int(values.sum())
        entry["rate"] = float(values.mean())
        if values[0, 0].size <= 4:
            entry["spike_steps"] = [int(t) for t in np.nonzero(values[:, 0].reshape(values.shape[0], -1).any(1))[0]]
    else:
        entry["min"], entry["max"] = float(values.min()), float(values.max())
    return entry


@command("run")
def _run(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.fileio import save_npz
    from spikec.interp import evaluate, run
    from spikec.models import load_model

    if args.output:
        given = [spec.partition("=")[2] or spec for spec in args.input]
        refuse_overwrite("-o", [args.output], [*model_files(args.model), *given])
    layout = None if args.layout == "spikec" else target_with(args.layout, "array layout", "--layout")
    fixed = None if args.fixed is None else target_with(args.fixed, "fixed-point mode", "--fixed")
    graph = load_model(Path(args.model), **model_options(args))
    inputs = _inputs(args.input)
    if layout is not None:  # the target's layout -> spikec's (T, batch, *shape)
        inputs = layout.inputs_from_layout(graph, inputs, args.steps)
    if fixed is not None:
        named = inputs if isinstance(inputs, dict) else {name: inputs for name in graph.inputs[:1]}
        fixed.check_fixed(graph, named)
    if graph.is_spiking:
        result = run(graph, inputs, steps=args.steps, backend=args.backend, trace=args.trace)
    else:  # an ANN: one evaluation, (batch, *shape) in and out — the oracle for the front ends
        if args.steps is not None:
            raise InputError("--steps applies to spiking graphs; this graph has no spiking nodes and is evaluated once")
        result = evaluate(graph, inputs, backend=args.backend, trace=args.trace)
        result.steps = 0
    report: dict[str, Any] = {
        "model": args.model,
        "mode": "snn" if graph.is_spiking else "ann",
        "steps": result.steps,
        "batch": result.batch,
        "backend": result.backend + (f", fixed {args.fixed}" if args.fixed else ""),
        "layout": args.layout,
        "outputs": {n: _summarise(v, graph.is_spiking) for n, v in result.outputs.items()},
        "notes": result.notes,
    }
    if args.trace:
        report["traces"] = {
            k: _summarise(v, graph.is_spiking) for k, v in result.traces.items() if k not in result.outputs
        }
    if args.output:
        arrays = dict(result.outputs)
        arrays.update({f"trace/{k}": v for k, v in result.traces.items()})
        if layout is not None:
            arrays = {k: layout.output_to_layout(v) for k, v in arrays.items()}
        save_npz(args.output, arrays)
        report["output_file"] = args.output
    return report


def _print_run(r: dict[str, Any]) -> None:
    what = f"for {r['steps']} steps" if r["mode"] == "snn" else "once as an ANN"
    print(f"ran {r['model']} {what}, batch {r['batch']} ({r['backend']})")
    for note in r["notes"]:
        print(f"  note: {note}")
    for title, table in (("output", r["outputs"]), ("trace", r.get("traces", {}))):
        for name, e in table.items():
            if e["binary"]:
                steps = f"  steps {e['spike_steps']}" if "spike_steps" in e else ""
                print(f"  {title} {name:<16} {tuple(e['shape'])}  spikes {e['spikes']}  rate {e['rate']:.4f}{steps}")
            else:
                argmax = f"  argmax {e['argmax'][:10]}" if "argmax" in e else ""
                print(f"  {title} {name:<16} {tuple(e['shape'])}  range [{e['min']:.6g}, {e['max']:.6g}]{argmax}")
    if "output_file" in r:
        print(f"wrote {r['output_file']}")


# -- opt ------------------------------------------------------------------------------------------------
@command("opt")
def _opt(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.models import load_model, save_model
    from spikec.pipeline import PassManager

    manager = PassManager(args.passes)  # unknown passes/options fail before any work
    out = Path(args.output) if args.output else Path(Path(args.model).stem + ".opt.sir")
    refuse_overwrite("-o", output_files(out), model_files(args.model))
    graph = load_model(Path(args.model), **model_options(args))
    reports: dict[str, Any] = {}  # a pass's report (e.g. quantize's per-layer fields), by pass name
    lines: dict[str, list[str]] = {}  # and the lines it prints

    def observe(name: str, result: Any) -> None:
        if isinstance(getattr(result, "report", None), dict):
            reports[name] = result.report
            lines[name] = list(getattr(result, "lines", ()))

    result = manager.run(graph, observe=observe)
    save_model(result, out)
    summary = {"model": args.model, "passes": args.passes, "output": str(out), "nodes": len(result.nodes)}
    return summary | {"reports": reports, "report_lines": lines}


def _print_opt(r: dict[str, Any]) -> None:
    print(f"ran {', '.join(r['passes'])} on {r['model']} -> {r['output']} ({r['nodes']} nodes)")
    for lines in r.get("report_lines", {}).values():
        print("\n".join(lines))


# -- targets and passes ---------------------------------------------------------------------------
@command("targets")
def _targets(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.plugins import load_target, target_entry_points

    rows = []
    for name, ep in target_entry_points().items():
        row: dict[str, Any] = {"name": name, "entry_point": ep.value}
        try:
            target = load_target(name)
            row["description"] = target.description
            kinds = target.capabilities().node_kinds
            row["node_kinds"] = sorted(kinds) if kinds is not None else "all"
            row["features"] = [feature for feature, has in FEATURES.items() if has(target)]
            row["compile_flags"] = {f.flag: {"option": f.option, "choices": f.choices} for f in target.compile_flags}
        except SpikecError as err:
            row["error"] = str(err)
        rows.append(row)
    return {"targets": rows}


def _print_targets(r: dict[str, Any]) -> None:
    for row in r["targets"]:
        print(f"{row['name']:<10} {row.get('description', row.get('error', ''))}  [{row['entry_point']}]")
        if row.get("features"):
            print(f"{'':<11}has: {', '.join(row['features'])}")
        flags = [f"{flag} ({f['option']})" for flag, f in row.get("compile_flags", {}).items()]
        if flags:
            print(f"{'':<11}compile flags: {', '.join(flags)}")


@command("passes")
def _passes(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.pipeline import all_passes, option_type_name

    rows = [
        {
            "name": p.name,
            "owner": p.owner,
            "summary": p.summary,
            "options": {k: {"type": option_type_name(t), "default": d} for k, (t, d) in p.options.items()},
        }
        for p in all_passes().values()
    ]
    return {"passes": rows}


def _print_passes(r: dict[str, Any]) -> None:
    for row in r["passes"]:
        owner = "" if row["owner"] == "spikec" else f"  [{row['owner']}]"
        print(f"{row['name']:<22} {row['summary']}{owner}")
        for k, v in row["options"].items():
            print(f"{'':<24}{k}: {v['type']} = {v['default']!r}")


# -- compile and eval (spikec.cli_compile, spikec.compiler) -------------------------------------------
COMMANDS["compile"] = cli_compile.compile_command
COMMANDS["eval"] = cli_compile.eval_command
COMMANDS["partition"] = cli_partition.partition_command
COMMANDS["check"] = cli_check.check_command
COMMANDS["verify"] = cli_verify.verify_command
COMMANDS["report"] = cli_report.report_command
COMMANDS["timesteps"] = cli_timesteps.timesteps_command

PRINTERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "import": _print_import,
    "run": _print_run,
    "opt": _print_opt,
    "targets": _print_targets,
    "passes": _print_passes,
    "compile": cli_compile.print_compile,
    "eval": cli_compile.print_eval,
    "partition": cli_partition.print_partition,
    "check": cli_check.print_check,
    "verify": cli_verify.print_verify,
    "report": cli_report.print_report,
    "timesteps": cli_timesteps.print_timesteps,
}


# -- parser and entry point ---------------------------------------------------------------------------
EXIT_INTERNAL = 3


class CommandLineError(Exception):
    """argparse's usage error, raised instead of printed (``main`` prints it as usage, or as JSON)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser, self.message = parser, message


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` (and its subcommands' parsers) whose usage errors raise ``CommandLineError``."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self, message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="spikec", description="A neuromorphic compiler.")
    parser.add_argument("--version", action="version", version=f"spikec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--debug", action="store_true", help="print the traceback of an error on stderr")
        return p

    writes = model_suffixes(writable=True)
    p = add("import", f"Import a model ({model_suffixes()}) into SIR (or write it out as {writes}).")
    add_model_args(p)
    p.add_argument("-o", "--output", help=f"output file: {writes} (default <model>.sir)")

    p = add("run", "Run a model in the reference interpreter.")
    add_model_args(p)
    p.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="X.npy|NAME=X.npy",
        help="input array (T, batch, *shape) or (T, *shape); repeat NAME=FILE for several inputs",
    )
    p.add_argument("--steps", type=int, help="time steps (default: the input's length; longer pads with zeros)")
    p.add_argument("-o", "--output", help="write outputs (and traces as trace/<node>[.v|.i]) to this .npz")
    p.add_argument("--trace", action="store_true", help="record every node's output and state per step")
    p.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    p.add_argument(
        "--fixed",
        metavar="TARGET",
        help="run in TARGET's fixed-point arithmetic, bit for bit (the graph must be in its dialect); targets with "
        f"one: {', '.join(installed_targets('fixed-point mode')) or 'none installed'}",
    )
    p.add_argument("--layout", default="spikec", metavar="spikec|TARGET", help=layout_help())

    p = add("opt", "Run passes over a model and write the result.")
    add_model_args(p)
    p.add_argument("-p", "--pass", dest="passes", action="append", required=True, metavar="NAME[{k=v,...}]")
    p.add_argument("-o", "--output", help="output .sir or .nir (default <model>.opt.sir)")

    add("targets", "List installed targets (entry-point group spikec.targets).")
    add("passes", "List registered passes and their options.")
    cli_compile.add_compile_args(
        add("compile", "Compile a model for a target: an ANN converted (--calib, --method) or an SNN as it is.")
    )
    cli_compile.add_eval_args(add("eval", "Accuracy of an ANN and of its converted SNN, and each layer's drift."))
    cli_partition.add_partition_args(add("partition", "Place a spiking model's neurons on a target's cores."))
    cli_check.add_check_args(add("check", "Verify a model; --binary-spikes: list ops that do not read 0/1 spikes."))
    cli_verify.add_verify_args(add("verify", "Run an artifact on its target and compare it with the interpreter."))
    cli_report.add_report_args(add("report", "Draw an artifact's report.html again from its report.json."))
    cli_timesteps.add_timesteps_args(
        add("timesteps", "Time steps a converted ANN needs: each layer's effective dimension, the rule's T, measured.")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    without_hugepage_advice()  # large arrays: seconds each to first touch where the kernel compacts for them
    wants_json, debug = _flag_given(argv, "--json"), _flag_given(argv, "--debug")  # a usage error has no args
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CommandLineError as err:
        return _usage_error(err, argv, wants_json)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with progress_bars(enabled=not args.json):  # erased before the result or the error is printed
                report = COMMANDS[args.command](args)
            code = 0
        except SpikecError as err:
            if debug:
                traceback.print_exc()
            details = getattr(err, "details", {})  # what a failed check found (spikec check --json)
            report, code = {**details, "error": str(err), "error_type": type(err).__name__}, err.exit_code
        except KeyboardInterrupt:
            report, code = {"error": "interrupted"}, 130
        except Exception as err:  # a bug in spikec: one line asking for a report, the traceback only with --debug
            if debug:
                traceback.print_exc()
            report, code = {"error": internal_error(err, debug), "error_type": "InternalError"}, EXIT_INTERNAL
    notes = [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]
    try:
        _print_outcome(args, report, code, notes)
    except BrokenPipeError:  # `spikec ... | head`: the reader has what it wanted; no traceback for the rest
        _stdout_to_devnull()
    return code


def _print_outcome(args: argparse.Namespace, report: dict[str, Any], code: int, notes: list[str]) -> None:
    if args.json:
        report = {"ok": code == 0, "command": args.command, **report, "warnings": notes}
        print(json.dumps(report, indent=2, default=_json_default))
        return
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if code:
        print(f"error: {report['error']}", file=sys.stderr)
    else:
        PRINTERS[args.command](report)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again on the closed pipe."""
    with contextlib.suppress(OSError, ValueError):  # stdout without a file descriptor (captured): no pipe to flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _flag_given(argv: Sequence[str], flag: str) -> bool:
    """Whether ``flag`` is on the command line before any ``--``, also as the abbreviation argparse accepts
    (``--js`` for ``--json``; at least one letter after ``--``, as no other option starts like these two)."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    return any(len(word) > 2 and flag.startswith(word) for word in words)


def internal_error(err: BaseException, debug: bool) -> str:
    """The one line an unexpected exception becomes."""
    where = "the traceback is above" if debug else "run it again with --debug for the traceback"
    text = " ".join(str(err).split())[:300]
    return (
        f"internal error in spikec {__version__}: {type(err).__name__}{': ' + text if text else ''}; this is a bug "
        f"in spikec, please report it to the spikec maintainers with the command you ran ({where})"
    )


def _usage_error(err: CommandLineError, argv: list[str], wants_json: bool) -> int:
    """argparse's usage error: its usage and message on stderr, or with ``--json`` one JSON object; exit 2."""
    if not wants_json:
        err.parser.print_usage(sys.stderr)
        print(f"{err.parser.prog}: error: {err.message}", file=sys.stderr)
        return 2
    command = next((word for word in argv if word in COMMANDS), None)
    report = {"ok": False, "command": command, "error": f"{err.parser.prog}: {err.message}", "error_type": "UsageError"}
    print(json.dumps({**report, "usage": err.parser.format_usage().strip(), "warnings": []}, indent=2))
    return 2


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
