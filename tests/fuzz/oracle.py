"""What reading a hostile file did: the outcome of one case, judged against spikec's promises.

``judge(read, path, case_dir)`` reads ``path`` with a time limit and returns an ``Outcome``:

* ``loaded`` (a valid file still, or damage spikec can read) or ``refused`` (a ``SpikecError`` of one
  line): both fine;
* ``traceback``: any other exception (a bug: the CLI would report an internal error);
* ``hang``: the read ran past the time limit;
* ``leak``: the secret a hostile file pointed at was read into the result, or a file appeared in the
  case folder (spikec's readers write nothing);
* ``executed``: a pickled payload ran (its canary file exists).

A ``crash`` (the process died) can only be seen from outside: ``benchmarks/fuzz/campaign.py`` runs cases
in a worker process and counts it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fuzz.mutate import CANARY_NAME, SECRET_BYTES

GOOD = ("loaded", "refused")
BAD = ("traceback", "hang", "leak", "executed", "crash")


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str  # one of GOOD or BAD
    detail: str = ""  # the error type and message, or what leaked
    seconds: float = 0.0


class _Timeout(BaseException):
    """Raised by the alarm (a BaseException, so no reader's ``except Exception`` swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _holds_secret(value: Any) -> bool:
    """Whether the secret's bytes (or a long run of them) were read into ``value``."""
    needle = SECRET_BYTES[:32]
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" and needle in np.ascontiguousarray(value).tobytes()
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    if hasattr(value, "nodes"):  # a Graph: every array field of every node
        for node in value.nodes.values():
            for field in dataclasses.fields(node):
                if _holds_secret(getattr(node, field.name)):
                    return True
    return False


def judge(read: Callable[[Path], Any], path: Path, case_dir: Path, limit: float = 20.0) -> Outcome:
    """Read ``path`` (a mutated file under ``case_dir``) and judge what happened (see the module docstring)."""
    from spikec.errors import SpikecError

    before = _files(case_dir)
    start = time.perf_counter()
    result: Any = None
    try:
        with time_limit(limit):
            result = read(path)
        outcome = Outcome("loaded")
    except _Timeout:
        outcome = Outcome("hang", f"over {limit:g} s")
    except SpikecError as err:
        text = str(err)
        lines = text.split("\n")
        # a ParseError shows the source line and a caret below its one-line message
        one_line = len(lines) == 1 or (len(lines) == 3 and lines[2].strip() == "^")
        kind = "refused" if one_line else "traceback"
        outcome = Outcome(kind, f"{type(err).__name__}: {lines[0][:300]}")
    except Exception as err:  # what the campaign looks for
        outcome = Outcome("traceback", f"{type(err).__name__}: {str(err)[:300]}")
    seconds = time.perf_counter() - start
    canary = [p for p in case_dir.rglob(CANARY_NAME)]
    if canary:
        return Outcome("executed", f"payload ran: {canary[0]}", seconds)
    if result is not None and _holds_secret(result):
        return Outcome("leak", "the secret file's bytes were read into the result", seconds)
    new = _files(case_dir) - before
    if new:
        return Outcome("leak", f"files written while reading: {sorted(new)[:5]}", seconds)
    return dataclasses.replace(outcome, seconds=seconds)
