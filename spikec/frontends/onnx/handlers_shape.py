"""Shape and indexing ONNX ops: Reshape, Flatten, Transpose, (Un)Squeeze, Concat, Slice, Split,
Gather*, Expand, Pad, Tile, Identity, Cast, and Shape/Size of activations (which become constants).

In batch mode (see the package docstring) every shape here is checked to keep the batch axis in
front and untouched; a target shape computed from ``Shape`` of a symbolic batch is resolved for
two trial batch sizes, so an entry that follows the batch is told apart from a fixed one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx

from spikec.frontends.onnx import work
from spikec.frontends.onnx.batch_plan import FLOAT_TYPES
from spikec.frontends.onnx.handlers_math import need_act, need_const, operands
from spikec.frontends.onnx.handlers_nn import real
from spikec.frontends.onnx.layout import BatchAxisError, Layout, locate, unview, view
from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.registry import Act, Const, OnnxNode, Outputs, handler
from spikec.ir import (
    Binary,
    Concat,
    Constant,
    Flatten,
    Gather,
    Input,
    Pad,
    Reshape,
    Slice,
    TokenInput,
    Transpose,
    Unary,
)
from spikec.ir.node import Shape
from spikec.ir.spatial import PAD_MODES


def reshape(ctx: Lowering, x: Act, shape: Shape, layout: Layout | None) -> Act:
    """``x`` with per-sample shape ``shape`` and batch ``layout`` (no node when the shape stays)."""
    if tuple(shape) == tuple(x.shape):
        return Act(x.name, x.shape, layout)
    return ctx.add(Reshape(shape=tuple(shape)), [x], layout=layout)


def _resolve(ctx: Lowering, full: Shape, target: np.ndarray, allowzero: bool) -> tuple[int, ...]:
    out = [int(t) for t in target.reshape(-1)]
    for i, t in enumerate(out):
        if t == 0 and not allowzero:
            if i >= len(full):
                raise ctx.fail(f"target shape {out} copies axis {i}, which the input {full} lacks")
            out[i] = full[i]
    if out.count(-1) > 1 or any(t < -1 for t in out):
        raise ctx.fail(f"target shape {out} is invalid")
    if -1 in out:
        known = math.prod(t for t in out if t != -1)
        if known == 0 or math.prod(full) % known:
            raise ctx.fail(f"cannot reshape {full} to {out}")
        out[out.index(-1)] = math.prod(full) // known
    if math.prod(out) != math.prod(full):
        raise ctx.fail(f"cannot reshape {full} ({math.prod(full)} values) to {out}")
    return tuple(out)


def onnx_reshape(ctx: Lowering, x: Act, target: Const, what: str = "target shape") -> Act:
    """ONNX Reshape of ``x`` to ``target`` (0 copies an axis, -1 is inferred), checked in every trial batch
    size: the batch must stay one block of the result (an axis of its own, or merged with sample axes)."""
    options: list[list[tuple[Shape, Layout | None]]] = []
    outs = []
    for w in ctx.worlds():
        full = ctx.full_shape(x, w)
        out = _resolve(ctx, full, target.alt if w and target.alt is not None else target.value, allowzero=False)
        outs.append(out)
        if x.layout is None or out == full:
            options.append([(out if x.layout is None else x.shape, x.layout)])
        else:
            options.append(list(locate(x.shape, x.layout, ctx.batch_sizes[w], out, prefer=x.layout.group)))
    common = [o for o in options[0] if all(o in later for later in options[1:])]
    if not common:
        shown = target.value.reshape(-1).tolist()
        raise BatchAxisError(
            f"{what} {shown} turns {ctx.full_shape(x)} into {outs[0]}, which does not keep the samples apart "
            "(the batch axis is split or interleaved with sample entries)"
        )
    shape, layout = common[0]
    return reshape(ctx, x, shape, layout)


@handler("Reshape")
def _reshape(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    target = n.input(1)
    if not isinstance(target, Const):
        raise ctx.fail("the target shape (input 1) must be a constant or computed from shapes")
    if n.attr("allowzero", 0) and 0 in target.value:
        raise ctx.fail("allowzero=1 with a 0 in the target shape gives an empty tensor")
    return [onnx_reshape(ctx, x, target)]


def _per_world(ctx: Lowering, fn: Callable[[tuple[int, ...]], tuple[int, ...]], x: Act) -> Const:
    """A target shape computed from ``x``'s ONNX shape in every trial batch size."""
    shapes = [np.asarray(fn(ctx.full_shape(x, w)), dtype=np.int64) for w in ctx.worlds()]
    same = all(np.array_equal(shapes[0], s) for s in shapes)
    return Const(shapes[0], None if same else shapes[-1])


@handler("Flatten")
def _flatten(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    rank = ctx.rank(x)
    axis = int(n.attr("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis <= rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    if x.layout == Layout(0) and axis == 1 and len(x.shape) > 1:
        return [ctx.add(Flatten(), [x], layout=Layout(0))]
    target = _per_world(ctx, lambda full: (math.prod(full[:axis]), math.prod(full[axis:])), x)
    return [onnx_reshape(ctx, x, target, f"Flatten(axis={axis})")]


def transpose(ctx: Lowering, x: Act, perm: list[int]) -> Act:
    """ONNX Transpose of ``x`` by the full permutation ``perm``: the batch moves with its axis."""
    rank = ctx.rank(x)
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(f"perm {perm} is not a permutation of {rank} axes")
    axes = view(range(len(x.shape)), x.layout)  # sample axis numbers, grouped as the ONNX axes
    moved = [axes[p] for p in perm]
    order = [int(a) for axis in moved for a in axis if a is not None]
    _, layout = unview(moved)
    if order == sorted(order):
        return Act(x.name, x.shape, layout)
    return ctx.add(Transpose(perm=tuple(order)), [x], layout=layout)


@handler("Transpose")
def _transpose(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    return [transpose(ctx, x, [int(p) for p in n.attr("perm", list(range(ctx.rank(x)))[::-1])])]


def reshape_full(ctx: Lowering, x: Act, target: list[int]) -> Act:
    """ONNX Reshape of ``x`` to ``target`` (0 copies an axis, -1 is inferred)."""
    return onnx_reshape(ctx, x, Const(np.asarray(target, dtype=np.int64)))


def _axes(n: OnnxNode, ctx: Lowering) -> list[int] | None:
    if ctx.opset >= 13:
        return None if n.input(1) is None else [int(a) for a in need_const(n, 1, "axes", ctx).reshape(-1)]
    axes = n.attr("axes")
    return None if axes is None else [int(a) for a in axes]


@handler("Squeeze")
def _squeeze(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axes = _axes(n, ctx)
    rank = ctx.rank(x)
    full = ctx.full_shape(x)
    if axes is None:
        if x.layout is not None and len(ctx.batch_sizes) > 1:
            raise ctx.fail("Squeeze without axes may remove the symbolic batch axis; export it with explicit axes")
        drop = {i for i, d in enumerate(full) if d == 1}
    else:
        drop = {a + rank if a < 0 else a for a in axes}
        if any(not 0 <= a < rank or full[a] != 1 for a in drop):
            raise ctx.fail(f"cannot squeeze axes {axes} of a tensor of ONNX shape {full}")
    if x.layout is not None and x.layout.group in drop:
        x = ctx.unbatch(x)  # a static batch of 1 squeezed away: BatchAxisError for any other
    kept = [axis for i, axis in enumerate(view(x.shape, x.layout)) if i not in drop]
    return [reshape(ctx, x, *unview(kept))]


@handler("Unsqueeze")
def _unsqueeze(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axes = _axes(n, ctx)
    if not axes:
        raise ctx.fail("axes are required")
    rank = ctx.rank(x) + len(axes)
    new = sorted(a + rank if a < 0 else a for a in axes)
    if len(set(new)) != len(new) or any(not 0 <= a < rank for a in new):
        raise ctx.fail(f"axes {axes} repeat an axis or are out of range for rank {rank}")
    grown = view(x.shape, x.layout)
    for a in new:
        grown.insert(a, [1])
    return [reshape(ctx, x, *unview(grown))]


@handler("Concat")
def _concat(n: OnnxNode, ctx: Lowering) -> Outputs:
    values = [v for v in n.ins if v is not None]
    acts = operands(ctx, values)
    if len(acts) == 1:
        return acts
    ref = max(acts, key=lambda a: (a.layout is not None, len(a.shape)))
    axis = ctx.axis(ref, int(n.attr("axis")))
    return [ctx.add(Concat(axis=axis), acts, layout=ref.layout)]


def slice_node(ctx: Lowering, x: Act, axes: list[int], starts: list[int], ends: list[int], steps: list[int]) -> Act:
    """ONNX slicing of ``x`` on ONNX axes ``axes``; a slice that keeps the whole batch axis is allowed."""
    rank = ctx.rank(x)
    full = ctx.full_shape(x)
    keep: list[tuple[int, int, int, int]] = []
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        whole = a + rank if a < 0 else a
        if x.layout is not None and whole == x.layout.group:
            if st == 1 and s in (0, -(2**63)) and (e >= 2**31 - 1 or (len(ctx.batch_sizes) == 1 and e >= full[whole])):
                continue  # the whole batch: nothing to do
            raise BatchAxisError(f"slicing [{s}:{e}:{st}] on the batch axis (axis {whole}) selects samples")
        p = ctx.axis(x, a)
        size = x.shape[p]
        keep.append((p, max(min(s, size), -size - 1), max(min(e, size), -size - 1), st))
    if not keep:
        return x
    axes_, starts_, ends_, steps_ = (tuple(v) for v in zip(*keep, strict=True))
    node = Slice(axes=axes_, starts=starts_, ends=ends_, steps=steps_)
    ranges = node.ranges(x.shape)
    if all(r == range(x.shape[a]) for a, r in ranges.items()):
        return x
    return ctx.add(node, [x])


@handler("Slice")
def _slice(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    if ctx.opset < 10:
        starts, ends = list(n.attr("starts")), list(n.attr("ends"))
        axes = list(n.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = [int(v) for v in need_const(n, 1, "starts", ctx).reshape(-1)]
        ends = [int(v) for v in need_const(n, 2, "ends", ctx).reshape(-1)]
        axes = list(range(len(starts))) if n.input(3) is None else list(need_const(n, 3, "axes", ctx).reshape(-1))
        steps = [1] * len(starts) if n.input(4) is None else list(need_const(n, 4, "steps", ctx).reshape(-1))
    if 0 in steps:
        raise ctx.fail("a slice step is 0")
    return [slice_node(ctx, x, [int(a) for a in axes], starts, ends, [int(s) for s in steps])]


@handler("Split")
def _split(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axis = int(n.attr("axis", 0))
    size = ctx.full_shape(x)[axis]
    parts = len(n.proto.output)
    if ctx.opset >= 13 and n.input(1) is not None:
        sizes = [int(s) for s in need_const(n, 1, "split", ctx).reshape(-1)]
    elif ctx.opset < 13 and n.attr("split") is not None:
        sizes = [int(s) for s in n.attr("split")]
    elif n.attr("num_outputs") is not None:
        chunk = -(-size // int(n.attr("num_outputs")))
        sizes = [min(chunk, size - i * chunk) for i in range(int(n.attr("num_outputs")))]
    else:
        if size % parts:
            raise ctx.fail(f"cannot split {size} entries into {parts} equal parts")
        sizes = [size // parts] * parts
    if sum(sizes) != size or len(sizes) != parts:
        raise ctx.fail(f"split sizes {sizes} do not cover axis {axis} of size {size} in {parts} outputs")
    outs, start = [], 0
    for k in sizes:
        outs.append(slice_node(ctx, x, [axis], [start], [start + k], [1]))
        start += k
    return outs


def _indices(ctx: Lowering, idx: np.ndarray, size: int) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise ctx.fail(f"indices {idx.min()}..{idx.max()} are out of range for an axis of size {size}")
    return np.where(idx < 0, idx + size, idx)


def _embedding(n: OnnxNode, ctx: Lowering, table: Const, ids: Act) -> Act:
    """A lookup of rows of a constant table by a graph input of token ids: that input becomes a
    ``TokenInput``, whose lookup runs on the host (the network starts at the embedded vectors)."""
    source = ctx.nodes.get(ids.name)
    if int(n.attr("axis", 0)) != 0 or not isinstance(source, Input) or table.value.ndim < 2:
        raise ctx.fail(
            "indices computed at run time are supported only as token ids read straight from a graph input, "
            "looking up rows (axis 0) of a constant embedding table"
        )
    if any(e.src == ids.name for e in ctx.edges):
        raise ctx.fail(
            f"the token ids of input '{ids.name}' are read by another op too; spikec encodes them on the host"
        )
    rows = ctx.static(table, "embedding table")
    ctx.nodes[ids.name] = TokenInput(shape=source.shape, table=real(rows), origin=source.origin)
    ctx.token_ids.add(ids)
    return Act(ids.name, (*ids.shape, *rows.shape[1:]), ids.layout)


@handler("Gather")
def _gather(n: OnnxNode, ctx: Lowering) -> Outputs:
    data, indices = n.input(0), n.input(1)
    if isinstance(data, Const) and isinstance(indices, Act):
        return [_embedding(n, ctx, data, indices)]
    x = need_act(n, 0, ctx)
    axis = ctx.axis(x, int(n.attr("axis", 0)))
    idx = _indices(ctx, need_const(n, 1, "indices", ctx), x.shape[axis])
    layout = x.layout
    if layout is not None and axis < layout.pos:
        layout = layout.shifted(idx.ndim - 1)  # the indexed axis becomes the indices' axes
    return [ctx.add(Gather(indices=idx, axis=axis), [x], layout=layout)]


def _flat_gather(ctx: Lowering, x: Act, flat: np.ndarray, layout: Layout | None) -> Act:
    """Pick entries of ``x`` by per-sample flat index (an array of the output's shape)."""
    rows = ctx.add(Reshape(shape=(math.prod(x.shape),)), [x], layout=None) if len(x.shape) != 1 else x
    return ctx.add(Gather(indices=flat, axis=0), [rows], layout=layout)


@handler("GatherElements")
def _gather_elements(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axis = ctx.axis(x, int(n.attr("axis", 0)))
    idx = ctx.per_sample(Const(need_const(n, 1, "indices", ctx)), x, "indices")
    if idx.ndim != len(x.shape):
        raise ctx.fail(f"indices of shape {idx.shape} do not match the data rank")
    idx = _indices(ctx, idx, x.shape[axis])
    grid = list(np.indices(idx.shape))
    grid[axis] = idx
    return [_flat_gather(ctx, x, np.ravel_multi_index(tuple(grid), x.shape), x.layout)]


@handler("GatherND")
def _gather_nd(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    if x.layout is not None:
        raise BatchAxisError("GatherND indexes from the batch axis on")
    if int(n.attr("batch_dims", 0)):
        raise ctx.fail("GatherND is supported with batch_dims=0")
    idx = np.asarray(need_const(n, 1, "indices", ctx), dtype=np.int64)
    q = idx.shape[-1]
    lead = x.shape[:q]
    coords = [_indices(ctx, idx[..., i], lead[i]) for i in range(q)]
    flat = np.ravel_multi_index(tuple(coords), lead)
    rows = reshape(ctx, x, (math.prod(lead), *x.shape[q:]), None)
    return [ctx.add(Gather(indices=flat, axis=0), [rows], layout=None)]


@handler("Identity")
def _identity(n: OnnxNode, ctx: Lowering) -> Outputs:
    return [need_act(n, 0, ctx)]


@handler("Cast")
def _cast(n: OnnxNode, ctx: Lowering) -> Outputs:
    """Values are real numbers at run time: a cast to a float type changes nothing; to bool it is
    ``x ≠ 0``; to an integer type it truncates toward zero (integer inputs are exact either way)."""
    x = need_act(n, 0, ctx)
    to = n.attr("to")
    if to in FLOAT_TYPES:
        return [x]
    return [ctx.add(Unary(op="nonzero" if to == onnx.TensorProto.BOOL else "trunc"), [x])]


@handler("Constant", "ConstantOfShape", "Range", "EyeLike")
def _constant_only(n: OnnxNode, ctx: Lowering) -> Outputs:
    """These fold to constants when their inputs are constant (reaching the handler means an input
    is computed at run time)."""
    raise ctx.fail(f"{n.op} must evaluate to a constant at import time: its inputs must be constants")


@handler("Shape", "Size")
def _shape(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    worlds = []
    for w in ctx.worlds():
        full = np.asarray(ctx.full_shape(x, w), dtype=np.int64)
        if n.op == "Size":
            worlds.append(np.asarray(math.prod(full.tolist()), dtype=np.int64))
        else:
            start, end = int(n.attr("start", 0)), n.attr("end")
            worlds.append(full[start : None if end is None else int(end)])
    same = all(np.array_equal(worlds[0], w) for w in worlds)
    return [Const(worlds[0], None if same else worlds[-1])]


@handler("Expand")
def _expand(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    target = n.input(1)
    if not isinstance(target, Const):
        raise ctx.fail("the target shape (input 1) must be a constant or computed from shapes")
    results = []
    for w in ctx.worlds():
        full = ctx.full_shape(x, w)
        t = target.alt if w and target.alt is not None else target.value
        try:
            out = tuple(int(d) for d in np.broadcast_shapes(full, tuple(int(v) for v in t.reshape(-1))))
        except ValueError:
            raise ctx.fail(f"cannot broadcast {full} to {t.tolist()}") from None
        grown = view(x.shape, x.layout)
        new = len(out) - len(full)
        if x.layout is not None and out[new + x.layout.group] != full[x.layout.group]:
            raise BatchAxisError(f"expanding {full} to {out} broadcasts the batch axis")
        axes: list[list[int | None]] = [[d] for d in out[:new]]
        axes += [axis if None in axis else [out[new + k]] for k, axis in enumerate(grown)]
        results.append(unview(axes))
    if any(r != results[0] for r in results):
        shapes = [r[0] for r in results]
        raise ctx.fail(f"the expanded shape gives per-sample shapes {shapes} for different batch sizes")
    shape, layout = results[0]
    if shape == x.shape:
        return [x]
    ones = ctx.add(Constant(value=np.ones(shape)), [], suffix="ones", layout=None)
    return [ctx.add(Binary(op="mul"), [x, ones], layout=layout)]  # x·1 broadcasts exactly


@handler("Tile")
def _tile(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    repeats = [int(r) for r in need_const(n, 1, "repeats", ctx).reshape(-1)]
    if any(r < 1 for r in repeats):
        raise ctx.fail(f"repeats {repeats} must be >= 1 (0 would give an empty tensor)")
    work.check_copies(sum(r for r in repeats if r != 1), ctx.where())
    for a, r in enumerate(repeats):
        if r != 1:
            x = ctx.add(Concat(axis=ctx.axis(x, a)), [x] * r)
    return [x]


@handler("Pad")
def _pad(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    mode = n.attr("mode", "constant")
    if mode not in PAD_MODES:
        raise ctx.fail(f"mode '{mode}' is not known (ONNX Pad modes: {', '.join(PAD_MODES)})")
    rank = ctx.rank(x)
    if ctx.opset < 11:
        pads, value = [int(p) for p in n.attr("pads")], float(n.attr("value", 0.0))
        axes = list(range(rank))
    else:
        pads = [int(p) for p in need_const(n, 1, "pads", ctx).reshape(-1)]
        value = 0.0 if n.input(2) is None else float(need_const(n, 2, "constant_value", ctx).reshape(-1)[0])
        axes = list(range(rank)) if n.input(3) is None else [int(a) for a in need_const(n, 3, "axes", ctx)]
    if any(p < 0 for p in pads):
        raise ctx.fail(f"negative pads {pads} (cropping) are not supported")
    r = len(x.shape)
    per = [0] * (2 * r)
    for k, a in enumerate(axes):
        b, e = pads[k], pads[len(axes) + k]
        if b or e:
            p = ctx.axis(x, a)
            per[p], per[r + p] = b, e
    if not any(per):
        return [x]
    return [ctx.add(Pad(pads=tuple(per), value=value, mode=mode), [x])]
