"""Run a reader built on a C library in a child process, so that a loop or a crash in the library on a
damaged file is one ``FileError`` line instead of a hang or a dead interpreter.

libhdf5 loops forever on some damaged files (a corrupt global heap under a variable-length string) and
can crash on others; Python's signals cannot interrupt C code. ``isolated(read, *args)`` forks (Linux: no
import cost), runs ``read`` in the child and sends back its result as plain data — JSON for the tree and
an ``.npz`` for the arrays, never a pickle — or the ``SpikecError`` it raised. A child that runs past
``seconds`` is killed, one that dies by a signal is reported; both are ``FileError``s naming the file.
Where ``os.fork`` does not exist, ``read`` runs in this process.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikec import errors
from spikec.errors import FileError, SpikecError

Plain = Any  # dict[str, Plain] | str | int | float | bool | None | np.ndarray | np.generic


def _encode(value: Plain, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        return {"d": {str(k): _encode(v, arrays) for k, v in value.items()}}
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":  # strings, as the HDF5 reader gives them
        return {"s": [str(v) for v in value.reshape(-1).tolist()], "shape": list(value.shape)}
    if isinstance(value, np.ndarray | np.generic):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"a": key, "scalar": isinstance(value, np.generic)}
    return {"v": value}


def _decode(item: Any, arrays: dict[str, np.ndarray]) -> Plain:
    if "d" in item:
        return {k: _decode(v, arrays) for k, v in item["d"].items()}
    if "s" in item:
        out = np.empty(len(item["s"]), dtype=object)
        out[:] = item["s"]
        return out.reshape(item["shape"])
    if "a" in item:
        array = arrays[item["a"]]
        return array[()] if item["scalar"] else array
    return item["v"]


def _child(read: Callable[..., Plain], args: tuple[Any, ...], out: Path) -> None:
    """In the child: run ``read``, write ``result.json`` (and ``arrays.npz``); never returns."""
    faulthandler.disable()  # a crash of the child is reported by the parent, without a Python dump
    code = 0
    try:
        try:
            arrays: dict[str, np.ndarray] = {}
            doc: dict[str, Any] = {"result": _encode(read(*args), arrays)}
            if arrays:
                np.savez(out / "arrays.npz", **arrays)  # type: ignore[arg-type]
        except SpikecError as err:
            doc = {"error": [type(err).__name__, str(err)]}
        (out / "result.json").write_text(json.dumps(doc, allow_nan=True), encoding="utf-8")
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def isolated(read: Callable[..., Plain], *args: Any, seconds: float, name: str, expect: str) -> Plain:
    """``read(*args)`` run in a child process (see the module docstring); ``name`` and ``expect`` (``"NIR
    file"``) go into the messages."""
    if not hasattr(os, "fork"):
        return read(*args)
    out = Path(tempfile.mkdtemp(prefix="spikec-read-"))
    pid = -1
    try:
        pid = os.fork()
        if pid == 0:
            _child(read, args, out)
        status = _wait(pid, seconds)
        pid = -1
        if status is None:
            raise FileError(
                f"{name}: reading it did not finish in {seconds:.0f} s (the HDF5 library loops on some damaged "
                f"files): the file is damaged; re-export the {expect}"
            )
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            raise FileError(f"{name}: the HDF5 library crashed ({sig}) reading it: the file is damaged; re-export it")
        return _result(out, name)
    finally:
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        shutil.rmtree(out, ignore_errors=True)


def _wait(pid: int, seconds: float) -> int | None:
    """The child's exit status, or None when it ran past ``seconds`` (it is then killed)."""
    deadline, pause = time.monotonic() + seconds, 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _result(out: Path, name: str) -> Plain:
    from spikec.safe_read.npy import load_npz

    path = out / "result.json"
    if not path.is_file():
        raise FileError(f"{name}: the reader process ended without a result: the file is damaged; re-export it")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "error" in doc:
        kind, message = doc["error"]
        cls = getattr(errors, kind, None)
        if not (isinstance(cls, type) and issubclass(cls, SpikecError)):
            cls = FileError
        err = cls.__new__(cls)
        Exception.__init__(err, message)  # the message as the child wrote it (ParseError's fields are not needed)
        raise err
    arrays = load_npz(out / "arrays.npz") if (out / "arrays.npz").exists() else {}
    return _decode(doc["result"], arrays)
