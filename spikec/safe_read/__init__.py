"""Reading untrusted files: the one guarded layer every reader goes through (docs/security.md).

Model files arrive from downloads and build pipelines. Every reader — ONNX, NIR and targets' HDF5 formats, ``.sir``
and its sidecar, ``.npy``/``.npz`` inputs, ``.pt`` state_dicts, an artifact's ``report.json`` — reads
through these functions, so that whatever the bytes hold, spikec fails with one ``SpikecError`` line
(naming the file and the dataset, member or field) and never reads outside the file, runs code from it,
blocks on it or allocates what it merely declares:

* ``files``: the path is a readable regular file of bounded size (not a directory, FIFO or device);
* ``npy``: ``.npy``/``.npz`` headers checked before any allocation, never unpickled;
* ``hdf5``: HDF5 as plain dicts, external storage, virtual datasets, links and filter plugins refused;
* ``limits``: nesting and integer bounds, and the memory budget work is checked against.
"""

from spikec.safe_read.files import check_file, open_file, read_bytes, read_json, read_text, where
from spikec.safe_read.hdf5 import read_hdf5
from spikec.safe_read.limits import MAX_NESTING, check_memory, format_bytes, int_text, memory_budget
from spikec.safe_read.npy import load_arrays_file, load_npy, load_npz

__all__ = [
    "MAX_NESTING",
    "check_file",
    "check_memory",
    "format_bytes",
    "int_text",
    "load_arrays_file",
    "load_npy",
    "load_npz",
    "memory_budget",
    "open_file",
    "read_bytes",
    "read_hdf5",
    "read_json",
    "read_text",
    "where",
]
