"""``spikec verify DIR``: run an emitted artifact on its target and compare it with the interpreter.

Dispatches to the target named in ``DIR/report.json`` (``Target.verify``). The report has at least
``target``, ``samples``, ``steps``, ``mismatches`` (values that differ; 0 when exact) and ``agreement``
(fraction of samples whose prediction, the argmax of the output summed over time, is the same). Any
mismatch exits 1 (``ArtifactMismatch``), with the first mismatches (layer, step, sample, neuron) listed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spikec.errors import InputError, VerifyError


class ArtifactMismatch(VerifyError):
    """The artifact's run differs from the interpreter's; ``details`` is the verify report."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


def read_report(directory: Path) -> dict[str, Any]:
    """``DIR/report.json``; ``InputError`` saying how to make an artifact when it is missing or unreadable."""
    path = directory / "report.json"
    if not path.is_file():
        raise InputError(
            f"{directory}: no report.json, so not a spikec artifact directory; "
            f"make one with `spikec compile MODEL --target loihi2 --timesteps T -o {directory}`"
        )
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: unreadable ({err}); re-run spikec compile") from None
    if not isinstance(report, dict) or "target" not in report:
        raise InputError(f"{path}: has no 'target'; re-run spikec compile")
    return report


def add_verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", metavar="DIR", help="artifact directory written by spikec compile")
    p.add_argument(
        "--inputs",
        metavar="X.npy",
        help="integer inputs (T, N, *shape) or (T, *shape); .npz by input name for several "
        "(default: DIR/inputs.npz from compile --inputs, else seeded random inputs)",
    )
    p.add_argument("--steps", type=int, help="time steps (default: the steps in report.json)")
    p.add_argument("--layers", action="store_true", help="compare every layer, not only the outputs")
    p.add_argument("--samples", type=int, default=2, help="random samples when no inputs are given (2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (0)")


def verify_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.plugins import load_target
    from spikec.target import Artifact

    directory = Path(args.directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such artifact directory")
    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    report = read_report(directory)
    target = load_target(str(report["target"]))
    files = tuple(sorted(p.name for p in directory.iterdir()))
    options = {"inputs": None if args.inputs is None else Path(args.inputs), "steps": args.steps}
    options |= {"layers": args.layers, "samples": args.samples, "seed": args.seed}
    result = target.verify(Artifact(target.name, directory, files), **options)
    if result["mismatches"]:
        raise ArtifactMismatch(_summary(result) + "\n" + _mismatch_lines(result), result)
    return result


def _summary(r: dict[str, Any]) -> str:
    t = r["timing"]
    return (
        f"verified {r['artifact']} ({r['target']}): {r['samples']} samples x {r['steps']} steps, "
        f"{r['compared']} values compared{' (every layer)' if r['layers_compared'] else ''}: "
        f"{r['mismatches']} mismatches, agreement {100 * r['agreement']:.1f}%\n"
        f"  inputs: {r['inputs']}\n"
        f"  timing: Lava {t['lava_run_s']:.3f} s ({t['lava_wall_s']:.3f} s with start-up), "
        f"interpreter {t['interp_s']:.3f} s"
    )


def _mismatch_lines(r: dict[str, Any]) -> str:
    lines = [
        f"  {m['layer']} step {m['step']} sample {m['sample']} neuron {m['neuron']}: "
        f"Lava {m['lava']:g}, interpreter {m['interp']:g}"
        for m in r["first_mismatches"]
    ]
    bad = ", ".join(f"{k} ({v['mismatches']})" for k, v in r["values"].items() if v["mismatches"])
    return f"  differing: {bad}\n" + "\n".join(lines)


def print_verify(r: dict[str, Any]) -> None:
    print(_summary(r))
    for name, v in r["values"].items():
        print(f"  {name:<20} {v['values']:>10} values  {v['mismatches']} mismatches  (Lava's sum {v['lava_sum']:g})")
