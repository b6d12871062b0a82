"""ONNX models read through ``spikec.safe_read``: the protobuf from a checked regular file, external data
only from files inside the model's folder.

A model over 2 GB keeps its weights in *external data* files named by each tensor
(``location``, ``offset``, ``length``). The location is text in the model: ``../../home/user/.ssh/id_rsa``
or ``/etc/passwd`` would copy that file's bytes into the weights. ``load_model`` reads the protobuf
without its external data, then loads each external tensor itself: the location must be a relative path
that stays inside the model's folder (links resolved), a regular file, with ``offset + length`` inside it,
and all of them together within the memory budget. Anything else is an ``UnsafeFile`` or ``FileError``
naming the tensor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError, Message

from spikec.errors import FileError, FrontendError, UnsafeFile
from spikec.safe_read import check_file, check_memory, open_file, read_bytes

MAX_PROTOBUF = 2**31 - 1  # protobuf cannot hold more: larger models keep their weights in external data


def load_model(path: Path) -> onnx.ModelProto:
    """The model at ``path`` with its external data loaded (see the module docstring)."""
    file = str(path)
    data = read_bytes(path, max_bytes=MAX_PROTOBUF, expect="ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError, TypeError) as err:
        raise FrontendError(f"{file}: not a readable ONNX model: {type(err).__name__}: {err}") from None
    del data
    _check_text(model, file)
    external = [t for t in tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        _load_external(external, path)
    return model


def _check_text(model: onnx.ModelProto, file: str) -> None:
    """``FrontendError`` when a text field (a name, a doc string, a text attribute) is not UTF-8: protobuf
    decodes them when they are first read, which would fail deep in the importer."""
    stack: list[Message] = [model]
    try:
        while stack:
            message = stack.pop()
            for field, value in message.ListFields():
                items = list(value) if field.is_repeated else [value]
                if field.type == field.TYPE_STRING:  # protobuf hands back bytes for a string that is not UTF-8
                    bad = next((v for v in items if isinstance(v, bytes)), None)
                    if bad is not None:
                        raise UnicodeDecodeError("utf-8", bad, 0, len(bad), f"field {field.name}")
                elif field.message_type is not None:
                    stack.extend(items)
            if isinstance(message, onnx.AttributeProto):  # a text attribute (auto_pad, mode) is UTF-8 by the spec
                for text in [message.s] if message.type == onnx.AttributeProto.STRING else message.strings:
                    text.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FrontendError(
            f"{file}: a name or text in the model is not UTF-8 ({err.object[:40]!r}): the file is damaged"
        ) from None


def tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of the model: initializers, sparse initializers, and the tensor attributes of its nodes,
    in subgraphs too."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
        for sparse in attr.sparse_tensors:
            yield from (sparse.values, sparse.indices)
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for sub in attr.graphs:
            yield from _graph_tensors(sub)


def _load_external(external: list[onnx.TensorProto], path: Path) -> None:
    file = str(path)
    folder = Path(os.path.realpath(path.parent))
    plans = []
    for tensor in external:
        info = {entry.key: entry.value for entry in tensor.external_data}
        where = f"{file}: tensor '{tensor.name}'"
        location = info.get("location", "")
        if not location or os.path.isabs(location) or "\0" in location:
            raise UnsafeFile(
                f"{where} keeps its data at {location!r}: external data must be a file name relative to the "
                "model's folder; re-save the model with onnx.save(..., save_as_external_data=True)"
            )
        target = Path(os.path.realpath(folder / location))
        if not target.is_relative_to(folder):
            raise UnsafeFile(
                f"{where} keeps its data in '{location}', outside the model's folder {folder}: spikec reads external "
                "data only from files beside the model; move the data file next to the model and re-save it"
            )
        size = check_file(target, f"{where}: its external data", expect="data file").st_size
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else size - offset
        except ValueError:
            raise FrontendError(f"{where}: external data offset/length {info} are not integers") from None
        if offset < 0 or length < 0 or offset + length > size:
            raise FileError(
                f"{where}: external data at offset {offset}, length {length} lies outside '{location}' "
                f"({size} bytes): the data file is truncated or does not belong to this model"
            )
        plans.append((tensor, target, offset, length))
    check_memory(sum(p[3] for p in plans), f"{file}'s external data ({len(plans)} tensors)", "use a smaller model")
    for tensor, target, offset, length in plans:
        with open_file(target) as fh:
            fh.seek(offset)
            raw = fh.read(length)
        if len(raw) != length:
            raise FileError(f"{file}: tensor '{tensor.name}': its external data file '{target}' shrank while read")
        tensor.raw_data = raw
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
