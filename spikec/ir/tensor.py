"""General tensor kinds: what the ONNX front end needs beyond the layer kinds of ``ann``.

Elementwise maps, products of two activations, normalisations, reductions and indexing. All
shapes are per sample, as everywhere in SIR: an ``axis`` never names the batch axis, and
broadcasting between operands follows numpy's rule on the per-sample shapes (right-aligned).
Conversion to spiking kinds handles only some of these; the rest stay ANN-only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.ann import Elementwise
from spikec.ir.node import Array, Inputs, Node, Shape, broadcast_problem
from spikec.ir.traits import Additive, NonEvent, Product, Routing, ScalePassesThrough, Synaptic


def broadcast_shapes(shapes: Sequence[Shape]) -> Shape:
    """numpy broadcasting of per-sample shapes; ``ShapeError`` when they do not broadcast."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ShapeError(f"input shapes {[tuple(s) for s in shapes]} do not broadcast") from None


def normalize_axis(axis: int, rank: int) -> int:
    """``axis`` in ``[-rank, rank)`` as a non-negative axis; ``ShapeError`` otherwise."""
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for a {rank}-axis input")
    return axis + rank if axis < 0 else axis


def _one(inputs: Sequence[Shape]) -> Shape:
    (shape,) = inputs
    return tuple(shape)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Constant(Node):
    """A source of a fixed value: :math:`y = v` (the same for every sample and step).

    It takes no edges and is not fed from outside (``graph_input`` stays False). At run time its
    value has the batch axis in front, broadcast (not copied) to the batch. ``value`` may hold
    ``±inf`` (attention masks), never NaN.
    """

    kind = "Constant"
    traits = frozenset({Routing()})
    inputs = Inputs.NONE
    value: Array

    def problems(self) -> Iterator[str]:
        if self.value.dtype.kind == "f" and np.any(np.isnan(self.value)):
            yield "field 'value' holds NaN; fix the source model (spikec rejects NaN constants)"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return tuple(self.value.shape)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Bias(Elementwise):
    r""":math:`y = x + b` with ``bias`` broadcast to the input (which keeps its shape)."""

    kind = "Bias"
    traits = frozenset({Routing(rescales=True)})
    broadcast_field = "bias"
    bias: Array


# Elementwise maps of one input. ``alpha``/``beta`` are the parameters named in the equation.
UNARY_OPS: dict[str, str] = {
    "abs": "|x|",
    "neg": "-x",
    "exp": "e^x",
    "log": "ln x",
    "sqrt": "√x",
    "reciprocal": "1/x",
    "tanh": "tanh x",
    "sigmoid": "1/(1 + e^-x)",
    "erf": "erf x",
    "sin": "sin x",
    "cos": "cos x",
    "floor": "⌊x⌋",
    "ceil": "⌈x⌉",
    "round": "x rounded half to even",
    "sign": "sign x",
    "softplus": "ln(1 + e^x)",
    "softsign": "x/(1 + |x|)",
    "leaky_relu": "x if x ≥ 0 else alpha·x",
    "elu": "x if x > 0 else alpha·(e^x − 1)",
    "selu": "beta·x if x > 0 else beta·alpha·(e^x − 1)",
    "celu": "max(0, x) + min(0, alpha·(e^(x/alpha) − 1))",
    "thresholded_relu": "x if x > alpha else 0",
    "hard_sigmoid": "max(0, min(1, alpha·x + beta))",
    "hard_swish": "x·max(0, min(1, x/6 + 1/2))",
    "swish": "x·sigmoid(alpha·x)",
    "mish": "x·tanh(softplus(x))",
    "pow": "x^alpha",
    "isnan": "1 if x is NaN else 0",
    "isinf": "1 if |x| = ∞ else 0",
    "not": "1 − x (x ∈ {0, 1}: logical not)",
    "nonzero": "1 if x ≠ 0 else 0 (a cast to bool)",
    "trunc": "sign(x)·⌊|x|⌋ (a cast to an integer type)",
}


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Unary(Node):
    """An elementwise map ``y = f(x)`` chosen by ``op`` (see ``UNARY_OPS`` for the equations)."""

    kind = "Unary"
    traits = frozenset({NonEvent(), Additive(when=lambda n: n.op in ("neg", "isnan", "isinf"))})
    op: str
    alpha: float = 0.0
    beta: float = 0.0

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.op not in UNARY_OPS:
            yield f"op {self.op!r} is not one of {sorted(UNARY_OPS)}"
        if not (math.isfinite(self.alpha) and math.isfinite(self.beta)):
            yield "alpha and beta must be finite"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)


BINARY_OPS: dict[str, str] = {
    "add": "a + b",
    "sub": "a − b",
    "mul": "a · b",
    "div": "a / b",
    "pow": "a ^ b",
    "max": "max(a, b)",
    "min": "min(a, b)",
    "gt": "[a > b]",
    "ge": "[a ≥ b]",
    "lt": "[a < b]",
    "le": "[a ≤ b]",
    "eq": "[a = b]",
}


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Binary(Node):
    """``y = a ∘ b`` for the two incoming edges in order (``a`` first), with numpy broadcasting.

    ``op`` is one of ``BINARY_OPS``; comparisons give 1.0 or 0.0.
    """

    kind = "Binary"
    traits = frozenset(
        {
            Synaptic(),
            Additive(when=lambda n: n.op in ("add", "sub")),
            Product(constant_slots=lambda n: {"mul": (0, 1), "div": (1,)}.get(n.op, ())),
        }
    )
    inputs = Inputs.ORDERED
    op: str

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.op not in BINARY_OPS:
            yield f"op {self.op!r} is not one of {sorted(BINARY_OPS)}"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs) != 2:
            raise ShapeError(f"takes exactly 2 inputs (a, b), got {len(inputs)}")
        return broadcast_shapes(inputs)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Where(Node):
    """``y = a if c ≠ 0 else b`` for the three incoming edges ``(c, a, b)`` in order, broadcast."""

    kind = "Where"
    traits = frozenset({Routing()})
    inputs = Inputs.ORDERED

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs) != 3:
            raise ShapeError(f"takes exactly 3 inputs (condition, a, b), got {len(inputs)}")
        return broadcast_shapes(inputs)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class MatMul(Node):
    r"""Product of two activations ``y = a @ b`` (edges in order), with ``numpy.matmul`` semantics
    on the per-sample shapes: 1-D operands are promoted and the promoted axis removed, leading
    axes broadcast. A product with a constant matrix on the right is a ``Dense`` instead.
    """

    kind = "MatMul"
    traits = frozenset({Synaptic(), Product(constant_slots=lambda n: (0, 1))})
    inputs = Inputs.ORDERED

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs) != 2:
            raise ShapeError(f"takes exactly 2 inputs (a, b), got {len(inputs)}")
        a, b = (tuple(s) for s in inputs)
        if not a or not b:
            raise ShapeError(f"operands must have at least one axis, got {a} and {b}")
        a2 = (1, *a) if len(a) == 1 else a
        b2 = (*b, 1) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise ShapeError(f"cannot multiply {a} by {b}: inner sizes {a2[-1]} and {b2[-2]} differ")
        lead = broadcast_shapes([a2[:-2], b2[:-2]])
        out = (*lead, a2[-2], b2[-1])
        if len(a) == 1:
            out = (*out[:-2], out[-1])
        if len(b) == 1:
            out = out[:-1]
        return out


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Softmax(Node):
    r""":math:`y_i = e^{x_i - m} / \sum_j e^{x_j - m}` along ``axis``, ``m = \max_j x_j``.

    A slice whose entries are all ``-inf`` (fully masked attention) gives zeros, not NaN.
    """

    kind = "Softmax"
    traits = frozenset({NonEvent()})
    axis: int = -1

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        normalize_axis(self.axis, len(shape))
        return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LogSoftmax(Node):
    r""":math:`y_i = x_i - m - \log \sum_j e^{x_j - m}` along ``axis``, ``m = \max_j x_j`` (log of ``Softmax``)."""

    kind = "LogSoftmax"
    traits = frozenset({NonEvent()})
    axis: int = -1

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        normalize_axis(self.axis, len(shape))
        return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LayerNorm(Node):
    r"""Normalise over the axes ``axis..last`` (all of them together):

    .. math:: y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot w + b

    with :math:`\mu`, :math:`\sigma^2` the mean and (biased) variance over those axes; ``weight``
    and ``bias`` (optional) broadcast to the normalised axes.
    """

    kind = "LayerNorm"
    traits = frozenset({NonEvent()})
    axis: int = -1
    weight: Array | None = None
    bias: Array | None = None
    eps: float = 1e-5

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if not (math.isfinite(self.eps) and self.eps >= 0):
            yield f"eps={self.eps} must be finite and >= 0"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        axis = normalize_axis(self.axis, len(shape))
        for field in ("weight", "bias"):
            problem = broadcast_problem(self, field, shape[axis:])
            if problem:
                raise ShapeError(problem.replace("input shape", "normalised shape"))
        return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class GELU(Node):
    r"""``approximate="none"``: :math:`y = \tfrac{x}{2}(1 + \mathrm{erf}(x/\sqrt2))`;
    ``"tanh"``: :math:`y = \tfrac{x}{2}(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715 x^3)))`.
    """

    kind = "GELU"
    traits = frozenset({NonEvent()})
    approximate: str = "none"

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.approximate not in ("none", "tanh"):
            yield f"approximate={self.approximate!r} must be 'none' or 'tanh'"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)


REDUCE_OPS = ("sum", "mean", "max", "min", "prod")


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Reduce(Node):
    """Reduce over ``axes`` with ``op`` (sum, mean, max, min, prod); ``keepdims=1`` keeps them as size 1."""

    kind = "Reduce"
    traits = frozenset({Synaptic(), Additive(when=lambda n: n.op in ("sum", "mean"))})
    op: str
    axes: tuple[int, ...]
    keepdims: int = 1

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.op not in REDUCE_OPS:
            yield f"op {self.op!r} is not one of {list(REDUCE_OPS)}"
        if not self.axes:
            yield "axes must name at least one axis"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        axes = {normalize_axis(a, len(shape)) for a in self.axes}
        if len(axes) != len(self.axes):
            raise ShapeError(f"axes {self.axes} name an axis twice")
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in axes)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Gather(Node):
    """Pick entries along ``axis`` by constant ``indices`` (``numpy.take``): the axis is replaced
    by the indices' shape, ``y[..., j, ...] = x[..., indices[j], ...]``. Indices are in range, >= 0.
    """

    kind = "Gather"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})
    indices: Array
    axis: int = 0

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.indices.dtype.kind not in "iu":
            yield f"indices must be integers, got dtype {self.indices.dtype}"
        elif self.indices.size and self.indices.min() < 0:
            yield "indices must be >= 0"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        axis = normalize_axis(self.axis, len(shape))
        if self.indices.size and self.indices.max() >= shape[axis]:
            raise ShapeError(f"index {int(self.indices.max())} is out of range for axis {axis} of size {shape[axis]}")
        return (*shape[:axis], *self.indices.shape, *shape[axis + 1 :])


def slice_range(size: int, start: int, end: int, step: int) -> range:
    """The indices ONNX ``Slice`` picks on an axis of ``size``: negative start/end count from the
    end, then start/end are clamped to ``[0, size]`` (``[0, size-1]`` and ``[-1, size-1]`` when
    ``step < 0``)."""
    if step == 0:
        raise ShapeError("slice step must not be 0")
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
    else:
        start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
    return range(start, end, step)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Slice(Node):
    """Strided slices on some axes, as ONNX ``Slice`` (see ``slice_range``): on ``axes[i]`` keep
    ``starts[i], starts[i] + steps[i], …`` up to (excluding) ``ends[i]``; steps may be negative."""

    kind = "Slice"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})
    axes: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps == ():
            object.__setattr__(self, "steps", (1,) * len(self.axes))

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        n = len(self.axes)
        if not (len(self.starts) == len(self.ends) == len(self.steps) == n):
            yield f"axes, starts, ends and steps need one entry each ({n} axes)"
        if 0 in self.steps:
            yield "steps must not be 0"

    def ranges(self, shape: Shape) -> dict[int, range]:
        """Per (non-negative) axis, the indices kept."""
        out: dict[int, range] = {}
        for a, s, e, st in zip(self.axes, self.starts, self.ends, self.steps, strict=True):
            axis = normalize_axis(a, len(shape))
            if axis in out:
                raise ShapeError(f"axis {a} is sliced twice")
            out[axis] = slice_range(shape[axis], s, e, st)
        return out

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        ranges = self.ranges(shape)
        return tuple(len(ranges[i]) if i in ranges else d for i, d in enumerate(shape))
