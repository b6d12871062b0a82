"""HDF5 files (NIR, a target's formats) read as plain nested dictionaries, with nothing outside the file ever read.

HDF5 lets a file point outside itself: a dataset's raw data may live in *external* files (any path,
``H5Pset_external``), a *virtual* dataset maps other files' datasets, an *external link* names another
file, and a dataset's filter may be a plugin, a shared library HDF5 loads. A reader that just reads
``dataset[()]`` copies the bytes of any readable local file into the model (and from there into the
output). ``read_hdf5`` walks the file first and refuses all of these by dataset path (``UnsafeFile``);
soft links too (nothing spikec reads uses them, and they make cycles). The walk is iterative and bounded
(depth, number of objects, declared bytes within the memory budget), and any error the HDF5 library
raises on a damaged file becomes one ``FileError`` naming the file. The walk runs in a child process
(``isolate``): libhdf5 loops forever on some damaged files and can crash on others, and neither can be
stopped from Python; the child is killed after 10 s plus 1 s per 20 MB of file.

Values: a group is a ``dict``; a dataset is its numpy value (scalars as numpy scalars), byte strings
decoded as UTF-8 (invalid bytes replaced), string arrays as object arrays of ``str``.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from spikec.errors import FileError, SpikecError, UnsafeFile
from spikec.safe_read.files import check_file, open_file, where
from spikec.safe_read.isolate import isolated
from spikec.safe_read.limits import check_memory, elements

MAX_DEPTH = 512
MAX_OBJECTS = 250_000
# HDF5's built-in filters and h5py's own LZF: anything else is a plugin (a shared library HDF5 would load)
BUILTIN_FILTERS = {
    h5py.h5z.FILTER_DEFLATE: "deflate",
    h5py.h5z.FILTER_SHUFFLE: "shuffle",
    h5py.h5z.FILTER_FLETCHER32: "fletcher32",
    h5py.h5z.FILTER_SZIP: "szip",
    h5py.h5z.FILTER_NBIT: "nbit",
    h5py.h5z.FILTER_SCALEOFFSET: "scaleoffset",
    h5py.h5z.FILTER_LZF: "lzf",
}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MIN_SECONDS, READ_RATE = 10.0, 20e6  # a read may take 10 s plus 1 s per 20 MB before it counts as a hang


def read_hdf5(
    path: str | os.PathLike[str], what: str = "", *, expect: str = "HDF5 file", fix: str = ""
) -> dict[str, Any]:
    """Every group and dataset of the HDF5 file ``path`` as nested dicts (see the module docstring).

    ``expect`` (``"NIR file"``) and ``fix`` (``"re-export the model with nir.write"``) go into the messages.
    """
    name = where(path, what)
    advice = f"; {fix}" if fix else ""
    size = check_file(path, what, expect=expect).st_size
    with open_file(path, what, expect=expect) as fh:
        start = fh.read(len(HDF5_SIGNATURE))
    if start != HDF5_SIGNATURE and not h5py.is_hdf5(os.fspath(path)):  # a user block puts the signature later
        raise FileError(f"{name}: not an HDF5 file ({size} bytes, no HDF5 signature): not a {expect}{advice}")
    seconds = MIN_SECONDS + size / READ_RATE
    tree: dict[str, Any] = isolated(_read, os.fspath(path), name, expect, advice, seconds=seconds, name=name,
                                    expect=expect)  # fmt: skip
    return tree


def _read(path: str, name: str, expect: str, advice: str) -> dict[str, Any]:
    """The walk itself (in the child process ``isolated`` runs it in)."""
    try:
        with h5py.File(path, "r") as h5:
            return _Walk(name, advice).run(h5)
    except SpikecError:
        raise
    except Exception as err:
        text = " ".join(str(err).split())[:200]
        raise FileError(
            f"{name}: cannot be read as a {expect}: {type(err).__name__}: {text}; the file is damaged or "
            f"truncated{advice}"
        ) from None


class _Walk:
    """The iterative walk over a file's groups, with its bounds."""

    def __init__(self, name: str, advice: str) -> None:
        self.name, self.advice = name, advice
        self.objects = 0
        self.declared = 0

    def run(self, root: h5py.Group) -> dict[str, Any]:
        out: dict[str, Any] = {}
        stack: list[tuple[h5py.Group, dict[str, Any], int]] = [(root, out, 0)]
        while stack:
            group, into, depth = stack.pop()
            for key in group:
                self.objects += 1
                if self.objects > MAX_OBJECTS:
                    raise FileError(
                        f"{self.name}: holds more than {MAX_OBJECTS} groups and datasets; spikec stops there"
                    )
                item = self._item(group, key)
                if isinstance(item, h5py.Group):
                    if depth + 1 > MAX_DEPTH:
                        raise FileError(f"{self.name}: groups nested more than {MAX_DEPTH} deep (at '{item.name}')")
                    into[key] = {}
                    stack.append((item, into[key], depth + 1))
                else:
                    into[key] = self._value(item)
        return out

    def _item(self, group: h5py.Group, key: str) -> h5py.Group | h5py.Dataset:
        link = group.get(key, getlink=True)
        at = f"{group.name.rstrip('/')}/{key}"
        if isinstance(link, h5py.ExternalLink):
            raise UnsafeFile(
                f"{self.name}: '{at}' is an external link to '{link.path}' in file '{link.filename}': spikec reads "
                f"nothing outside the file it is given{self.advice}"
            )
        if isinstance(link, h5py.SoftLink):
            raise UnsafeFile(
                f"{self.name}: '{at}' is a soft link to '{link.path}': spikec reads only plain groups and "
                f"datasets{self.advice}"
            )
        item = group[key]
        if not isinstance(item, h5py.Group | h5py.Dataset):
            raise FileError(f"{self.name}: '{at}' is a {type(item).__name__}, not a group or dataset{self.advice}")
        return item

    def _value(self, ds: h5py.Dataset) -> Any:
        at = ds.name
        plist = ds.id.get_create_plist()
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            raise UnsafeFile(
                f"{self.name}: dataset '{at}' is a virtual dataset (its data lives in other files): spikec reads "
                f"nothing outside the file it is given{self.advice}"
            )
        if plist.get_external_count():
            external = plist.get_external(0)[0].decode("utf-8", "replace")
            raise UnsafeFile(
                f"{self.name}: dataset '{at}' stores its data in the external file '{external}': spikec reads "
                f"nothing outside the file it is given (re-save the dataset inside the file){self.advice}"
            )
        for i in range(plist.get_nfilters()):
            code = plist.get_filter(i)[0]
            if code not in BUILTIN_FILTERS:
                raise UnsafeFile(
                    f"{self.name}: dataset '{at}' uses HDF5 filter {code}, a plugin spikec does not load (plugins "
                    f"are code); write it with {', '.join(sorted(set(BUILTIN_FILTERS.values())))} or none"
                )
        dtype = ds.dtype
        string = h5py.check_string_dtype(dtype) is not None
        if not string and dtype.kind not in "biuf":
            raise FileError(f"{self.name}: dataset '{at}' has type {dtype}, which spikec does not read{self.advice}")
        shape = ds.shape
        if shape is None:  # a null dataspace: no value
            return np.empty(0, dtype=np.float64 if string else dtype)
        self.declared += elements(shape) * (16 if string else dtype.itemsize)
        check_memory(self.declared, f"{self.name} (up to dataset '{at}', shape {list(shape)})", "give a smaller file")
        return _decoded(ds[()])


def _decoded(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.reshape(-1).tolist()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(value.shape)
    return value
