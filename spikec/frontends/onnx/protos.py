"""Reading ONNX protos into numpy and SIR names: initializers, sparse initializers, bound inputs, the
names a node reads (subgraphs included)."""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import numpy_helper

from spikec.errors import FrontendError
from spikec.ir.graph import NAME_RE


def sir_name(name: str) -> str:
    """An ONNX name as a SIR node name (letters, digits, ``_ . -``; not starting with ``.``/``-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name).strip("_") or "node"
    return cleaned if NAME_RE.fullmatch(cleaned) else f"n{cleaned}"


def node_reads(proto: onnx.NodeProto) -> list[str]:
    """The names a node reads: its inputs, and every name read inside its subgraphs (If branches)."""
    names = list(proto.input)
    for a in proto.attribute:
        for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
            names += [name for n in sub.node for name in node_reads(n)]
    return names


def initializer_array(init: onnx.TensorProto, file: str) -> np.ndarray:
    """An initializer's value; ``FrontendError`` naming it when its data does not match its type and dims."""
    try:
        return numpy_helper.to_array(init)
    except (ValueError, TypeError, OSError) as err:
        raise FrontendError(
            f"{file}: initializer '{init.name}' (dims {list(init.dims)}) is unreadable: {err}; re-export the model"
        ) from None


def as_input_dtype(value: np.ndarray, vi: onnx.ValueInfoProto) -> np.ndarray:
    elem = vi.type.tensor_type.elem_type
    if elem:
        return value.astype(onnx.helper.tensor_dtype_to_np_dtype(elem), copy=False)
    return value


def dense_array(sparse: onnx.SparseTensorProto) -> np.ndarray:
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    if indices.ndim == 1:
        dense.reshape(-1)[indices] = values
    else:
        dense[tuple(indices.T)] = values
    return dense
