"""Mutations of valid files, by class: what an attacker or an unlucky disk does to a model file.

Every mutation is ``fn(rng, path)``: it damages the file at ``path`` in place (a copy of a seed, in a
folder of its own) and returns the path to read (the same file, or the model beside a damaged sidecar).
``CLASSES[format]`` lists the classes that apply to a format; ``MUTATIONS[class]`` is the mutation. Classes:

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

import json
import os
import random
import re
import shutil
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


# -- ONNX ---------------------------------------------------------------------------------------------------
def onnx_field(rng: random.Random, path: Path) -> Path:
    import onnx

    model = onnx.load(str(path))
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(5)
        graph = model.graph
        if choice == 0 and model.opset_import:
            model.opset_import[0].version = rng.choice([0, 1, 7, 29, 999, -5, 2**40])
        elif choice == 1 and graph.initializer:
            init = rng.choice(list(graph.initializer))
            dims = [rng.choice([0, -1, 1, 3, 10**9, 2**40]) for _ in range(rng.randint(0, 4))]
            del init.dims[:]
            init.dims.extend(dims)
        elif choice == 2 and graph.node:
            node = rng.choice(list(graph.node))
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.INTS and attr.ints:
                    attr.ints[rng.randrange(len(attr.ints))] = rng.choice([0, -1, -(2**40), 2**40, 10**6])
                elif attr.type == onnx.AttributeProto.INT:
                    attr.i = rng.choice([0, -1, 2**40, -(2**40), 99])
                elif attr.type == onnx.AttributeProto.FLOAT:
                    attr.f = rng.choice([float("nan"), float("inf"), -1.0, 0.0, 1e38])
        elif choice == 3 and graph.node:
            node = rng.choice(list(graph.node))
            if node.input:
                node.input[rng.randrange(len(node.input))] = rng.choice(["", "ghost", graph.node[0].output[0]])
        elif graph.input:
            dims = graph.input[0].type.tensor_type.shape.dim
            if dims:
                d = rng.choice(list(dims))
                d.dim_value = rng.choice([0, 1, 10**6, 2**40])
    onnx.save(model, str(path))
    return path


def onnx_outside(rng: random.Random, path: Path) -> Path:
    import onnx

    secret = secret_file(path)
    model = onnx.load(str(path))
    init = rng.choice(list(model.graph.initializer))
    size = int(np.prod(init.dims)) * 4
    init.ClearField("raw_data")
    init.ClearField("float_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    location = rng.choice(
        [
            os.path.relpath(secret, path.parent),
            str(secret),
            "../../../../../../etc/hostname",
            "sub/../../secret.bin",
            "link.bin",
        ]
    )
    if location == "link.bin":
        (path.parent / "link.bin").symlink_to(secret)
    for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def onnx_work(rng: random.Random, path: Path) -> Path:
    """A model that asks one op for 10⁸–10¹⁸ elements: Tile, Expand, ConstantOfShape or Range."""
    from onnx import TensorProto, helper, numpy_helper

    big = rng.choice([2 * 10**8, 10**12, 10**18])
    op = rng.choice(["Tile", "Tile-const", "Expand", "ConstantOfShape", "Range"])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])
    inits, nodes = [], []
    if op == "Tile":
        inits.append(numpy_helper.from_array(np.array([1, big], np.int64), "reps"))
        nodes.append(helper.make_node("Tile", ["x", "reps"], ["y"]))
    else:
        if op == "Tile-const":
            inits += [
                numpy_helper.from_array(np.ones((1, 100), np.float32), "c"),
                numpy_helper.from_array(np.array([1, big], np.int64), "reps"),
            ]
            nodes.append(helper.make_node("Tile", ["c", "reps"], ["t"]))
        elif op == "Expand":
            inits += [
                numpy_helper.from_array(np.ones((1, 1), np.float32), "c"),
                numpy_helper.from_array(np.array([big, 4], np.int64), "shape"),
            ]
            nodes.append(helper.make_node("Expand", ["c", "shape"], ["t"]))
        elif op == "ConstantOfShape":
            inits.append(numpy_helper.from_array(np.array([big, 4], np.int64), "shape"))
            nodes.append(helper.make_node("ConstantOfShape", ["shape"], ["t"]))
        else:
            inits += [numpy_helper.from_array(np.array(0.0, np.float32), n) for n in ("start",)]
            inits += [
                numpy_helper.from_array(np.array(float(big), np.float32), "limit"),
                numpy_helper.from_array(np.array(1.0, np.float32), "delta"),
            ]
            nodes.append(helper.make_node("Range", ["start", "limit", "delta"], ["t"]))
        nodes.append(helper.make_node("Add", ["x", "t"], ["y"]))
    graph = helper.make_graph(nodes, "work", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


# -- .npy / .npz -------------------------------------------------------------------------------------------
def npy_field(rng: random.Random, path: Path) -> Path:
    if path.suffix == ".npz":
        arrays = dict(np.load(path, allow_pickle=False))
        key = rng.choice(sorted(arrays))
        inner = path.parent / "member.npy"
        np.save(inner, arrays[key])
        npy_field(rng, inner)
        import zipfile

        with zipfile.ZipFile(path, "w") as z:
            for k, v in arrays.items():
                if k != key:
                    with z.open(f"{k}.npy", "w") as fh:
                        np.lib.format.write_array(fh, v)
            z.write(inner, f"{key}.npy")
        inner.unlink()
        return path
    data = path.read_bytes()
    start = data.index(b"{")
    end = data.index(b"}") + 1
    header = data[start:end].decode("latin1")
    choice = rng.randrange(5)
    if choice == 0:
        header = re.sub(
            r"'shape': \([^)]*\)", f"'shape': ({rng.choice(['10**12', '1000000000000', '-1', '2,3.5'])},)", header
        )
    elif choice == 1:
        header = re.sub(r"'descr': '[^']*'", f"'descr': {rng.choice(['|O', '<c16', 'xyz', '<V8', '[1]'])!r}", header)
    elif choice == 2:
        header = header.replace("False", rng.choice(["'yes'", "None", "True"]))
    elif choice == 3:
        header = header[: rng.randrange(len(header))] + rng.choice(["(", "'", "__import__('os')", "{{{"])
    else:
        header = "{" + "[" * 200 + "]" * 200 + "}"
    body = header.encode("latin1")
    path.write_bytes(data[:8] + len(body).to_bytes(2, "little") + body + data[end:])
    return path


class _Payload:
    """Unpickling this creates the canary file (what a malicious pickle does, harmlessly)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.canary,))


def pickle_payload(rng: random.Random, path: Path) -> Path:
    canary = path.parent / CANARY_NAME
    if path.suffix == ".pt":
        import torch

        torch.save({"weight": _Payload(canary)} if rng.random() < 0.5 else _Payload(canary), path)
    elif path.suffix == ".npz":
        np.savez(path, a=np.array([_Payload(canary)], dtype=object))
    else:
        np.save(path, np.array([_Payload(canary)], dtype=object), allow_pickle=True)
    return path


def pt_field(rng: random.Random, path: Path) -> Path:
    import torch

    state = torch.load(path, weights_only=True)
    key = rng.choice(sorted(state))
    choice = rng.randrange(4)
    if choice == 0:
        state[key] = torch.zeros(rng.choice([(0,), (7, 7), (1, 1, 1, 1, 1)]))
    elif choice == 1:
        state[key] = torch.full_like(state[key], rng.choice([float("nan"), float("inf")]))
    elif choice == 2:
        state[f"{key}.extra"] = state.pop(key)
    else:
        state[key] = state[key].to(rng.choice([torch.int8, torch.bool, torch.complex64]))
    torch.save(state, path)
    return path


def report_field(rng: random.Random, path: Path) -> Path:
    report = json.loads(path.read_text(encoding="utf-8"))
    key = rng.choice([*report, "steps", "target"])
    report[key] = rng.choice(["abc", -1, 0, 1.5, None, [], {}, 10**30, True, "interp", "../x", "loihi9"])
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def text_junk(rng: random.Random, path: Path) -> Path:
    """Not the format at all: text, zeros, another format's signature."""
    path.write_bytes(
        rng.choice(
            [
                b"",
                b"\0" * 4096,
                b"hello\n",
                b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
                b"PK\x03\x04" + b"\0" * 26,
                b"\x93NUMPY\x01\x00" + b"\xff\xff",
            ]
        )
    )
    return path


MUTATIONS: dict[str, Mutation] = {
    "flip": flip,
    "truncate": truncate,
    "splice": splice,
    "junk": text_junk,
    "sir-field": sir_field,
    "sir-structure": sir_structure,
    "sidecar-field": sidecar_field,
    "hdf5-field": hdf5_field,
    "hdf5-structure": hdf5_structure,
    "hdf5-outside": hdf5_outside,
    "onnx-field": onnx_field,
    "onnx-outside": onnx_outside,
    "onnx-work": onnx_work,
    "npy-field": npy_field,
    "pickle": pickle_payload,
    "pt-field": pt_field,
    "report-field": report_field,
}
BYTES = ["flip", "truncate", "splice", "junk"]
CLASSES: dict[str, list[str]] = {
    "sir": [*BYTES, "sir-field", "sir-structure"],
    "sir-sidecar": [*BYTES, "sidecar-field", "pickle"],
    "nir": [*BYTES, "hdf5-field", "hdf5-structure", "hdf5-outside"],
    "netx": [*BYTES, "hdf5-field", "hdf5-structure", "hdf5-outside"],
    "onnx": [*BYTES, "onnx-field", "onnx-outside", "onnx-work"],
    "npy": [*BYTES, "npy-field", "pickle"],
    "npz": [*BYTES, "npy-field", "pickle"],
    "pt": [*BYTES, "pt-field", "pickle"],
    "report": [*BYTES, "report-field"],
}


def copy_seed(seed_path: Path, case_dir: Path) -> Path:
    """A fresh copy of the seed's folder under ``case_dir``; the copy of the seed file."""
    shutil.copytree(seed_path.parent, case_dir / "case", symlinks=True)
    return case_dir / "case" / seed_path.name
