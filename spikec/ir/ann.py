"""ANN-level node kinds: what the front ends produce and conversion lowers to spiking kinds.

All shapes are per sample: the interpreter adds the time and batch axes in front.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.node import Array, Inputs, Node, Shape, broadcast_problem
from spikec.ir.traits import Additive, NonEvent, Routing, ScalePassesThrough, Synaptic


def _one(inputs: Sequence[Shape]) -> Shape:
    (shape,) = inputs
    return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Dense(Node):
    r"""Affine map over the last axis: :math:`y = W x + b`, ``W`` of shape (out, in).

    ``bias=None`` is NIR's ``Linear``; with a bias it is NIR's ``Affine``. Leading axes pass
    through, so a (tokens, in) input gives (tokens, out).
    """

    kind = "Dense"
    traits = frozenset({Synaptic(), Additive(when=lambda n: n.bias is None)})
    weight: Array
    bias: Array | None = None

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.weight.ndim != 2:
            yield f"weight must be 2-D (out, in), got shape {self.weight.shape}"
        elif self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            yield f"bias shape {self.bias.shape} does not match weight rows ({self.weight.shape[0]},)"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        n_out, n_in = self.weight.shape
        if not shape or shape[-1] != n_in:
            raise ShapeError(f"expects an input whose last axis is {n_in}, got shape {shape}")
        return (*shape[:-1], n_out)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Conv(Node):
    r"""Cross-correlation over 1 or 2 spatial axes (as ``torch.nn.functional.conv{1,2}d``).

    .. math:: y[o, p] = b[o] + \sum_{c, k} W[o, c, k]\, x[g(o) \cdot C_g + c,\ p s + k d - pad]

    ``weight`` is (out, in/groups, *kernel); input (in, *spatial); zero padding on both sides;
    output size per axis ``floor((n + 2 pad - d (k - 1) - 1) / s) + 1``.
    """

    kind = "Conv"
    traits = frozenset({Synaptic(), Additive(when=lambda n: n.bias is None)})
    weight: Array
    bias: Array | None = None
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        nd = max(self.weight.ndim - 2, 0)
        for name in ("stride", "dilation"):
            if getattr(self, name) == ():
                object.__setattr__(self, name, (1,) * nd)
        if self.padding == ():
            object.__setattr__(self, "padding", (0,) * nd)

    @property
    def spatial_dims(self) -> int:
        return self.weight.ndim - 2

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        nd = self.spatial_dims
        if nd not in (1, 2):
            yield f"weight must be (out, in/groups, k) or (out, in/groups, kh, kw), got {self.weight.shape}"
            return
        for name in ("stride", "padding", "dilation"):
            value = getattr(self, name)
            if len(value) != nd:
                yield f"{name} {value} must have one entry per spatial axis ({nd})"
        if any(s < 1 for s in self.stride) or any(d < 1 for d in self.dilation):
            yield "stride and dilation must be >= 1"
        if any(p < 0 for p in self.padding):
            yield "padding must be >= 0"
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            yield f"groups={self.groups} must divide the {self.weight.shape[0]} output channels"
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            yield f"bias shape {self.bias.shape} does not match {self.weight.shape[0]} output channels"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        nd = self.spatial_dims
        c_in = self.weight.shape[1] * self.groups
        if len(shape) != nd + 1 or shape[0] != c_in:
            raise ShapeError(f"expects (channels={c_in}, {nd} spatial axes), got shape {shape}")
        spatial = _window_out(shape[1:], self.weight.shape[2:], self.stride, self.padding, self.dilation)
        return (self.weight.shape[0], *spatial)


def _window_out(
    size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[int, ...]:
    out = []
    for n, k, s, p, d in zip(size, kernel, stride, padding, dilation, strict=True):
        m = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if m < 1:
            raise ShapeError(f"window {tuple(kernel)} does not fit the input's spatial size {tuple(size)}")
        out.append(m)
    return tuple(out)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class _Pool(Node):
    """Shared fields of the pooling kinds: windows over the spatial axes of (C, *spatial)."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        nd = len(self.kernel_size)
        if self.stride == ():
            object.__setattr__(self, "stride", tuple(self.kernel_size))
        if self.padding == ():
            object.__setattr__(self, "padding", (0,) * nd)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        nd = len(self.kernel_size)
        if nd not in (1, 2):
            yield f"kernel_size {self.kernel_size} must have 1 or 2 entries"
        if len(self.stride) != nd or len(self.padding) != nd:
            yield f"stride {self.stride} and padding {self.padding} need {nd} entries each"
        if any(k < 1 for k in self.kernel_size) or any(s < 1 for s in self.stride):
            yield "kernel_size and stride must be >= 1"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        nd = len(self.kernel_size)
        if len(shape) != nd + 1:
            raise ShapeError(f"expects (channels, {nd} spatial axes), got shape {shape}")
        ones = (1,) * nd
        return (shape[0], *_window_out(shape[1:], self.kernel_size, self.stride, self.padding, ones))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SumPool(_Pool):
    r""":math:`y[c, p] = \sum_{k} x[c, p s + k - pad]` (zero padding)."""

    kind = "SumPool"
    traits = frozenset({Synaptic(), Additive(), ScalePassesThrough()})


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AvgPool(_Pool):
    r""":math:`y[c, p] = \frac{1}{\prod k} \sum_{k} x[c, p s + k - pad]` (padding counts as zeros)."""

    kind = "AvgPool"
    traits = frozenset({Synaptic(), Additive(), ScalePassesThrough()})


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class MaxPool(_Pool):
    r""":math:`y[c, p] = \max_{k} x[c, p s + k - pad]` (padding never wins)."""

    kind = "MaxPool"
    traits = frozenset({Routing(), ScalePassesThrough()})


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Flatten(Node):
    """Merge axes ``start_dim..end_dim`` (inclusive, per-sample numbering, negatives from the end)."""

    kind = "Flatten"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})
    start_dim: int = 0
    end_dim: int = -1

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        n = len(shape)
        start = self.start_dim + n if self.start_dim < 0 else self.start_dim
        end = self.end_dim + n if self.end_dim < 0 else self.end_dim
        if n == 0:
            return (1,)
        if not (0 <= start <= end < n):
            raise ShapeError(f"start_dim={self.start_dim}, end_dim={self.end_dim} invalid for shape {shape}")
        return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Reshape(Node):
    """Reinterpret the per-sample shape in row-major order (sizes must multiply to the same)."""

    kind = "Reshape"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})
    shape: tuple[int, ...]

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        if math.prod(shape) != math.prod(self.shape):
            raise ShapeError(f"cannot reshape {shape} ({math.prod(shape)} values) to {self.shape}")
        return tuple(self.shape)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if any(d < 1 for d in self.shape):
            yield f"shape {self.shape} must hold positive sizes (no -1: spikec shapes are static)"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Transpose(Node):
    """Permute the per-sample axes: ``y.shape[i] = x.shape[perm[i]]``."""

    kind = "Transpose"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})
    perm: tuple[int, ...]

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if sorted(self.perm) != list(range(len(self.perm))):
            yield f"perm {self.perm} is not a permutation of 0..{len(self.perm) - 1}"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        if len(shape) != len(self.perm):
            raise ShapeError(f"perm {self.perm} needs a {len(self.perm)}-axis input, got {shape}")
        return tuple(shape[p] for p in self.perm)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Identity(Node):
    """:math:`y = x` (NIR ``Identity``; several incoming edges are summed, like every SUM node)."""

    kind = "Identity"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Add(Node):
    r""":math:`y = \sum_i x_i` over all incoming edges (which must share one shape)."""

    kind = "Add"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Concat(Node):
    """Join the incoming edges, in edge order, along per-sample ``axis``."""

    kind = "Concat"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})
    inputs = Inputs.ORDERED
    axis: int = 0

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        n = len(first)
        axis = self.axis + n if self.axis < 0 else self.axis
        if not 0 <= axis < n:
            raise ShapeError(f"axis {self.axis} out of range for shape {first}")
        for shape in inputs[1:]:
            if len(shape) != n or any(a != b for i, (a, b) in enumerate(zip(shape, first, strict=True)) if i != axis):
                raise ShapeError(f"inputs {list(inputs)} differ outside axis {self.axis}")
        return (*first[:axis], sum(s[axis] for s in inputs), *first[axis + 1 :])


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Elementwise(Node):
    """Shared shape rule of kinds with one array parameter that broadcasts to the input (kept shape)."""

    broadcast_field: ClassVar[str] = ""

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        problem = broadcast_problem(self, self.broadcast_field, shape)
        if problem:
            raise ShapeError(problem)
        return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Scale(Elementwise):
    r""":math:`y = s \odot x` with ``scale`` broadcast to the input (NIR ``Scale``)."""

    kind = "Scale"
    traits = frozenset({Routing(rescales=True), Additive(), ScalePassesThrough()})
    broadcast_field = "scale"
    scale: Array


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class ReLU(Node):
    r""":math:`y = \max(x, 0)`."""

    kind = "ReLU"
    traits = frozenset({NonEvent()})

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Clip(Node):
    r""":math:`y = \min(\max(x, lo), hi)`; ``min``/``max`` may be ``-inf``/``inf``."""

    kind = "Clip"
    traits = frozenset({NonEvent()})
    min: float = -np.inf
    max: float = np.inf

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if np.isnan(self.min) or np.isnan(self.max) or self.min > self.max:
            yield f"min={self.min} must not exceed max={self.max}"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)
