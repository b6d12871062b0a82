"""Mutations of valid files, by class: what an attacker or an unlucky disk does to a model file.

Every mutation is ``fn(rng, path)``: it damages the file at ``path`` in place (a copy of a seed, in a
folder of its own) and returns the path to read (the same file, or the model beside a damaged sidecar).
This module holds the byte-level, ``.sir`` and HDF5 mutations, ``fuzz.mutate_binary`` the others;
``fuzz.classes`` lists the classes that apply to a format (``CLASSES``) and each class's mutation
(``MUTATIONS``). Classes:

* ``flip``: 1 to 16 bytes XOR-ed with random values; ``truncate``: the file cut at a random offset;
  ``splice``: random bytes inserted, or a chunk of the file repeated;
* ``field``: one value replaced by a hostile one (0, -1, 1.5, nan, inf, 10**5000, a string, an empty
  or huge shape) where the format keeps it: a ``.sir`` token, an HDF5 dataset, an ONNX attribute,
  initializer dims or opset, an ``.npy`` header field, a state_dict tensor, a report field;
* ``structure``: deep nesting, cycles, duplicated or dropped parts;
* ``outside``: references out of the file (HDF5 external storage, external and soft links, virtual
  datasets, filter plugins; ONNX external data at ``../`` or absolute paths) to ``SECRET``;
* ``pickle``: a pickle whose unpickling would create ``CANARY`` (an object ``.npy``, a whole-module
  ``.pt``); ``work``: ONNX ops that ask for 10⁸–10¹⁸ elements.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Mutation = Callable[[random.Random, Path], Path]

SECRET_BYTES = b"SPIKEC-SECRET-" * 64  # the content of SECRET; it must never appear in what spikec reads
CANARY_NAME = "EXECUTED"  # created next to the file if a payload ever runs


def secret_file(path: Path) -> Path:
    """The secret a hostile file points at: outside the file's folder, readable."""
    secret = path.parent.parent / "secret.bin"
    if not secret.exists():
        secret.write_bytes(SECRET_BYTES)
    return secret


HOSTILE_TEXT = [
    "0",
    "-1",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "1e-320",
    "9" * 5000,
    "99999999999999999999",
    "-9223372036854775809",
    "",
    "abc",
    '"x"',
    "[]",
    "{}",
    "%nope",
    "graph dt=1 {",
]


def hostile_value(rng: random.Random) -> Any:
    """A value to store where a number or an array was."""
    choices: list[Any] = [
        0,
        -1,
        1.5,
        float("nan"),
        float("inf"),
        2**62,
        -(2**62),
        "abc",
        b"\xff\xfe",
        np.zeros(0),
        np.full((3,), np.nan),
        np.array([1.5, 2.5]),
        np.array([-3, 0]),
        np.zeros((2, 3, 4, 5, 6)),
        np.array(["a", "b"], dtype=object),
        np.ones((1, 1)),
        np.array(10**9),
        np.array([0, 0]),
        np.array([2**40]),
        np.array(True),
    ]
    return rng.choice(choices)


# -- generic byte-level ------------------------------------------------------------------------------
def flip(rng: random.Random, path: Path) -> Path:
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 16)):
        if data:
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    path.write_bytes(bytes(data))
    return path


def truncate(rng: random.Random, path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(max(len(data), 1))])
    return path


def splice(rng: random.Random, path: Path) -> Path:
    data = path.read_bytes()
    at = rng.randrange(len(data) + 1)
    if rng.random() < 0.5 or len(data) < 2:
        piece = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        start = rng.randrange(len(data) - 1)
        piece = data[start : start + rng.randint(1, 4096)] * rng.randint(1, 4)
    path.write_bytes(data[:at] + piece + data[at:])
    return path


# -- .sir text ----------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|inf|nan)|%[\w.]+|\b[A-Za-z_]\w*\b|[{}\[\](),=]")


def sir_field(rng: random.Random, path: Path) -> Path:
    text = path.read_text(encoding="utf-8")
    tokens = list(_TOKEN.finditer(text))
    for _ in range(rng.randint(1, 3)):
        m = rng.choice(tokens)
        text = text[: m.start()] + rng.choice(HOSTILE_TEXT) + text[m.end() :]
        tokens = list(_TOKEN.finditer(text))
    path.write_text(text, encoding="utf-8")
    return path


def sir_structure(rng: random.Random, path: Path) -> Path:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    choice = rng.randrange(4)
    if choice == 0:  # graphs nested deeper than any reader should recurse
        depth = rng.choice([70, 500, 3000])
        inner = "graph dt=0.001 { %i = Input(shape=[1]) %o = Output() %i -> %o }"
        for _ in range(depth):
            inner = (
                "graph dt=0.001 { %i = Input(shape=[1]) %s = Subgraph(graph="
                + inner
                + ") %o = Output() %i -> %s %s -> %o }"
            )
        text = "sir 1\n" + inner + "\n"
    elif choice == 1:  # a line duplicated (a node defined twice, an edge twice)
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        text = "\n".join(lines)
    elif choice == 2:  # a line dropped
        del lines[rng.randrange(len(lines))]
        text = "\n".join(lines)
    else:  # an edge that closes a cycle, or names a node that does not exist
        names = re.findall(r"(%[\w.]+) =", text)
        a, b = rng.choice(names), rng.choice([*names, "%ghost"])
        text = text.rstrip().rstrip("}") + f"  {a} -> {b}\n  {b} -> {a}\n}}\n"
    path.write_text(text, encoding="utf-8")
    return path


# -- .npz sidecar of a .sir ------------------------------------------------------------------------------
def sidecar_field(rng: random.Random, path: Path) -> Path:
    arrays = {k: np.array(v) for k, v in np.load(path, allow_pickle=False).items()}
    key = rng.choice(sorted(arrays))
    value = hostile_value(rng)
    if isinstance(value, np.ndarray) and value.dtype == object:
        value = np.array([1.0])
    arrays[key] = np.asarray(value) if not isinstance(value, str | bytes) else np.frombuffer(b"ab", np.uint8)
    np.savez(path, **arrays)
    return path.with_suffix(".sir")


# -- HDF5 (NIR, netx) ---------------------------------------------------------------------------------------
def _datasets(f: Any) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _groups(f: Any) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Group) else None)
    return names


def hdf5_field(rng: random.Random, path: Path) -> Path:
    import h5py

    with h5py.File(path, "a") as f:
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(_datasets(f))
            value = hostile_value(rng)
            del f[name]
            if rng.random() < 0.15:
                f.create_group(name)  # a group where a dataset was
            elif isinstance(value, np.ndarray) and value.dtype == object:
                f.create_dataset(name, data=value, dtype=h5py.string_dtype())
            elif isinstance(value, bytes):
                f.create_dataset(name, data=np.void(value))
            else:
                f[name] = value
    return path


def hdf5_structure(rng: random.Random, path: Path) -> Path:
    import h5py

    with h5py.File(path, "a") as f:
        choice = rng.randrange(4)
        groups = _groups(f) or ["/"]
        if choice == 0:  # deep nesting of groups (NIR: of graphs)
            g = f[rng.choice(groups)].create_group(f"deep{rng.randrange(10**6)}")
            g["type"] = "NIRGraph"
            for i in range(rng.choice([80, 700, 1600])):
                g = g.create_group(f"n{i}" if i % 2 else "nodes")
                if i % 2:
                    g["type"] = "NIRGraph"
        elif choice == 1:  # a hard-link cycle: a group linked into itself
            g = f[rng.choice(groups)]
            g["loop"] = g
        elif choice == 2:  # a group removed
            name = rng.choice(groups)
            if name != "/":
                del f[name]
        else:  # a group copied beside itself under a new name
            name = rng.choice(groups)
            if name != "/":
                f.copy(f[name], f"{name}_copy{rng.randrange(100)}")
    return path


def hdf5_outside(rng: random.Random, path: Path) -> Path:
    import h5py

    secret = secret_file(path)
    with h5py.File(path, "a") as f:
        name = rng.choice(_datasets(f))
        old = f[name]
        shape, dtype = (old.shape or (1,)), old.dtype if old.dtype.kind in "biuf" else np.dtype("f4")
        nbytes = int(np.prod(shape)) * dtype.itemsize
        del f[name]
        choice = rng.randrange(5)
        if choice == 0:  # raw data stored in an external file
            f.create_dataset(name, shape=shape, dtype=dtype, external=[(str(secret), 0, max(nbytes, 1))])
        elif choice == 1:
            f[name] = h5py.ExternalLink(str(secret.with_suffix(".h5")), "/data")
        elif choice == 2:
            f[name] = h5py.SoftLink("/" + rng.choice(_datasets(f) or ["nowhere"]))
        elif choice == 3:
            other = secret.with_suffix(".h5")
            with h5py.File(other, "w") as g:
                g["data"] = np.frombuffer(SECRET_BYTES[: nbytes or 4], np.uint8)
            layout = h5py.VirtualLayout(shape=(nbytes or 4,), dtype=np.uint8)
            layout[:] = h5py.VirtualSource(str(other), "data", shape=(nbytes or 4,))
            f.create_virtual_dataset(name, layout)
        else:  # a filter plugin HDF5 would look for as a shared library
            f.create_dataset(
                name,
                data=np.zeros(shape, dtype),
                chunks=True,
                compression=rng.choice([307, 32004, 32008]),
                allow_unknown_filter=True,
            )
    return path
