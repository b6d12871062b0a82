"""Artifact directories: written whole or not at all, and recognised by their ``report.json``.

``replace_directory`` builds a directory beside its destination and renames it into place, so a failed
compile leaves the old artifact (or nothing) behind; ``read_report`` reads an artifact's ``report.json``,
which names the target that made it (``spikec verify`` dispatches on it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import InputError, SpikecError, TargetError

REPORT = "report.json"
SAMPLE_INPUTS = "inputs.npz"  # sample inputs kept by ``spikec compile --inputs``, ``spikec verify``'s default


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


def read_report(directory: Path) -> dict[str, Any]:
    """``DIR/report.json``; ``InputError`` saying how to make an artifact when it is missing or unreadable."""
    path = directory / REPORT
    if not path.is_file():
        raise InputError(
            f"{directory}: no report.json, so not a spikec artifact directory; "
            f"make one with `spikec compile MODEL --target TARGET --timesteps T -o {directory}`"
        )
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: unreadable ({err}); re-run spikec compile") from None
    if not isinstance(report, dict) or "target" not in report:
        raise InputError(f"{path}: has no 'target'; re-run spikec compile")
    return report


def differences(
    label: str, theirs: np.ndarray, mine: np.ndarray, *, who: str, shown: int = 10
) -> tuple[int, list[dict[str, Any]]]:
    """Compare a run in the vendor's software (``theirs``, named ``who``) with the interpreter's (``mine``),
    both (T, N, *shape): the number of differing values and the first ``shown`` of them (layer, step,
    sample, neuron, both values). A shape mismatch is a ``TargetError`` naming ``label``: what a target's
    ``verify`` reports."""
    if theirs.shape != mine.shape:
        raise TargetError(f"{label}: {who} recorded shape {theirs.shape}, the interpreter {mine.shape}")
    diff = theirs != mine
    first = [
        {
            "layer": label,
            "step": int(i[0]),
            "sample": int(i[1]),
            "neuron": [int(k) for k in i[2:]],
            who: float(theirs[tuple(i)]),
            "interp": float(mine[tuple(i)]),
        }
        for i in np.argwhere(diff)[:shown]
    ]
    return int(diff.sum()), first
