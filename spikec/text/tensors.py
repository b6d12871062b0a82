"""Arrays in .sir: dtype names, element text, tensor hashes, the ``.npz`` sidecar (no pickle).

Floats are written as the shortest text that reads back to the same bits (``repr`` for f64,
numpy's shortest float32 form for f32); NaN is written ``nan`` (payload and sign are not kept).

The sidecar is a plain ``.npz`` (a zip of ``.npy`` files, ``spikec.fileio.save_npz``) with fixed timestamps, so the
same graph always gives the same bytes. It is read with ``allow_pickle=False``: an untrusted file
can never run code.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spikec.errors import ParseError

DTYPES: dict[str, np.dtype] = {
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "u8": np.dtype(np.uint8),
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_),
}
_CODES = {dtype: code for code, dtype in DTYPES.items()}


def dtype_code(dtype: np.dtype) -> str:
    """The .sir name of ``dtype`` (byte order aside); ValueError for dtypes .sir cannot hold."""
    try:
        return _CODES[dtype.newbyteorder("=")]
    except KeyError:
        raise ValueError(f"dtype {dtype} cannot be written to .sir; use one of {list(DTYPES)}") from None


def format_float(value: float) -> str:
    """Shortest round-trip text of a float64 (``inf``, ``-inf``, ``nan`` included)."""
    return repr(float(value))


def _f32(value: np.float32) -> str:
    text = str(value)
    if not math.isnan(value) and np.float32(float(text)) != value:
        text = repr(float(value))  # exact f64 text of the f32 value: always reads back exactly
    return text


def format_elements(arr: np.ndarray) -> list[str]:
    """The elements of ``arr`` in row-major order, as .sir writes them inside ``{...}``."""
    flat = arr.reshape(-1)
    if arr.dtype.kind == "b":
        return ["true" if x else "false" for x in flat.tolist()]
    if arr.dtype.kind in "iu":
        return [str(x) for x in flat.tolist()]
    if arr.dtype == np.float32:
        return [_f32(x) for x in flat]
    return [format_float(x) for x in flat.tolist()]


class BadElement(ValueError):
    """An element of an inline array is malformed; ``offset`` is its index in the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def _floats(items: list[str], dtype: np.dtype) -> np.ndarray:
    wide = np.array([float(x) for x in items], dtype=np.float64)
    with np.errstate(over="ignore"):
        arr = wide.astype(dtype)
    bad = np.flatnonzero(np.isfinite(wide) & ~np.isfinite(arr))
    if bad.size:
        raise _Bad(int(bad[0]), f"{items[bad[0]]} is out of range for {dtype_code(dtype)}")
    return arr


def _ints(items: list[str], dtype: np.dtype) -> np.ndarray:
    info, values = np.iinfo(dtype), []
    for i, item in enumerate(items):
        value = int(item) if len(item) <= 24 else None  # longer than any int64/uint64: do not parse 5,000 digits
        if value is None or not info.min <= value <= info.max:
            shown = item if len(item) <= 24 else f"{item[:12]}... ({len(item)} characters)"
            raise _Bad(i, f"{shown} is out of range for {dtype_code(dtype)}")
        values.append(value)
    return np.array(values, dtype=dtype)


def _bools(items: list[str], dtype: np.dtype) -> np.ndarray:
    return np.array([x == "true" for x in items], dtype=np.bool_)


class _Bad(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


_NUMBER = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|nan)"
Convert = Callable[[list[str], np.dtype], np.ndarray]
# dtype kind -> (one element, a whole list of them, what an element is, the converter)
_ELEMENTS: dict[str, tuple[re.Pattern[str], re.Pattern[str], str, Convert]] = {
    kind: (re.compile(item), re.compile(rf"\s*(?:(?:{item})\s*(?:,\s*(?:{item})\s*)*)?"), what, convert)
    for kind, item, what, convert in [
        ("f", _NUMBER, "a number", _floats),
        ("i", r"[+-]?\d+", "an integer", _ints),
        ("u", r"[+-]?\d+", "an integer", _ints),
        ("b", r"true|false", "true or false", _bools),
    ]
}


def parse_elements(text: str, dtype: np.dtype) -> np.ndarray:
    """The flat array of the comma-separated elements ``text`` (``#`` comments allowed).

    BadElement (with the element's offset in ``text``) for a malformed or out-of-range element.
    """
    if "#" in text:  # comments become spaces, so offsets stay right
        text = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), text)
    item, whole, what, convert = _ELEMENTS[dtype.kind]
    parts = text.split(",") if text.strip() else []
    items = [p.strip() for p in parts]
    try:
        if not whole.fullmatch(text):
            bad = next(i for i, x in enumerate(items) if not item.fullmatch(x))
            got = repr(items[bad]) if items[bad] else "nothing"
            raise _Bad(bad, f"expected {what} for {dtype_code(dtype)} array values, got {got}")
        return convert(items, dtype)
    except _Bad as err:
        offset = sum(len(p) + 1 for p in parts[: err.index])
        offset += len(parts[err.index]) - len(parts[err.index].lstrip())
        raise BadElement(str(err), offset) from None


def tensor_hash(arr: np.ndarray) -> str:
    """sha256 over the dtype code, the shape and the little-endian row-major bytes."""
    code = dtype_code(arr.dtype)
    digest = hashlib.sha256(f"{code}[{','.join(map(str, arr.shape))}]".encode())
    data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))  # no copy for a node's own arrays
    digest.update(data.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def read_npz(path: Path, *, referenced_by: str) -> dict[str, np.ndarray]:
    """All arrays of the sidecar ``path`` (``spikec.safe_read.load_npz``: headers checked, never unpickled);
    ParseError when it is missing, FileError when it is damaged."""
    from spikec.safe_read import load_npz

    if not path.exists():
        raise ParseError(
            f"the sidecar file '{path}' is missing: the text stores its large tensors there "
            "(copy it next to the .sir file or re-save the model)",
            file=referenced_by,
        )
    return load_npz(path, f"{referenced_by}'s sidecar")
