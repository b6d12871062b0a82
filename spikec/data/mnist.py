"""Read MNIST from its IDX files (``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``).

IDX: a big-endian header (two zero bytes, a type code, the number of axes, then one uint32 size
per axis) followed by the data in row-major order. Only unsigned bytes (type 0x08) occur in MNIST.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from spikec.errors import InputError

SPLITS = {"test": "t10k", "train": "train"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """One IDX file (optionally gzip-compressed) as a uint8 array of the shape its header gives."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise InputError(f"{path}: cannot read the IDX file: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputError(f"{path}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise InputError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes), file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{folder}: no {stem} or {stem}.gz")


def load_mnist(split_dir: str | os.PathLike[str], split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (N, 28, 28)`` and labels ``uint8 (N,)`` of ``split`` ("test" or "train")."""
    folder = Path(split_dir)
    prefix = SPLITS[split]
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InputError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return images, labels
