"""Elementwise ONNX ops and reductions: arithmetic, activations (PRelu too), comparisons, Clip, Where, Reduce*.

An op with a constant operand lowers to ``Scale``/``Bias`` where that is exact (the constant keeps
the activation's shape); two activations of one shape added are an ``Add``; everything else is a
``Binary``/``Unary`` node, with constants as ``Constant`` sources.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.frontends.onnx.layout import Layout
from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.registry import Act, Const, OnnxNode, Outputs, Value, handler
from spikec.ir import GELU, Add, Bias, Binary, Clip, Reduce, ReLU, Scale, Unary, Where
from spikec.ir.tensor import broadcast_shapes


def need_const(n: OnnxNode, i: int, what: str, ctx: Lowering) -> np.ndarray:
    """Input ``i`` as a constant array; fails when it is computed at run time."""
    v = n.input(i)
    if not isinstance(v, Const):
        raise ctx.fail(f"{what} (input {i}) must be a constant (an initializer), but it is computed at run time")
    return ctx.static(v, what)


def need_act(n: OnnxNode, i: int, ctx: Lowering) -> Act:
    v = n.input(i)
    if v is None:
        raise ctx.fail(f"input {i} is missing")
    return ctx.act(v)


def operands(ctx: Lowering, values: Sequence[Value]) -> list[Act]:
    """Values combined elementwise (numpy broadcasting of their ONNX shapes), as activations with their
    batch axes aligned; constants become ``Constant`` nodes holding one sample's broadcast operand."""
    acts = ctx.aligned([v for v in values if isinstance(v, Act)])
    if not acts:
        raise ctx.fail("every operand is a constant")
    ref = max(acts, key=lambda a: (a.layout is not None, ctx.rank(a)))
    pending = iter(acts)
    return [next(pending) if isinstance(v, Act) else ctx.act(v, like=ref) for v in values]


def binary(ctx: Lowering, op: str, a: Value, b: Value) -> Act:
    """``a ∘ b`` (ONNX broadcasting); at least one operand is an activation."""
    if isinstance(a, Act) and isinstance(b, Act):
        left, other = operands(ctx, [a, b])
        if op == "add" and left.shape == other.shape and left.layout == other.layout:
            return ctx.add(Add(), [left, other])
        return ctx.add(Binary(op=op), [left, other])
    x, c, right = (a, b, True) if isinstance(a, Act) else (b, a, False)
    assert isinstance(x, Act) and isinstance(c, Const)
    if op in ("add", "sub", "mul", "div"):
        value = np.asarray(ctx.per_sample(c, x), dtype=np.float64)
        try:
            fits = broadcast_shapes([value.shape, x.shape]) == x.shape
        except Exception:
            fits = False
        if fits and np.all(np.isfinite(value)):
            if op == "add":
                return ctx.add(Bias(bias=value), [x])
            if op == "sub":
                return (
                    ctx.add(Bias(bias=-value), [x])
                    if right
                    else ctx.chain(x, Scale(scale=np.asarray(-1.0)), Bias(bias=value))
                )
            if op == "mul":
                return ctx.add(Scale(scale=value), [x])
            if op == "div" and right and np.all(value != 0) and np.all(np.isfinite(1.0 / value)):
                return ctx.add(Scale(scale=1.0 / value), [x])  # x·(1/c): within one rounding of x/c
    return ctx.add(Binary(op=op), operands(ctx, [x, c] if right else [c, x]))


# -- binary and variadic ---------------------------------------------------------------------------
BINARY_OPS = {
    "Add": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "Pow": "pow",
    "Greater": "gt",
    "GreaterOrEqual": "ge",
    "Less": "lt",
    "LessOrEqual": "le",
    "Equal": "eq",
}


@handler(*BINARY_OPS)
def _binary(n: OnnxNode, ctx: Lowering) -> Outputs:
    a, b = n.input(0), n.input(1)
    assert a is not None and b is not None
    return [binary(ctx, BINARY_OPS[n.op], a, b)]


VARIADIC_OPS = {"Sum": "add", "Max": "max", "Min": "min", "Mean": "add"}


@handler(*VARIADIC_OPS)
def _variadic(n: OnnxNode, ctx: Lowering) -> Outputs:
    values = [v for v in n.ins if v is not None]
    acts = [v for v in values if isinstance(v, Act)]
    op = VARIADIC_OPS[n.op]
    if op == "add" and len(acts) == len(values) and len({(a.shape, a.layout) for a in acts}) == 1:
        y: Value = acts[0] if len(acts) == 1 else ctx.add(Add(), acts)  # one node sums all edges
    else:
        y = values[0]
        for v in values[1:]:
            y = binary(ctx, op, y, v)
    if n.op == "Mean" and len(values) > 1:
        y = ctx.add(Scale(scale=np.asarray(1.0 / len(values))), [ctx.act(y)])
    return [y]


# -- unary ------------------------------------------------------------------------------------------
@handler("Relu")
def _relu(n: OnnxNode, ctx: Lowering) -> Outputs:
    return [ctx.add(ReLU(), [need_act(n, 0, ctx)])]


# ONNX op -> (Unary op, attribute and default for alpha, for beta)
UNARY_OPS: dict[str, tuple[str, tuple[str, float] | None, tuple[str, float] | None]] = {
    "Sigmoid": ("sigmoid", None, None),
    "Tanh": ("tanh", None, None),
    "Exp": ("exp", None, None),
    "Log": ("log", None, None),
    "Sqrt": ("sqrt", None, None),
    "Abs": ("abs", None, None),
    "Neg": ("neg", None, None),
    "Erf": ("erf", None, None),
    "Reciprocal": ("reciprocal", None, None),
    "Floor": ("floor", None, None),
    "Ceil": ("ceil", None, None),
    "Round": ("round", None, None),
    "Sign": ("sign", None, None),
    "Sin": ("sin", None, None),
    "Cos": ("cos", None, None),
    "Softplus": ("softplus", None, None),
    "Softsign": ("softsign", None, None),
    "HardSwish": ("hard_swish", None, None),
    "Mish": ("mish", None, None),
    "LeakyRelu": ("leaky_relu", ("alpha", 0.01), None),
    "Elu": ("elu", ("alpha", 1.0), None),
    "Selu": ("selu", ("alpha", 1.67326319217681884765625), ("gamma", 1.05070102214813232421875)),
    "Celu": ("celu", ("alpha", 1.0), None),
    "ThresholdedRelu": ("thresholded_relu", ("alpha", 1.0), None),
    "HardSigmoid": ("hard_sigmoid", ("alpha", 0.2), ("beta", 0.5)),
    "Swish": ("swish", ("alpha", 1.0), None),
    "IsNaN": ("isnan", None, None),
    "Not": ("not", None, None),
}


@handler(*UNARY_OPS)
def _unary(n: OnnxNode, ctx: Lowering) -> Outputs:
    op, alpha, beta = UNARY_OPS[n.op]
    a = 0.0 if alpha is None else float(n.attr(*alpha))  # (attribute name, default)
    b = 0.0 if beta is None else float(n.attr(*beta))
    return [ctx.add(Unary(op=op, alpha=a, beta=b), [need_act(n, 0, ctx)])]


@handler("IsInf")
def _is_inf(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    if not (n.attr("detect_negative", 1) and n.attr("detect_positive", 1)):
        raise ctx.fail("IsInf detecting one sign only is not supported (detect_negative=detect_positive=1 is)")
    return [ctx.add(Unary(op="isinf"), [x])]


@handler("PRelu")
def _prelu(n: OnnxNode, ctx: Lowering) -> Outputs:
    """``y = x`` where ``x > 0``, ``slope ⊙ x`` elsewhere, with a constant ``slope`` broadcast to ``x``:
    one slope is ``Unary(leaky_relu)``; per-channel slopes are ``ReLU(x) + Scale(slope)(Clip(x, max=0))``
    (exact: one of the two terms is zero)."""
    x = need_act(n, 0, ctx)
    slope = np.asarray(ctx.per_sample(Const(need_const(n, 1, "slope", ctx)), x, "slope"), np.float64)
    if slope.size == 0 or not np.all(np.isfinite(slope)):
        raise ctx.fail(f"slope of shape {slope.shape} must be non-empty and finite")
    if np.all(slope == slope.reshape(-1)[0]):
        return [ctx.add(Unary(op="leaky_relu", alpha=float(slope.reshape(-1)[0])), [x])]
    try:
        fits = broadcast_shapes([slope.shape, x.shape]) == x.shape
    except ShapeError:
        fits = False
    if not fits:
        raise ctx.fail(f"slope of shape {slope.shape} does not broadcast to the input {ctx.full_shape(x)}")
    negative = ctx.chain(x, Clip(max=0.0), Scale(scale=slope))
    return [ctx.add(Add(), [ctx.add(ReLU(), [x]), negative])]


@handler("Gelu")
def _gelu(n: OnnxNode, ctx: Lowering) -> Outputs:
    return [ctx.add(GELU(approximate=n.attr("approximate", "none")), [need_act(n, 0, ctx)])]


@handler("Clip")
def _clip(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    if ctx.opset < 11:
        lo: Value | None = Const(np.asarray(n.attr("min", -math.inf)))
        hi: Value | None = Const(np.asarray(n.attr("max", math.inf)))
    else:
        lo, hi = n.input(1), n.input(2)
    if not isinstance(lo, Act) and not isinstance(hi, Act):
        low = -math.inf if lo is None else float(ctx.static(lo, "min"))
        high = math.inf if hi is None else float(ctx.static(hi, "max"))
        low = min(low, high)  # ONNX: min > max gives max everywhere
        return [ctx.add(Clip(min=low, max=high), [x])]
    y: Act = x
    if lo is not None:
        y = binary(ctx, "max", y, lo)
    if hi is not None:
        y = binary(ctx, "min", y, hi)
    return [y]


@handler("Where")
def _where(n: OnnxNode, ctx: Lowering) -> Outputs:
    values = [v for v in n.ins if v is not None]
    if len(values) != 3:
        raise ctx.fail("needs three inputs (condition, x, y)")
    return [ctx.add(Where(), operands(ctx, values))]


# -- reductions -------------------------------------------------------------------------------------
REDUCE_OPS = {
    "ReduceMean": "mean",
    "ReduceSum": "sum",
    "ReduceMax": "max",
    "ReduceMin": "min",
    "ReduceProd": "prod",
    "ReduceSumSquare": "sum",
    "ReduceL1": "sum",
    "ReduceL2": "sum",
}
AXES_AS_INPUT = {"ReduceSum": 13}  # opset from which axes is an input (18 for the others)


def reduce_axes(n: OnnxNode, ctx: Lowering, x: Act) -> tuple[int, ...] | None:
    """Per-sample axes of a Reduce* node; None for a no-op (empty axes, noop_with_empty_axes=1)."""
    if ctx.opset >= AXES_AS_INPUT.get(n.op, 18):
        axes = None if n.input(1) is None else [int(a) for a in need_const(n, 1, "axes", ctx).reshape(-1)]
    else:
        axes = n.attr("axes")
    if not axes:
        if n.attr("noop_with_empty_axes", 0):
            return None
        axes = list(range(ctx.rank(x)))
    return tuple(sorted({ctx.axis(x, int(a)) for a in axes}))


def without_axes(x: Act, axes: Sequence[int]) -> Layout | None:
    """``x``'s layout once the per-sample ``axes`` (none of them the batch's) are removed."""
    if x.layout is None:
        return None
    return x.layout.shifted(-sum(1 for a in axes if a < x.layout.pos))


@handler(*REDUCE_OPS)
def _reduce(n: OnnxNode, ctx: Lowering) -> Outputs:
    x = need_act(n, 0, ctx)
    axes = reduce_axes(n, ctx, x)
    if n.op == "ReduceSumSquare":
        x = ctx.add(Binary(op="mul"), [x, x])
    elif n.op == "ReduceL1":
        x = ctx.add(Unary(op="abs"), [x])
    elif n.op == "ReduceL2":
        x = ctx.add(Binary(op="mul"), [x, x])
    if axes is None:
        return [ctx.add(Unary(op="sqrt"), [x]) if n.op == "ReduceL2" else x]
    keep = int(n.attr("keepdims", 1))
    layout = x.layout if keep else without_axes(x, axes)
    y = ctx.add(Reduce(op=REDUCE_OPS[n.op], axes=axes, keepdims=keep), [x], layout=layout)
    return [ctx.add(Unary(op="sqrt"), [y]) if n.op == "ReduceL2" else y]
