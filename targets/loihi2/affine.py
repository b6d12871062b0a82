r"""The linear float nodes between neuron layers as operations on ``Affine`` values (targets/loihi2/signals.py).

``LINEAR`` gives, per kind, the value of a node from the values of its inputs. Every rule is exact:

* ``Conv``, ``SumPool``/``AvgPool``, an average ``Pool`` (symmetric padding), a per-channel ``Scale``, ``Reduce``
  sum/mean: a correlation ``op`` applied to each term, ``op ∘ M_k`` (targets/loihi2/linear.py); a term that
  covers channels [a, b) of the value meets only op's input channels [a, b) (a Concat feeding a conv splits
  the conv's weights; a depthwise op keeps the term where it is);
* ``Dense`` (on a flat value): its columns over each term's span, times the term's map;
* ``Add``/``Identity``: the terms of all inputs, biases summed; ``Concat`` on axis 0: the terms moved to their
  offsets; ``Flatten``: the terms read flattened (channel c of a (C, H, W) map is entries [c·H·W, (c+1)·H·W));
* ``Reshape``/``Transpose``/``Slice``: followed element by element (``Routed``) until the shape is a
  (C, H, W) map again — then it must be a channel selection or permutation, a 1×1 synapse of 0/1 weights
  (ShuffleNet's channel shuffle, a channel ``Slice``) — or flat (the identity order, or channels permuted).

The bias ``b`` of a node is the node evaluated on its inputs' biases (the interpreter's own kernels).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from spikec.interp import evaluate
from spikec.ir import Graph, Input, ann, spatial, tensor
from spikec.ir.node import Node
from spikec.ir.structure import Output
from spikec.targets.loihi2.linear import (
    ConvMap,
    MatrixMap,
    NotOneSynapse,
    as_matrix,
    channel_slice,
    compose,
    dense_as_conv,
    identity,
    is_channelwise,
)
from spikec.targets.loihi2.signals import Affine, Routed, Signal, Term, Value, compact_bias, lift

Shape = tuple[int, ...]
Rule = Callable[[Node, Sequence[Value], Sequence[Shape], Shape], Value]


# -- operations on values ----------------------------------------------------------------------------------
def apply_conv(value: Affine, op: ConvMap, bias: np.ndarray | None) -> Affine:
    """``op`` (a correlation on the value's (C, H, W) shape) applied to every term."""
    terms = []
    for term in value.terms:
        part = channel_slice(op, term.offset, term.offset + term.length)
        if term.map is None:
            new = part
        elif isinstance(term.map, ConvMap):
            new = compose(part, term.map)
        else:  # pragma: no cover - a (C, H, W) value has no matrix terms
            raise NotOneSynapse("a correlation of a flat value")
        terms.append(Term(term.source, new, term.offset if is_channelwise(op) else 0))
    return Affine(op.out_shape, tuple(terms), bias)


def apply_dense(value: Affine, weight: np.ndarray, bias: np.ndarray | None) -> Affine:
    """``y = W x`` on a flat value: each term gets W's columns over its span, times its map."""
    terms = []
    for term in value.terms:
        cols = np.asarray(weight[:, term.offset : term.offset + term.length], np.float64)
        if term.map is None:
            new: ConvMap | MatrixMap = MatrixMap(cols)
        elif isinstance(term.map, MatrixMap):
            new = MatrixMap(cols @ term.map.weight)
        else:
            inner = term.map.replace(flat=False)
            new = compose(dense_as_conv(cols, inner.out_shape), inner)
        terms.append(Term(term.source, new))
    return Affine((int(weight.shape[0]),), tuple(terms), bias)


def flatten(value: Affine) -> Affine:
    """A (C, H, W) value read flattened (row-major)."""
    c, h, w = value.shape
    terms = []
    for term in value.terms:
        m = term.map if term.map is not None else identity(term.source.shape)
        assert isinstance(m, ConvMap)
        terms.append(Term(term.source, m.replace(flat=True), term.offset * h * w))
    bias = None if value.bias is None else np.broadcast_to(value.bias, value.shape).reshape(-1)
    return Affine((c * h * w,), tuple(terms), bias)


def scale_flat(value: Affine, s: np.ndarray) -> Affine:
    """Element-wise factors ``s`` on a flat value (per term: its rows of the map)."""
    terms = []
    for term in value.terms:
        part = s[term.offset : term.offset + term.length]
        m = term.map
        if m is None:
            new: ConvMap | MatrixMap = MatrixMap(np.diag(part))
        elif isinstance(m, MatrixMap):
            new = MatrixMap(m.weight * part[:, None])
        else:
            per_channel = part.reshape(m.out_shape[0], -1)
            if not np.all(per_channel == per_channel[:, :1]):
                raise NotOneSynapse("scales the positions of a flattened map differently")
            new = m.replace(weight=m.weight * per_channel[:, 0].reshape(-1, 1, 1, 1))
        terms.append(Term(term.source, new, term.offset))
    return Affine(value.shape, tuple(terms), value.bias)


def _depthwise(kernel: np.ndarray, shape: Shape, **geometry: tuple[int, int]) -> ConvMap:
    """A per-channel correlation (one kernel per channel, ``kernel`` (C, kh, kw)) on a (C, H, W) value."""
    c = shape[0]
    return ConvMap(kernel.reshape(c, 1, *kernel.shape[1:]), (shape[0], shape[1], shape[2]), groups=c,
                   **geometry)  # fmt: skip


# -- biases ------------------------------------------------------------------------------------------------
def _own_bias(node: Node, out_shape: Shape) -> np.ndarray | None:
    if isinstance(node, ann.Conv) and node.bias is not None:
        return np.asarray(node.bias, np.float64).reshape(-1, *(1,) * (len(out_shape) - 1))
    if isinstance(node, ann.Dense) and node.bias is not None:
        return np.asarray(node.bias, np.float64)
    if isinstance(node, tensor.Bias):
        return np.asarray(node.bias, np.float64)
    return None


def node_bias(node: Node, inputs: Sequence[Affine], in_shapes: Sequence[Shape], out_shape: Shape) -> np.ndarray | None:
    """The node evaluated on its inputs' biases (zero where they have none): the bias of its value."""
    if all(v.bias is None for v in inputs):
        return compact_bias(_own_bias(node, out_shape), out_shape)
    names = [f"in{i}" for i in range(len(inputs))]
    nodes: dict[str, Node] = {n: Input(shape=s) for n, s in zip(names, in_shapes, strict=True)}
    graph = Graph({**nodes, "node": node, "out": Output()}, [*((n, "node") for n in names), ("node", "out")])
    feeds = {
        n: np.broadcast_to(0.0 if v.bias is None else v.bias, s)[None]
        for n, v, s in zip(names, inputs, in_shapes, strict=True)
    }
    return compact_bias(evaluate(graph, feeds).outputs["out"][0], out_shape)


def _gather_bias(base: Affine, base_shape: Shape, index: np.ndarray) -> np.ndarray | None:
    if base.bias is None:
        return None
    return np.broadcast_to(base.bias, base_shape).reshape(-1)[index]


# -- rules by kind -----------------------------------------------------------------------------------------
def _affine_input(value: Value, shape: Shape) -> Affine:
    if isinstance(value, Routed):
        raise NotOneSynapse(
            f"reads a reshaped/transposed value {shape} that is neither a channel permutation of a (C, H, W) map "
            "nor a flat vector; Loihi synapses read (C, H, W) maps and flat vectors"
        )
    return lift(value)


def _three_d(shape: Shape, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise NotOneSynapse(f"{what} a {shape} value; Loihi's lowering takes (C, H, W) maps here")
    return shape[0], shape[1], shape[2]


def _conv(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    assert isinstance(node, ann.Conv)
    shape = _three_d(in_shapes[0], "convolves")
    x = _affine_input(inputs[0], shape)
    op = ConvMap(np.asarray(node.weight, np.float64), shape, tuple(node.stride), tuple(node.padding),
                 tuple(node.dilation), node.groups)  # fmt: skip
    return apply_conv(x, op, node_bias(node, [x], in_shapes, out_shape))


def _pool(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    shape = _three_d(in_shapes[0], "pools")
    x = _affine_input(inputs[0], shape)
    if isinstance(node, spatial.Pool):
        op = _generic_pool(node, shape)
    else:
        pool: ann.SumPool = node  # type: ignore[assignment]
        factor = 1.0 / math.prod(pool.kernel_size) if isinstance(node, ann.AvgPool) else 1.0
        kernel = np.full((shape[0], *pool.kernel_size), factor)
        op = _depthwise(kernel, shape, stride=tuple(pool.stride), padding=tuple(pool.padding))  # type: ignore[arg-type]
    if op.out_shape != out_shape:  # ceil mode with a last window sticking out of the padded input
        raise NotOneSynapse(
            f"pools to {out_shape} with partial windows (ceil mode); Loihi's synapses take full "
            f"windows ({op.out_shape})"
        )
    return apply_conv(x, op, node_bias(node, [x], in_shapes, out_shape))


def _generic_pool(node: spatial.Pool, shape: Shape) -> ConvMap:
    n = len(node.kernel_size)
    pads = tuple(node.pads)
    if node.mode != "avg":
        raise NotOneSynapse(f"is a {node.mode} pool, not linear")
    if n != 2 or pads[:n] != pads[n:]:
        raise NotOneSynapse(f"averages with asymmetric pads {pads}; Loihi's synapses pad symmetrically")
    if node.count_include_pad == 0 and any(pads):
        raise NotOneSynapse("averages over padded windows without counting the padding (a divisor per window)")
    padding = (pads[0], pads[1])
    kernel = np.full((shape[0], *node.kernel_size), 1.0 / math.prod(node.kernel_size))
    return _depthwise(kernel, shape, stride=tuple(node.stride), padding=padding,  # type: ignore[arg-type]
                      dilation=tuple(node.dilation))  # type: ignore[arg-type]  # fmt: skip


def _scale(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    assert isinstance(node, ann.Scale)
    shape = in_shapes[0]
    x = _affine_input(inputs[0], shape)
    bias = node_bias(node, [x], in_shapes, out_shape)
    s = np.broadcast_to(np.asarray(node.scale, np.float64), shape)
    if len(shape) == 1:
        return Affine(shape, scale_flat(x, s).terms, bias)
    c = _three_d(shape, "scales")[0]
    per_channel = s.reshape(c, -1)
    if not np.all(per_channel == per_channel[:, :1]):
        raise NotOneSynapse("scales the positions of a map differently; a Loihi synapse has one kernel per channel")
    return apply_conv(x, _depthwise(per_channel[:, :1].reshape(c, 1, 1), shape), bias)


def _bias(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    x = _affine_input(inputs[0], in_shapes[0])
    return Affine(out_shape, x.terms, node_bias(node, [x], in_shapes, out_shape))


def _add(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    values = [_affine_input(v, s) for v, s in zip(inputs, in_shapes, strict=True)]
    terms = tuple(t for v in values for t in v.terms)
    return Affine(out_shape, terms, node_bias(node, values, in_shapes, out_shape))


def _concat(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    assert isinstance(node, ann.Concat)
    if node.axis % len(out_shape) != 0:
        raise NotOneSynapse(f"concatenates on axis {node.axis}; Loihi's lowering joins channels (axis 0) only")
    values = [_affine_input(v, s) for v, s in zip(inputs, in_shapes, strict=True)]
    terms, offset = [], 0
    for v, s in zip(values, in_shapes, strict=True):
        terms += [Term(t.source, t.map, t.offset + offset) for t in v.terms]
        offset += s[0]
    return Affine(out_shape, tuple(terms), node_bias(node, values, in_shapes, out_shape))


def _dense(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    assert isinstance(node, ann.Dense)
    if len(in_shapes[0]) != 1:
        raise NotOneSynapse(f"reads a {in_shapes[0]} value; a Loihi Dense reads a flat vector (Flatten first)")
    x = _affine_input(inputs[0], in_shapes[0])
    return apply_dense(x, np.asarray(node.weight, np.float64), node_bias(node, [x], in_shapes, out_shape))


def _reduce(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    assert isinstance(node, tensor.Reduce)
    shape = in_shapes[0]
    axes = sorted(a % len(shape) for a in node.axes)
    if node.op not in ("sum", "mean") or len(shape) != 3 or not set(axes) <= {1, 2}:
        raise NotOneSynapse(f"reduces ({node.op}) axes {node.axes} of a {shape} value; Loihi's lowering takes sums "
                            "and means over the spatial axes of a (C, H, W) map")  # fmt: skip
    x = _affine_input(inputs[0], shape)
    kernel = (shape[1] if 1 in axes else 1, shape[2] if 2 in axes else 1)
    factor = 1.0 / math.prod(kernel) if node.op == "mean" else 1.0
    op = _depthwise(np.full((shape[0], *kernel), factor), shape, stride=kernel)
    kept = op.out_shape
    bias = None if x.bias is None else node_bias(node, [x], in_shapes, out_shape)
    pooled = apply_conv(x, op, None if bias is None else np.broadcast_to(bias, out_shape).reshape(kept))
    if kept == out_shape:
        return pooled
    return _reroute(pooled, kept, np.arange(math.prod(kept)).reshape(out_shape))


def _route(node: Node, inputs: Sequence[Value], in_shapes: Sequence[Shape], out_shape: Shape) -> Value:
    """Reshape, Transpose, Flatten, Slice: follow the elements (``Routed``) until the shape is usable."""
    value, shape = inputs[0], in_shapes[0]
    if isinstance(value, Routed):
        base, base_shape, index = value.base, value.base_shape, value.index
    else:
        base, base_shape, index = value, shape, np.arange(math.prod(shape)).reshape(shape)
    if isinstance(node, ann.Transpose):
        index = index.transpose(node.perm)
    elif isinstance(node, tensor.Slice):
        picks = node.ranges(shape)
        index = index[tuple(np.asarray(picks[a]) if a in picks else slice(None) for a in range(len(shape)))]
        index = index.reshape(out_shape)
    else:
        index = index.reshape(out_shape)
    return _reroute(base, base_shape, index)


def _reroute(base: Signal | Affine, base_shape: Shape, index: np.ndarray) -> Value:
    """``base`` read through ``index`` as an Affine when that is a synapse (module docstring), else Routed."""
    shape = index.shape
    n = math.prod(base_shape)
    if np.array_equal(index.ravel(), np.arange(n)):
        if shape == base_shape:
            return base
        if len(shape) == 1 and len(base_shape) == 3:
            return flatten(lift(base))
    if len(base_shape) == 3 and len(shape) in (1, 3):
        c, h, w = base_shape
        maps = index.reshape(-1, h, w) if index.size % (h * w) == 0 else None
        if maps is not None:
            channels = maps[:, 0, 0] // (h * w)
            if np.array_equal(maps, channels[:, None, None] * h * w + np.arange(h * w).reshape(h, w)):
                select = np.zeros((channels.size, c, 1, 1))
                select[np.arange(channels.size), channels, 0, 0] = 1.0
                x = lift(base)
                bias = _gather_bias(x, base_shape, maps)
                picked = apply_conv(x, ConvMap(select, (c, h, w)), compact_bias(bias, maps.shape))
                return picked if len(shape) == 3 else flatten(picked)
    if len(base_shape) == 3 and len(shape) == 1:  # any order of a map's entries (a patch grid read as tokens)
        return _gather_map(lift(base), base_shape, index.reshape(-1))
    if len(base_shape) == 1 and len(shape) == 1:
        x = lift(base)
        select = np.zeros((shape[0], n))
        select[np.arange(shape[0]), index] = 1.0
        return apply_dense(x, select, compact_bias(_gather_bias(x, base_shape, index), shape))
    return Routed(base, base_shape, index)


def _gather_map(x: Affine, base_shape: Shape, index: np.ndarray) -> Affine:
    """``x`` (a (C, H, W) value) flattened and read in the order ``index``: a 0/1 matrix per term."""
    _, h, w = base_shape
    terms = []
    for term in x.terms:
        m = term.map if term.map is not None else identity(term.source.shape)
        assert isinstance(m, ConvMap) and not m.flat
        start = term.offset * h * w
        rows = np.nonzero((index >= start) & (index < start + m.out_size))[0]
        select = np.zeros((index.size, m.out_size))
        select[rows, index[rows] - start] = 1.0
        matrix = select if term.map is None else select @ as_matrix(m)
        terms.append(Term(term.source, MatrixMap(matrix)))
    return Affine((index.size,), tuple(terms), compact_bias(_gather_bias(x, base_shape, index), (index.size,)))


LINEAR: dict[type[Node], Rule] = {
    ann.Conv: _conv,
    ann.Dense: _dense,
    ann.SumPool: _pool,
    ann.AvgPool: _pool,
    spatial.Pool: _pool,
    ann.Scale: _scale,
    tensor.Bias: _bias,
    ann.Add: _add,
    ann.Identity: _add,
    ann.Concat: _concat,
    ann.Flatten: _route,
    ann.Reshape: _route,
    ann.Transpose: _route,
    tensor.Slice: _route,
    tensor.Reduce: _reduce,
}
"""Linear float kind -> its value from its inputs' values (module docstring)."""
