"""Mutations of the binary formats: ONNX (fields, external data, work), ``.npy``/``.npz`` headers, pickled
payloads, state_dict tensors, report fields, another format's bytes (see ``fuzz.mutate`` for the classes)."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np

from fuzz.mutate import CANARY_NAME, secret_file


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
