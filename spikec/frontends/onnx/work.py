"""Bounds on the work one ONNX node asks for, checked before the work is done.

A 200-byte model can ask for anything: a ``Tile`` of 2·10⁸ repeats, a ``ConstantOfShape`` of
[10⁶, 10⁶], a ``Range`` from 0 to 10¹⁸. Before a node is folded into a constant, ``FOLD_SIZES`` (by op
type) estimates the elements of its result from its constant inputs; every value the lowering adds is
checked by its per-sample size; a constant built at import holds at most ``MAX_CONSTANT`` values; and a
``Tile`` of an activation (one ``Concat`` input per copy) is limited to ``MAX_TILE_COPIES`` copies. Each
estimate also goes through the memory budget (``spikec.safe_read.limits.check_memory``); a refusal names
the node and the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx

from spikec.errors import ResourceLimit
from spikec.registry import Registry
from spikec.safe_read.limits import check_memory, format_bytes

VALUE_BYTES = 8  # values are computed as float64 (folded constants may be narrower: this errs on the safe side)
FOLD_COPIES = 4  # measured peak: a folded constant's float64 bytes about 4 times over while it becomes a node
MAX_CONSTANT = 1 << 26  # values of one constant built at import (an 8192 x 8192 table); beyond, minutes of work
CONSTANT_SECONDS = 2e-7  # measured time per value of a constant built at import (Range 3e7: 5.6 s)
MAX_TILE_COPIES = 1 << 16  # a Tile of an activation is a Concat of this many inputs at most
EDGE_BYTES, EDGE_SECONDS = 200, 7e-5  # measured cost of one Concat input in the lowering (memory, time)
FIX = "the model asks for more than this machine holds (check that this node is what the exporter meant)"

SizeEstimate = Callable[[onnx.NodeProto, Sequence[np.ndarray | None]], int]
FOLD_SIZES: Registry[str, SizeEstimate] = Registry("folded-size estimate")


def fold_size(*op_types: str) -> Callable[[SizeEstimate], SizeEstimate]:
    """Register the estimate of the elements of a folded op's largest result, from its constant inputs."""
    return FOLD_SIZES.register(*op_types)


def _ints(value: np.ndarray | None) -> list[int]:
    if value is None:
        return []
    flat = np.asarray(value).reshape(-1)
    return [int(v) for v in flat.tolist()] if flat.dtype.kind in "iub" else []


@fold_size("Tile")
def _tile(node: onnx.NodeProto, ins: Sequence[np.ndarray | None]) -> int:
    """``|data| · Π repeats``."""
    data = ins[0] if ins else None
    return (0 if data is None else data.size) * math.prod(max(r, 0) for r in _ints(ins[1] if len(ins) > 1 else None))


@fold_size("Expand")
def _expand(node: onnx.NodeProto, ins: Sequence[np.ndarray | None]) -> int:
    """The broadcast of the data's shape and the target shape: the larger size per aligned axis."""
    data = ins[0] if ins else None
    target = _ints(ins[1] if len(ins) > 1 else None)
    shape = list(data.shape) if data is not None else []
    rank = max(len(shape), len(target))
    shape, target = [1] * (rank - len(shape)) + shape, [1] * (rank - len(target)) + target
    return math.prod(max(a, b, 0) for a, b in zip(shape, target, strict=True))


@fold_size("ConstantOfShape")
def _constant_of_shape(node: onnx.NodeProto, ins: Sequence[np.ndarray | None]) -> int:
    """``Π shape``."""
    return math.prod(max(d, 0) for d in _ints(ins[0] if ins else None))


@fold_size("Range")
def _range(node: onnx.NodeProto, ins: Sequence[np.ndarray | None]) -> int:
    """``⌈(limit − start) / delta⌉`` (0 for a zero or non-finite delta, which evaluation refuses)."""
    try:
        start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in ins[:3] if v is not None)
    except (ValueError, IndexError, TypeError):
        return 0
    if not all(math.isfinite(v) for v in (start, limit, delta)) or delta == 0:
        return 0
    return max(0, math.ceil((limit - start) / delta))


@fold_size("Pad")
def _pad(node: onnx.NodeProto, ins: Sequence[np.ndarray | None]) -> int:
    """``Π (size + pads before + pads after)`` per axis (opset 11+: pads as input 1)."""
    data = ins[0] if ins else None
    pads = _ints(ins[1] if len(ins) > 1 else None)
    if data is None or len(pads) != 2 * data.ndim:
        return 0 if data is None else data.size
    r = data.ndim
    return math.prod(max(d + pads[i] + pads[i + r], 0) for i, d in enumerate(data.shape))


def check_constant(n: int, what: str) -> None:
    """A constant built at import: at most ``MAX_CONSTANT`` values, and its copies within the memory budget."""
    if n > MAX_CONSTANT:
        raise ResourceLimit(
            f"{what} of {n:,} values: more than the {MAX_CONSTANT:,} spikec builds while importing (about "
            f"{format_bytes(n * VALUE_BYTES * FOLD_COPIES)} and {n * CONSTANT_SECONDS:,.3g} s); {FIX}"
        )
    check_memory(n * VALUE_BYTES * FOLD_COPIES, f"{what} of {n:,} values", FIX)


def check_fold(node: onnx.NodeProto, feeds: Sequence[np.ndarray | None], where: str) -> None:
    """``ResourceLimit`` when folding ``node`` would build a constant too large (``check_constant``)."""
    estimate = FOLD_SIZES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if estimate is not None:
        check_constant(estimate(node, feeds), f"{where}folding {node.op_type} into a constant")


def check_value(shape: Sequence[int], where: str) -> None:
    """``ResourceLimit`` when one sample of a value of ``shape`` is over the memory budget."""
    n = math.prod(int(d) for d in shape)
    check_memory(n * VALUE_BYTES, f"{where}a value of shape {tuple(shape)} ({n:,} values per sample)", FIX)


def check_copies(copies: int, where: str) -> None:
    """A ``Tile`` of an activation: at most ``MAX_TILE_COPIES`` copies (each is one input of a Concat)."""
    if copies > MAX_TILE_COPIES:
        raise ResourceLimit(
            f"{where}repeating an activation {copies:,} times makes a Concat of {copies:,} inputs (about "
            f"{format_bytes(copies * EDGE_BYTES)} and {copies * EDGE_SECONDS / 60:,.3g} minutes to build); spikec "
            f"lowers at most {MAX_TILE_COPIES:,} copies: {FIX}"
        )
