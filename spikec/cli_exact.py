"""``spikec compile|eval --method exact``: the exact path (QANN + spike-equivalent SNN) from the shell.

Called by ``spikec.cli_convert`` when ``--method exact``; the options ``--levels``, ``--max-spikes``
and ``--percentile`` set the quantization (docs/conversion.md, "Exact conversion").
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from spikec.coding import as_samples
from spikec.errors import InputError


def add_exact_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--levels", type=int, default=16, metavar="L", help="--method exact: levels per activation (16)")
    p.add_argument(
        "--max-spikes", type=int, default=1, metavar="K", help="--method exact: spikes per neuron and step (1)"
    )


def _convert(args: argparse.Namespace, graph: Any, calib: np.ndarray) -> tuple[Any, Any]:
    from spikec.cli_convert import stderr_progress
    from spikec.convert_exact import convert_exact

    shown = None if args.json else stderr_progress()

    def progress(done: int, total: int) -> None:
        if shown is not None:
            shown("calibration", done, total)

    return convert_exact(
        graph, calib, levels=args.levels, percentile=args.percentile, max_spikes=args.max_spikes,
        batch_size=args.batch_size, backend=args.backend, progress=progress,
    )  # fmt: skip


def compile_exact(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.cli_convert import prepare_compile, write_artifact

    out, target, graph, samples = prepare_compile(args)
    snn, report = _convert(args, graph, samples)
    data = {"model": args.model, "target": target.name, "timesteps": args.timesteps, **report.to_dict()}
    files = write_artifact(out, target, snn, data, args.pass_option, args.inputs)
    return {
        "model": args.model,
        "target": target.name,
        "output": str(out),
        "files": files,
        "method": "exact",
        "timesteps": args.timesteps,
        "settle_bound": report.settle_bound,
        "calibration_samples": report.calibration_samples,
        "neurons": [n.to_dict() for n in report.neurons],
        "host_nodes": report.host_nodes,
    }


def print_compile_exact(r: dict[str, Any]) -> None:
    print(f"compiled {r['model']} for {r['target']} -> {r['output']} ({', '.join(r['files'])}), exact path")
    print(f"  sum of the outputs over steps equals the QANN's after at most {r['settle_bound']} steps")
    print(f"  {'ST-BIF layer':<28} {'step':>10} {'levels':>9}  origin")
    for n in r["neurons"]:
        step = n["step"]
        shown = f"{step:.4g}" if isinstance(step, float) else f"{len(step)} values"
        print(f"  {n['name']:<28} {shown:>10} {n['lo']:>4}..{n['hi']:<4}  {n['origin']}")
    if r["host_nodes"]:
        print("  not event-driven (accumulate -> f -> difference, on the host or a graded-spike core):")
        for h in r["host_nodes"]:
            print(f"    {h['name']} ({h['kind']}) {h['origin']}")


def eval_exact(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.cli_convert import load_ann, load_array, stderr_progress
    from spikec.compare import check_labels
    from spikec.compare_exact import compare_exact

    data = load_array(args.data, "--data")
    labels = load_array(args.labels, "--labels")
    calib = None if args.calib is None else load_array(args.calib, "--calib")
    graph = load_ann(args)
    x = as_samples(graph, data, f"--data {args.data}")
    y = check_labels(labels, x.shape[0], f"--labels {args.labels}")
    if calib is None:
        k = min(1000, x.shape[0] // 10)
        if k < 1:
            raise InputError(f"--data {args.data} holds {x.shape[0]} samples: too few to split; pass --calib")
        calib, x, y, source = x[:k], x[k:], y[k:], f"the first {k} samples of --data (not evaluated)"
    else:
        calib, source = as_samples(graph, calib, f"--calib {args.calib}"), args.calib
    snn, report = _convert(args, graph, calib)
    progress = None if args.json else stderr_progress()
    result = compare_exact(
        graph, snn, report, x, y, timesteps=args.timesteps, backend=args.backend, batch_size=args.batch_size,
        progress=progress,
    )  # fmt: skip
    return {
        "model": args.model,
        "method": "exact",
        **result.to_dict(),
        "calibration": {"samples": report.calibration_samples, "source": source},
        "settings": {"levels": args.levels, "percentile": args.percentile, "max_spikes": args.max_spikes},
        "host_nodes": report.host_nodes,
    }


def print_eval_exact(r: dict[str, Any]) -> None:
    snn = r["snn"]
    print(f"evaluated {r['model']} on {r['samples']} samples, exact path (calibration: {r['calibration']['source']})")
    print(f"  ANN accuracy  {100 * r['ann']['accuracy']:.2f}%")
    print(f"  QANN accuracy {100 * r['qann']['accuracy']:.2f}% (L={r['settings']['levels']})")
    print(f"  {'T':>5} {'SNN accuracy':>13} {'= QANN':>8}")
    for t, acc in snn["by_timesteps"].items():
        print(f"  {t:>5} {100 * acc:>12.2f}% {100 * snn['equal_to_qann_by_timesteps'][t]:>7.1f}%")
    print(f"  every output equals the QANN's after at most {snn['settle_bound']} steps (bound)")
