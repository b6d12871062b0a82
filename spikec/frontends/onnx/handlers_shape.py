"""Shape and indexing ONNX ops: Reshape, Flatten, Transpose, (Un)Squeeze, Concat, Slice, Split,
Gather*, Expand, Pad, Tile, Identity, Cast, and Shape/Size of activations (which become constants).

In batch mode (see the package docstring) every shape here is checked to keep the batch axis in
front and untouched; a target shape computed from ``Shape`` of a symbolic batch is resolved for
two trial batch sizes, so an entry that follows the batch is told apart from a fixed one.
"""

from __future__ import annotations

import math

import numpy as np

from spikec.frontends.onnx.handlers_math import need_act, need_const, operands
from spikec.frontends.onnx.lowering import FLOAT_TYPES, Lowering
from spikec.frontends.onnx.registry import Act, Const, OnnxNode, Outputs, handler
from spikec.ir import Binary, Concat, Constant, Flatten, Gather, Pad, Reshape, Slice, Transpose
from spikec.ir.node import Shape
from spikec.ir.spatial import PAD_MODES


def reshape(ctx: Lowering, x: Act, shape: Shape) -> Act:
    """``x`` with per-sample shape ``shape`` (no node when it already has it)."""
    return x if tuple(shape) == tuple(x.shape) else ctx.add(Reshape(shape=tuple(shape)), [x])


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


def per_sample_shape(ctx: Lowering, x: Act, target: Const, what: str, resolve: bool = True) -> Shape:
    """The per-sample shape an ONNX target shape gives ``x`` (Reshape, Expand), checked in every
    trial batch size: with a batch axis, the result must keep the batch in front."""
    results = []
    for w, batch in enumerate(ctx.batch_sizes if ctx.batch else (1,)):
        t = target.alt if w and target.alt is not None else target.value
        full = ctx.full_shape(x, w)
        if resolve:
            out = _resolve(ctx, full, t, allowzero=False)
        else:
            try:
                out = tuple(int(d) for d in np.broadcast_shapes(full, tuple(int(v) for v in t.reshape(-1))))
            except ValueError:
                raise ctx.fail(f"cannot broadcast {full} to {t.tolist()}") from None
        if ctx.batch:
            if not out or out[0] != batch:
                raise ctx.fail(
                    f"{what} {t.tolist()} turns {full} into {out}, which does not keep the batch axis (axis 0) "
                    "in front: spikec keeps samples apart; export the model with a batch-preserving shape"
                )
            out = out[1:]
        results.append(out)
    if any(r != results[0] for r in results):
        raise ctx.fail(f"{what} gives per-sample shapes {results} for different batch sizes")
    return results[0]


@handler("Reshape")
def _reshape(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    target = n.input(1)
    if not isinstance(target, Const):
        raise ctx.fail("the target shape (input 1) must be a constant or computed from shapes")
    if n.attr("allowzero", 0) and 0 in target.value:
        raise ctx.fail("allowzero=1 with a 0 in the target shape gives an empty tensor")
    return [reshape(ctx, x, per_sample_shape(ctx, x, target, "target shape"))]


@handler("Flatten")
def _flatten(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    rank = ctx.rank(x)
    axis = int(n.attr("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis <= rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    if ctx.batch:
        if axis != 1:
            raise ctx.fail(f"Flatten(axis={axis}) merges the batch axis with others; only axis=1 keeps it apart")
        if len(x.shape) > 1:
            return [ctx.add(Flatten(), [x])]
        return [reshape(ctx, x, (math.prod(x.shape),))]
    return [reshape(ctx, x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))]


def transpose(ctx: Lowering, x: Act, perm: list[int]) -> Act:
    """ONNX Transpose of ``x`` by the full permutation ``perm`` (the batch axis must stay in front)."""
    rank = ctx.rank(x)
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(f"perm {perm} is not a permutation of {rank} axes")
    if ctx.batch:
        if perm[0] != 0:
            raise ctx.fail(f"perm {perm} moves the batch axis (axis 0); spikec keeps it in front")
        perm = [p - 1 for p in perm[1:]]
    if perm == sorted(perm):
        return x
    return ctx.add(Transpose(perm=tuple(perm)), [x])


@handler("Transpose")
def _transpose(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    return [transpose(ctx, x, [int(p) for p in n.attr("perm", list(range(ctx.rank(x)))[::-1])])]


def reshape_full(ctx: Lowering, x: Act, target: list[int]) -> Act:
    """ONNX Reshape of ``x`` to ``target`` (0 copies an axis, -1 is inferred; the batch stays in front)."""
    return reshape(ctx, x, per_sample_shape(ctx, x, Const(np.asarray(target, dtype=np.int64)), "target shape"))


def _axes(n: OnnxNode, ctx: Lowering) -> list[int] | None:
    if ctx.opset >= 13:
        return None if n.input(1) is None else [int(a) for a in need_const(n, 1, "axes", ctx).reshape(-1)]
    axes = n.attr("axes")
    return None if axes is None else [int(a) for a in axes]


@handler("Squeeze")
def _squeeze(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axes = _axes(n, ctx)
    if axes is None:
        if ctx.batch:
            raise ctx.fail("Squeeze without axes may remove the batch axis; export it with explicit axes")
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = {ctx.axis(a, ctx.rank(x)) for a in axes}
        if any(x.shape[i] != 1 for i in drop):
            raise ctx.fail(f"cannot squeeze axes {axes} of a tensor of per-sample shape {x.shape}")
    return [reshape(ctx, x, tuple(d for i, d in enumerate(x.shape) if i not in drop))]


@handler("Unsqueeze")
def _unsqueeze(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axes = _axes(n, ctx)
    if not axes:
        raise ctx.fail("axes are required")
    rank = ctx.rank(x) + len(axes)
    new = sorted(ctx.axis(a, rank) for a in axes)
    if len(set(new)) != len(new):
        raise ctx.fail(f"axes {axes} repeat an axis")
    shape = list(x.shape)
    for a in new:
        shape.insert(a, 1)
    return [reshape(ctx, x, tuple(shape))]


@handler("Concat")
def _concat(n: OnnxNode, ctx: Lowering) -> Outputs:
    values = [v for v in n.ins if v is not None]
    acts = operands(ctx, values)
    if len(acts) == 1:
        return acts
    axis = ctx.axis(int(n.attr("axis")), max(ctx.rank(v) for v in values))
    return [ctx.add(Concat(axis=axis), acts)]


def slice_node(ctx: Lowering, x: Act, axes: list[int], starts: list[int], ends: list[int], steps: list[int]) -> Act:
    """ONNX slicing of ``x`` on full axes ``axes``; a whole-batch slice of axis 0 is allowed."""
    rank = ctx.rank(x)
    keep: list[tuple[int, int, int, int]] = []
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        full = a + rank if a < 0 else a
        if ctx.batch and full == 0:
            if st == 1 and s in (0, -(2**63)) and e >= 2**31 - 1:
                continue  # the whole batch: nothing to do
            raise ctx.fail(
                f"slicing [{s}:{e}:{st}] on the batch axis (axis 0) selects samples; spikec keeps them apart"
            )
        p = ctx.axis(a, rank)
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


@handler("Gather")
def _gather(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axis = ctx.axis(int(n.attr("axis", 0)), ctx.rank(x))
    idx = _indices(ctx, need_const(n, 1, "indices", ctx), x.shape[axis])
    return [ctx.add(Gather(indices=idx, axis=axis), [x])]


def _flat_gather(ctx: Lowering, x: Act, flat: np.ndarray) -> Act:
    """Pick entries of ``x`` by per-sample flat index (an array of the output's shape)."""
    return ctx.add(Gather(indices=flat, axis=0), [reshape(ctx, x, (math.prod(x.shape),))])


@handler("GatherElements")
def _gather_elements(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axis = ctx.axis(int(n.attr("axis", 0)), ctx.rank(x))
    idx = ctx.per_sample(Const(need_const(n, 1, "indices", ctx)), ctx.rank(x), "indices")
    if idx.ndim != len(x.shape):
        raise ctx.fail(f"indices of shape {idx.shape} do not match the data rank")
    idx = _indices(ctx, idx, x.shape[axis])
    grid = list(np.indices(idx.shape))
    grid[axis] = idx
    return [_flat_gather(ctx, x, np.ravel_multi_index(tuple(grid), x.shape))]


@handler("GatherND")
def _gather_nd(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    if ctx.batch or int(n.attr("batch_dims", 0)):
        raise ctx.fail("GatherND is supported without a batch axis and with batch_dims=0")
    idx = np.asarray(need_const(n, 1, "indices", ctx), dtype=np.int64)
    q = idx.shape[-1]
    lead = x.shape[:q]
    coords = [_indices(ctx, idx[..., i], lead[i]) for i in range(q)]
    flat = np.ravel_multi_index(tuple(coords), lead)
    rows = reshape(ctx, x, (math.prod(lead), *x.shape[q:]))
    return [ctx.add(Gather(indices=flat, axis=0), [rows])]


@handler("Identity", "Cast")
def _identity(n: OnnxNode, ctx: Lowering) -> Outputs:
    if n.op == "Cast" and n.attr("to") not in FLOAT_TYPES:
        raise ctx.fail("a cast of an activation to a non-float type; spikec evaluates real-valued tensors")
    return [need_act(n, 0, ctx)]


@handler("Constant", "ConstantOfShape", "Range", "EyeLike")
def _constant_only(n: OnnxNode, ctx: Lowering) -> Outputs:
    """These fold to constants when their inputs are constant (reaching the handler means an input
    is computed at run time)."""
    raise ctx.fail(f"{n.op} must evaluate to a constant at import time: its inputs must be constants")


@handler("Shape", "Size")
def _shape(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    worlds = []
    for w in range(len(ctx.batch_sizes) if ctx.batch else 1):
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
    shape = per_sample_shape(ctx, x, target, "expanded shape", resolve=False)
    if shape == x.shape:
        return [x]
    ones = ctx.add(Constant(value=np.ones(shape)), [], suffix="ones")
    return [ctx.add(Binary(op="mul"), [x, ones])]  # x·1 broadcasts exactly


@handler("Tile")
def _tile(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    repeats = [int(r) for r in need_const(n, 1, "repeats", ctx).reshape(-1)]
    for a, r in enumerate(repeats):
        if r != 1:
            axis = ctx.axis(a, len(repeats))
            x = ctx.add(Concat(axis=axis), [x] * r)
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
        if (b or e) and ctx.batch and a % rank == 0:
            raise ctx.fail("padding the batch axis (axis 0) adds samples; spikec keeps samples apart")
        if b or e:
            p = ctx.axis(a, rank)
            per[p], per[r + p] = b, e
    if not any(per):
        return [x]
    return [ctx.add(Pad(pads=tuple(per), value=value, mode=mode), [x])]
