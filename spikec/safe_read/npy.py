"""``.npy`` and ``.npz`` files read with their headers checked first: never unpickled, never over-allocated.

numpy's loader allocates the array a header declares before reading a byte of it: a 100-byte ``.npy``
declaring 10¹² elements is a ``MemoryError``. Here the header (``\\x93NUMPY``, version, a Python dict
literal of at most 10,000 bytes) is parsed and checked first — a known dtype without Python objects,
a shape of non-negative integers, as many data bytes in the file (or the ``.npz`` member) as the header
declares, and all arrays of a file together within the memory budget — and only then is the data read.
"""

from __future__ import annotations

import ast
import dataclasses
import lzma
import os
import zipfile
import zlib
from typing import IO, Any

import numpy as np

from spikec.errors import FileError
from spikec.safe_read.files import check_file, open_file, where
from spikec.safe_read.limits import check_memory, elements, format_bytes, shown

MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
MAX_HEADER = 10_000  # numpy's own default limit on the header dict
MAX_MEMBERS = 100_000


@dataclasses.dataclass(frozen=True)
class Header:
    """What an ``.npy`` header declares; ``offset`` is where the data starts."""

    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int

    @property
    def nbytes(self) -> int:
        return elements(self.shape) * self.dtype.itemsize


def read_header(fh: IO[bytes], name: str) -> Header:
    """The checked header of the ``.npy`` stream ``fh`` (positioned at its start); ``FileError`` naming
    ``name`` for anything numpy's loader would choke on or unpickle."""
    start = fh.read(8)
    if len(start) < 8 or not start.startswith(MAGIC):
        raise FileError(f"{name}: not a numpy .npy array (no \\x93NUMPY signature)")
    major = start[6]
    if major not in (1, 2, 3):
        raise FileError(f"{name}: .npy format version {major}.{start[7]} is not one numpy writes (1.0 to 3.0)")
    size_bytes = 2 if major == 1 else 4
    size = int.from_bytes(fh.read(size_bytes), "little")
    if size > MAX_HEADER:
        raise FileError(f"{name}: its .npy header claims {size} bytes (numpy's limit is {MAX_HEADER}): corrupt")
    raw = fh.read(size)
    if len(raw) < size:
        raise FileError(f"{name}: truncated inside its .npy header")
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (UnicodeDecodeError, ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise FileError(f"{name}: its .npy header is garbled ({raw[:60]!r}...); the file is corrupt") from None
    return Header(*_header_fields(header, name), offset=8 + size_bytes + size)


def _header_fields(header: Any, name: str) -> tuple[np.dtype, tuple[int, ...], bool]:
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FileError(f"{name}: its .npy header is not numpy's {{descr, fortran_order, shape}} dict: corrupt")
    shape, order = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                               for d in shape) or len(shape) > 64:  # fmt: skip
        raise FileError(f"{name}: its .npy header declares shape {shown(shape)}, not a tuple of sizes: corrupt")
    if not isinstance(order, bool):
        raise FileError(f"{name}: its .npy header's fortran_order is {shown(order)}, not True or False: corrupt")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError, IndexError, SyntaxError):
        raise FileError(
            f"{name}: its .npy header declares dtype {shown(header['descr'])}, which numpy cannot read"
        ) from None
    if dtype.hasobject:
        raise FileError(
            f"{name}: holds Python objects (dtype {dtype}), which spikec never unpickles: save plain numbers "
            "(np.save of a numeric array)"
        )
    return dtype, shape, order


def _read_data(fh: IO[bytes], header: Header, name: str) -> np.ndarray:
    data = fh.read(header.nbytes)
    if len(data) < header.nbytes:
        raise FileError(
            f"{name}: truncated: its header declares {header.dtype.str}{list(header.shape)} "
            f"({format_bytes(header.nbytes)}), the file holds {format_bytes(len(data))} of data"
        )
    array = np.frombuffer(data, dtype=header.dtype).copy() if header.nbytes else np.empty(0, header.dtype)
    return array.reshape(header.shape, order="F" if header.fortran_order else "C")


def load_npy(path: str | os.PathLike[str], what: str = "") -> np.ndarray:
    """The array of an ``.npy`` file (checked as the module docstring says)."""
    name = where(path, what)
    size = check_file(path, what, expect=".npy array").st_size
    with open_file(path, what, expect=".npy array") as fh:
        header = read_header(fh, name)
        if header.offset + header.nbytes > size:
            raise FileError(
                f"{name}: truncated: its header declares {header.dtype.str}{list(header.shape)} "
                f"({format_bytes(header.nbytes)}), the file holds {format_bytes(max(size - header.offset, 0))} "
                "of data"
            )
        check_memory(header.nbytes, f"{name} ({header.dtype.str}{list(header.shape)})", "give a smaller array")
        return _read_data(fh, header, name)


def load_npz(path: str | os.PathLike[str], what: str = "") -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive by name (member ``x.npy`` is ``x``)."""
    name = where(path, what)
    with open_file(path, what, expect=".npz archive") as fh:
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
            raise FileError(f"{name}: not a readable .npz archive ({err}); is it truncated?") from None
        with archive:
            return _members(archive, name)


def _members(archive: zipfile.ZipFile, name: str) -> dict[str, np.ndarray]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise FileError(f"{name}: holds {len(infos)} members, more than the {MAX_MEMBERS} spikec reads")
    headers: list[tuple[zipfile.ZipInfo, Header]] = []
    total = 0
    try:
        for info in infos:
            member = f"{name}[{info.filename}]"
            if not info.filename.endswith(".npy"):
                raise FileError(f"{member}: an .npz holds only .npy arrays; this member is something else")
            with archive.open(info) as stream:
                header = read_header(stream, member)
            if header.offset + header.nbytes > info.file_size:
                raise FileError(
                    f"{member}: truncated: its header declares {header.dtype.str}{list(header.shape)} "
                    f"({format_bytes(header.nbytes)}), the member holds {format_bytes(info.file_size)}"
                )
            total += header.nbytes
            headers.append((info, header))
        check_memory(total, f"{name} ({len(headers)} arrays)", "give smaller arrays")
        out: dict[str, np.ndarray] = {}
        for info, header in headers:
            with archive.open(info) as stream:
                stream.read(header.offset)
                out[info.filename[: -len(".npy")]] = _read_data(stream, header, f"{name}[{info.filename}]")
        return out
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as err:  # fmt: skip
        # zipfile's errors on a damaged member: bad CRC, unknown compression, encryption, truncated data
        raise FileError(f"{name}: a damaged .npz archive ({type(err).__name__}: {err})") from None


def load_arrays_file(path: str | os.PathLike[str], what: str = "") -> np.ndarray | dict[str, np.ndarray]:
    """An ``.npy``'s array or an ``.npz``'s arrays, told apart by their first bytes (not the suffix)."""
    with open_file(path, what, expect=".npy/.npz file") as fh:
        start = fh.read(4)
    if start.startswith(MAGIC[:4]):
        return load_npy(path, what)
    if start in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        return load_npz(path, what)
    raise FileError(f"{where(path, what)}: not a numpy .npy/.npz file (it starts with {start!r})")
