"""Constant folding: evaluate one ONNX node whose inputs are all known at import time.

The node runs alone inside a one-node model that imports the source model's opsets, so
``onnx.reference`` computes the op as that opset defines it (an opset-11 ``Unsqueeze`` reads its
``axes`` attribute; given the bare node, ``onnx.reference`` would run the newest version, which
takes ``axes`` as an input). ``FOLDERS`` holds numpy implementations of the ops ``onnx.reference``
gets wrong, keyed by op type (``@folder("GatherElements")``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from spikec.registry import Registry

Folder = Callable[[onnx.NodeProto, list[np.ndarray | None]], list[np.ndarray]]
FOLDERS: Registry[str, Folder] = Registry("ONNX op folder")


def folder(*op_types: str) -> Callable[[Folder], Folder]:
    """Register ``fn`` as the constant folding of default-domain ops ``op_types``."""
    return FOLDERS.register(*op_types)


def _value_info(name: str, value: np.ndarray | None) -> onnx.ValueInfoProto:
    if value is None:
        return onnx.helper.make_empty_tensor_value_info(name)
    try:
        elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
    except (KeyError, TypeError, ValueError):
        return onnx.helper.make_empty_tensor_value_info(name)
    return onnx.helper.make_tensor_value_info(name, elem, value.shape)


def one_node_model(
    node: onnx.NodeProto, feeds: Mapping[str, np.ndarray], opsets: Iterable[onnx.OperatorSetIdProto]
) -> onnx.ModelProto:
    """``node`` as the whole graph of a model importing ``opsets``; its inputs are graph inputs."""
    inputs = [_value_info(name, feeds.get(name)) for name in dict.fromkeys(n for n in node.input if n)]
    outputs = [onnx.helper.make_empty_tensor_value_info(name) for name in node.output if name]
    graph = onnx.helper.make_graph([node], "fold", inputs, outputs)
    return onnx.helper.make_model(graph, opset_imports=list(opsets))


def evaluate(
    node: onnx.NodeProto, feeds: Mapping[str, np.ndarray], opsets: Sequence[onnx.OperatorSetIdProto]
) -> list[np.ndarray | None]:
    """The node's outputs (``None`` where an output name is empty) for constant inputs ``feeds``.

    Raises whatever the evaluation raises (numpy errors, ``onnx.reference`` errors); the caller
    names the node.
    """
    fold = FOLDERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if fold is not None:
        values = fold(node, [feeds.get(name) if name else None for name in node.input])
        return [v if name else None for v, name in zip(values, node.output, strict=False)]
    names = [name for name in node.output if name]
    evaluator = ReferenceEvaluator(one_node_model(node, feeds, opsets))
    results = dict(zip(names, evaluator.run(names, dict(feeds)), strict=True))
    return [np.asarray(results[name]) if name else None for name in node.output]


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(onnx.helper.get_attribute_value(a))
    return default


@folder("GatherElements")
def _gather_elements(node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """``out[i_0, …, i_r] = data[i_0, …, indices[i_0, …, i_r], …, i_r]`` (the index replaces axis
    ``axis``). onnx.reference (1.23) builds it on ``np.choose``, which takes at most 64 entries along
    the axis, and its fallback reads one index per row: Hugging Face BERT's gather of
    ``token_type_ids`` (512 positions) fails there."""
    data, indices = inputs[0], inputs[1]
    if data is None or indices is None:
        raise ValueError("GatherElements needs data and indices")
    axis = _attr(node, "axis", 0)
    if not -data.ndim <= axis < data.ndim or indices.ndim != data.ndim:
        raise ValueError(f"axis {axis} and indices of rank {indices.ndim} do not fit data of rank {data.ndim}")
    axis %= data.ndim
    size = data.shape[axis]
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise ValueError(f"indices {idx.min()}..{idx.max()} are out of range for an axis of size {size}")
    grid: list[np.ndarray] = list(np.indices(idx.shape, sparse=True))
    grid[axis] = np.where(idx < 0, idx + size, idx)
    return [data[tuple(grid)]]
