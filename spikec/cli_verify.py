"""``spikec verify DIR``: run an emitted artifact on its target and compare it with the interpreter.

Dispatches to the target named in ``DIR/report.json`` (``Target.verify``). The report has at least
``target``, ``samples``, ``steps``, ``mismatches`` (values that differ; 0 when exact) and ``agreement``
(fraction of samples whose prediction is the same), and the ``lines`` to print, which the target writes.
Any mismatch exits 1 (``ArtifactMismatch``), the lines (with the first mismatches) as the message. On a
terminal a bar shows the time the target's run has taken (``spikec.progress``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from spikec.errors import InputError, UsageError, VerifyError


class ArtifactMismatch(VerifyError):
    """The artifact's run differs from the interpreter's; ``details`` is the verify report."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


def add_verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", metavar="DIR", help="artifact directory written by spikec compile")
    p.add_argument(
        "--inputs",
        metavar="X.npy",
        help="inputs (T, N, *shape) or (T, *shape); .npz by input name for several "
        "(default: DIR/inputs.npz from compile --inputs, else seeded random inputs the target chooses)",
    )
    p.add_argument("--steps", type=int, help="time steps (default: the steps in report.json)")
    p.add_argument("--layers", action="store_true", help="compare every layer, not only the outputs")
    p.add_argument("--samples", type=int, default=2, help="random samples when no inputs are given (2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (0)")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds the vendor's software may run the artifact (targets that take it; default: the target's)",
    )
    p.add_argument(
        "--labels", metavar="Y.npy", help="labels of --inputs: accuracy against the float model (targets that keep it)"
    )


def verify_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.cli_args import at_least
    from spikec.plugins import load_target
    from spikec.progress import stderr_progress
    from spikec.target import Artifact

    directory = Path(args.directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such artifact directory")
    at_least("--samples", args.samples, 1)
    at_least("--steps", args.steps, 1)
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError(f"--timeout must be a finite number of seconds > 0, got {args.timeout}")
    report = load_report(directory, steps_given=args.steps is not None)
    target = load_target(str(report["target"]))
    files = tuple(sorted(p.name for p in directory.iterdir()))
    options = {"inputs": None if args.inputs is None else Path(args.inputs), "steps": args.steps}
    options |= {"layers": args.layers, "samples": args.samples, "seed": args.seed}
    if args.timeout is not None:
        if "timeout" not in target.verify_options:
            raise UsageError(f"--timeout: target '{target.name}' runs its check without a time limit; drop --timeout")
        options["timeout"] = args.timeout
    if args.labels is not None:
        if "labels" not in target.verify_options:
            raise UsageError(f"--labels: target '{target.name}' verifies against the interpreter only; drop --labels")
        options["labels"] = Path(args.labels)
    progress = stderr_progress()  # the vendor's run is one call: a bar with its time elapsed, not its samples
    if progress is not None:
        progress(f"verification: {target.name} against the interpreter", 0, 0)
    result = target.verify(Artifact(target.name, directory, files), **options)
    if progress is not None:
        progress("verification", 1, 1)
    if result["mismatches"]:
        raise ArtifactMismatch("\n".join(_lines(result)), result)
    return result


def load_report(directory: Path, *, steps_given: bool = False) -> dict[str, Any]:
    """``DIR/report.json`` read as untrusted (``spikec.safe_read.read_json``: a regular UTF-8 JSON file of at most
    64 MB), its fields checked (``check_report``), then by ``spikec.artifact.read_report``."""
    from spikec.artifact import REPORT, read_report
    from spikec.safe_read import read_json

    path = directory / REPORT
    if path.exists() or path.is_symlink():  # else read_report says how to make an artifact
        check_report(read_json(path, expect="spikec report.json"), path, steps_given=steps_given)
    return read_report(directory)


def check_report(report: Any, path: Path, *, steps_given: bool = False) -> None:
    """``InputError`` unless the fields verify reads have the types compile writes: ``target`` a name,
    ``steps`` (read when ``--steps`` is not given) an integer >= 1."""
    from spikec.safe_read.limits import shown

    if not isinstance(report, dict):
        raise InputError(f"{path}: holds a JSON {type(report).__name__}, not a spikec report; re-run spikec compile")
    target, steps = report.get("target"), report.get("steps")
    if not isinstance(target, str) or not target:
        raise InputError(f"{path}: 'target' is {shown(target)}, not a target name; re-run spikec compile")
    if steps_given or steps is None:
        return
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(
            f"{path}: 'steps' is {shown(steps)}, not an integer >= 1; re-run spikec compile or pass --steps"
        )


def _lines(r: dict[str, Any]) -> list[str]:
    """The target's lines, else a summary from the keys every verify report has."""
    return list(r.get("lines") or [
        f"verified {r.get('artifact', '')} ({r['target']}): {r['samples']} samples x {r['steps']} steps: "
        f"{r['mismatches']} mismatches, agreement {100 * r['agreement']:.1f}%"
    ])  # fmt: skip


def print_verify(r: dict[str, Any]) -> None:
    print("\n".join(_lines(r)))
