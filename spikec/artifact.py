"""Artifact directories: written whole or not at all, recognised by their ``report.json``, checked before use.

``replace_directory`` builds a directory beside its destination and renames it into place, so a failed
compile leaves the old artifact (or nothing) behind. It replaces only an empty directory or a spikec
artifact (a ``report.json`` listing every file there), never a directory holding one of the inputs.

``report.json`` records the sha256 of every other file but ``report.html`` (drawn from it, and drawn again
by ``spikec report``): ``"sha256": {relative path: hex}``, from ``file_hashes``. ``read_report`` reads it,
names the target that made it (``spikec verify`` dispatches on it), and refuses an artifact whose files
differ from that record (a file changed, missing, added, or a link) before anything in it is read or run.
``split_wall_clock`` moves the wall-clock ``seconds`` out of a report, so identical inputs and options give
byte-identical artifacts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import InputError, OutputError, TargetError, UsageError
from spikec.fileio import output_error, temp_path, write_text

REPORT = "report.json"
REPORT_HTML = "report.html"  # report.json drawn for people (spikec.report.html): re-rendered in place, not hashed
VIEWS = (REPORT, REPORT_HTML)  # the files that describe the artifact: not in the sha256 record
SAMPLE_INPUTS = "inputs.npz"  # sample inputs kept by ``spikec compile --inputs``, ``spikec verify``'s default
HASHES = "sha256"  # report.json's key: every other file's sha256
WALL_CLOCK = "seconds"  # a report key holding wall-clock time: kept out of report.json


def _entries(directory: Path) -> dict[str, Path]:
    """Every entry under ``directory`` that is not a folder (files, links, others), by relative POSIX path."""
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(directory):
        base = Path(root)
        links = [d for d in dirs if (base / d).is_symlink()]  # os.walk lists a link to a folder as a folder
        for name in (*files, *links):
            found[(base / name).relative_to(directory).as_posix()] = base / name
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(directory: Path) -> dict[str, str]:
    """The sha256 of every file under ``directory`` but ``report.json`` and ``report.html``, by relative path."""
    return {name: sha256_file(path) for name, path in sorted(_entries(directory).items()) if name not in VIEWS}


def record_hashes(directory: Path) -> None:
    """Record every file's sha256 in ``directory/report.json`` (made if missing): what ``spikec compile``
    does, for a directory a target's ``emit`` wrote without it."""
    path = directory / REPORT
    report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    write_text(path, json.dumps({**report, HASHES: file_hashes(directory)}, indent=1) + "\n")


def check_files(directory: Path, report: dict[str, Any]) -> None:
    """``InputError`` unless the files under ``directory`` are exactly those ``report.json`` records, each
    with its recorded sha256 (plain files, no links)."""
    recompile = f"re-run `spikec compile ... -o {directory}`"
    recorded = report.get(HASHES)
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        raise InputError(
            f"{directory / REPORT}: records no sha256 of the artifact's files (made by an older spikec, or "
            f"edited), so its files cannot be checked; {recompile}"
        )
    entries = _entries(directory)
    for name, path in sorted(entries.items()):
        if name in VIEWS:
            continue
        if path.is_symlink() or not path.is_file():
            raise InputError(f"{path}: a link or special file in the artifact; artifacts hold plain files: {recompile}")
        if name not in recorded:
            raise InputError(
                f"{path}: not a file of this artifact (report.json's sha256 lists the files spikec wrote); "
                f"remove it or {recompile}"
            )
    for name, digest in sorted(recorded.items()):
        path = directory / name
        if name not in entries:
            raise InputError(f"{path}: missing from the artifact; {recompile}")
        if sha256_file(path) != digest:
            raise InputError(f"{path}: changed since spikec compile wrote it (its sha256 differs); {recompile}")


def split_wall_clock(value: Any) -> tuple[Any, list[tuple[str, float]]]:
    """``value`` without its ``"seconds"`` keys (at any depth), and those times as (where, seconds): a
    pass list's entry is named by its ``name``."""
    timings: list[tuple[str, float]] = []

    def strip(item: Any, where: str) -> Any:
        if isinstance(item, dict):
            here = f"{where}/{item['name']}" if isinstance(item.get("name"), str) else where
            if isinstance(item.get(WALL_CLOCK), int | float):
                timings.append((here.strip("/"), float(item[WALL_CLOCK])))
            return {k: strip(v, f"{here}/{k}" if k != "name" else here) for k, v in item.items() if k != WALL_CLOCK}
        if isinstance(item, list | tuple):
            return [strip(v, where) for v in item]
        return item

    return strip(value, ""), timings


def is_artifact(directory: Path) -> bool:
    """Whether ``directory`` holds a spikec artifact and nothing else: a ``report.json`` with a target whose
    ``sha256`` (or, from an older spikec, ``files``) lists every other file there."""
    try:
        report = json.loads((directory / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(report, dict) or "target" not in report:
        return False
    listed = report.get(HASHES) if isinstance(report.get(HASHES), dict) else report.get("files")
    if not isinstance(listed, dict | list):
        return False
    names = {str(n) for n in listed}
    return all(name in VIEWS or name in names or name.split("/")[0] in names for name in _entries(directory))


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False


def check_destination(target: Path, inputs: Iterable[Path] = (), option: str = "-o") -> None:
    """Refuse to replace ``target`` unless it is missing, an empty directory or a spikec artifact, and never
    when it holds one of ``inputs`` (the model, its sidecar, the calibration or sample inputs)."""
    for given in inputs:
        if _inside(given, target):
            raise UsageError(
                f"{option} {target}: holds {given}, an input of this command, which the new artifact would delete; "
                f"choose another {option} or move the input out"
            )
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        what = "a symbolic link" if target.is_symlink() else "not a directory"
        raise OutputError(f"{option} {target}: exists and is {what}; choose another {option} or remove it")
    if any(target.iterdir()) and not is_artifact(target):
        raise OutputError(
            f"{option} {target}: exists and is not a spikec artifact directory (it holds files spikec did not "
            f"write); choose another {option} or remove it"
        )


def replace_directory(target: Path, build: Callable[[Path], None], inputs: Iterable[Path] = ()) -> None:
    """Run ``build(tmp)`` on a fresh directory beside ``target``, then rename it to ``target``.

    ``check_destination`` first: what ``target`` may be. The new directory has the user's umask mode. On
    failure the temporary directory is removed and ``target`` is left as it was; an ``OSError`` (full
    disk, read-only folder) is raised as ``OutputError`` naming ``target``.
    """
    check_destination(target, inputs)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(target.parent)
        tmp.mkdir()
        build(tmp)
        if target.exists():
            old = temp_path(target.parent)
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except OSError:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except OSError as err:
        raise output_error(target, err) from None
    except OutputError as err:  # a file of the artifact: named by the artifact, not the temporary folder
        raise err if err.os_error is None else output_error(target, err.os_error) from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_report(directory: Path) -> dict[str, Any]:
    """``DIR/report.json``, after ``check_files``; ``InputError`` saying how to make an artifact when it is
    missing, unreadable, or its files are not the ones it records."""
    path = directory / REPORT
    if not path.is_file():
        raise InputError(
            f"{directory}: no report.json, so not a spikec artifact directory; "
            f"make one with `spikec compile MODEL --target TARGET --timesteps T -o {directory}`"
        )
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: unreadable ({err}); re-run spikec compile") from None
    if not isinstance(report, dict) or "target" not in report:
        raise InputError(f"{path}: has no 'target'; re-run spikec compile")
    check_files(directory, report)
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
