"""What a path is, before anything reads it: a regular file of a bounded size that spikec may read.

``check_file`` refuses a missing path, a broken link, a directory, a FIFO (which would block the reader
forever), a device (``/dev/zero`` never ends), a socket, a file without read permission and one larger
than the reader's limit — each with one line naming the file and what to do. ``open_file`` opens what
``check_file`` accepted without blocking (a FIFO swapped in meanwhile is refused too), and
``read_bytes``/``read_text`` read it whole.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

from spikec.errors import FileError
from spikec.safe_read.limits import format_bytes

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def where(path: str | os.PathLike[str], what: str = "") -> str:
    """``"--calib x.npy"`` when ``what`` names the option, else the path."""
    return f"{what} {path}" if what else str(path)


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_file(
    path: str | os.PathLike[str], what: str = "", *, max_bytes: int | None = None, expect: str = "file"
) -> os.stat_result:
    """The ``stat`` of ``path`` when it is a readable regular file of at most ``max_bytes``; else ``FileError``.

    ``what`` names the option the path came from (``--calib``), ``expect`` what the file should be (``"ONNX
    model"``), for the messages.
    """
    name = where(path, what)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileError(f"{name}: a broken link (to {os.readlink(path)}); point it at the {expect}") from None
        raise FileError(f"{name}: no such file") from None
    except PermissionError:
        raise FileError(f"{name}: cannot be read: permission denied on a folder of its path") from None
    except OSError as err:
        raise FileError(f"{name}: cannot be read: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileError(f"{name}: is {_kind(info.st_mode)}, not a {expect}; give the path of a regular file")
    if not os.access(path, os.R_OK):
        raise FileError(f"{name}: cannot be read: permission denied; check the file's permissions")
    if max_bytes is not None and info.st_size > max_bytes:
        raise FileError(
            f"{name}: is {format_bytes(info.st_size)}, more than the {format_bytes(max_bytes)} spikec reads "
            f"from a {expect}"
        )
    return info


@contextlib.contextmanager
def open_file(
    path: str | os.PathLike[str], what: str = "", *, max_bytes: int | None = None, expect: str = "file"
) -> Iterator[BinaryIO]:
    """``path`` opened for binary reading after ``check_file``; the open never blocks (``O_NONBLOCK``)."""
    check_file(path, what, max_bytes=max_bytes, expect=expect)
    name = where(path, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        reason = "permission denied" if err.errno in (errno.EACCES, errno.EPERM) else (err.strerror or str(err))
        raise FileError(f"{name}: cannot be read: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced after check_file
            raise FileError(f"{name}: is {_kind(info.st_mode)}, not a {expect}; give the path of a regular file")
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def read_bytes(
    path: str | os.PathLike[str], what: str = "", *, max_bytes: int | None = None, expect: str = "file"
) -> bytes:
    """The whole of a regular file (``check_file``'s rules)."""
    with open_file(path, what, max_bytes=max_bytes, expect=expect) as fh:
        try:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        except OSError as err:
            raise FileError(f"{where(path, what)}: cannot be read: {err.strerror or err}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise FileError(f"{where(path, what)}: grew past {format_bytes(max_bytes)} while being read")
    return data


def read_text(
    path: str | os.PathLike[str], what: str = "", *, max_bytes: int | None = None, expect: str = "file"
) -> str:
    """A UTF-8 text file (a byte-order mark is dropped); ``FileError`` naming the offset of bad bytes."""
    data = read_bytes(path, what, max_bytes=max_bytes, expect=expect)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FileError(
            f"{where(path, what)}: is not UTF-8 text (byte {err.start} is {data[err.start : err.start + 1]!r}); "
            f"is it really a {expect}?"
        ) from None


def read_json(
    path: str | os.PathLike[str], what: str = "", *, max_bytes: int = 64 << 20, expect: str = "JSON file"
) -> Any:
    """A JSON document (``read_text``'s rules); ``FileError`` for bad JSON, nesting too deep or huge numbers."""
    text = read_text(path, what, max_bytes=max_bytes, expect=expect)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, int digit limits, deep nesting
        raise FileError(
            f"{where(path, what)}: is not valid JSON ({type(err).__name__}: {err}); is it a {expect}?"
        ) from None
