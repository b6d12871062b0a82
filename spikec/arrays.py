"""Numeric arrays from ``.npy``/``.npz`` files: the one loader every command and target uses.

Files are never unpickled (``allow_pickle=False``: object arrays are refused). ``load_arrays`` gives an
``.npy``'s array or an ``.npz``'s arrays by name; ``load_array`` insists on one ``.npy``; ``load_feeds``
turns a file into a graph's feeds, (T, N, *shape) by input name (an ``.npy`` for a one-input graph, an
``.npz`` by input name for several; (T, *shape) is a batch of one). Every error names the option and the
file: a file that cannot be read is a ``FileError`` (``spikec.safe_read``), arrays that do not fit an
``InputError``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikec.errors import InputError, SpikecError
from spikec.ir.graph import Graph


def _where(path: Path, what: str) -> str:
    return f"{what} {path}" if what else str(path)


def load_arrays(path: str | Path, what: str = "") -> np.ndarray | dict[str, np.ndarray]:
    """The array of an ``.npy`` file, or the arrays of an ``.npz`` by name; ``what`` (``'--calib'``) names
    the option in errors. Read through ``spikec.safe_read.npy``: headers checked before anything is
    allocated, never unpickled; a bad file is a ``FileError``."""
    from spikec.safe_read import load_arrays_file

    return load_arrays_file(path, what)


def load_array(path: str | Path, what: str = "") -> np.ndarray:
    """One numeric array from an ``.npy`` file (an ``.npz`` archive is refused)."""
    data = load_arrays(path, what)
    if isinstance(data, dict):
        raise InputError(f"{_where(Path(path), what)}: give one array as .npy, not an .npz archive")
    return data


def load_feeds(graph: Graph, path: str | Path, what: str = "--inputs") -> dict[str, np.ndarray]:
    """``graph``'s feeds from a file: (T, N, *shape) per input (see the module docstring and
    ``spikec.interp.interpreter.prepare_inputs``, whose shape rules apply)."""
    from spikec.interp.interpreter import prepare_inputs

    data = load_arrays(path, what)
    try:
        feeds, _, _ = prepare_inputs(graph, data)
    except SpikecError as err:
        raise InputError(f"{_where(Path(path), what)}: {err}") from None
    return feeds
