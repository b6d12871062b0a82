"""Spatial kinds beyond ``ann``'s Conv and pools: padding, transposed convolution and general
N-d pooling (dilation, asymmetric padding, ceil mode, padding excluded from averages).

Input layout is (channels, *spatial) per sample, as for ``Conv``. ``pads`` lists the padding
before each spatial axis, then after each (ONNX's order): ``(b_1, …, b_n, e_1, …, e_n)``
(``Pad``: every per-sample axis, constant, reflect, edge or wrap).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.node import Array, Node, Shape
from spikec.ir.traits import Additive, Routing, ScalePassesThrough, Synaptic


def _one(inputs: Sequence[Shape]) -> Shape:
    (shape,) = inputs
    return tuple(shape)


PAD_MODES = ("constant", "reflect", "edge", "wrap")


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Pad(Node):
    """Padding of every per-sample axis: ``pads = (b_0, …, b_{r-1}, e_0, …, e_{r-1})`` entries (all
    >= 0) before and after axis ``i`` of length ``n``. Output entry ``j`` of the axis reads input
    entry ``i = j − b`` where ``0 ≤ i < n``; elsewhere, by ``mode``:

    - ``constant``: ``value``;
    - ``edge``: entry ``clip(i, 0, n − 1)``;
    - ``reflect``: the mirror image without repeating the edge: ``m = i mod 2(n − 1)``, entry
      ``m`` if ``m < n`` else ``2(n − 1) − m`` (entry 0 when ``n = 1``);
    - ``wrap``: entry ``i mod n``.

    ``reflect``, ``edge`` and ``wrap`` are numpy's (and ONNX ``Pad``'s) modes; ``value`` is unused by them.
    """

    kind = "Pad"
    traits = frozenset(
        {
            Routing(),
            Additive(when=lambda n: n.value == 0.0),
            ScalePassesThrough(when=lambda n: n.mode != "constant" or n.value == 0.0),  # padding a·x is a·pad(x)
        }
    )
    pads: tuple[int, ...]
    value: float = 0.0
    mode: str = "constant"

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if len(self.pads) % 2 or any(p < 0 for p in self.pads):
            yield f"pads {self.pads} must be 2·rank entries, all >= 0"
        if math.isnan(self.value):
            yield "value must not be NaN"
        if self.mode not in PAD_MODES:
            yield f"mode {self.mode!r} is not one of {list(PAD_MODES)}"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        if len(self.pads) != 2 * len(shape):
            raise ShapeError(f"pads {self.pads} need {2 * len(shape)} entries for shape {shape}")
        r = len(shape)
        return tuple(d + self.pads[i] + self.pads[r + i] for i, d in enumerate(shape))

    def source_indices(self, axis: int, n: int) -> np.ndarray:
        """For a non-constant mode: the input entry each output entry of axis ``axis`` (length ``n``) reads."""
        before, after = self.pads[axis], self.pads[len(self.pads) // 2 + axis]
        i = np.arange(-before, n + after)
        if self.mode == "edge":
            return np.clip(i, 0, n - 1)
        if self.mode == "wrap":
            return np.mod(i, n)
        if n == 1:
            return np.zeros_like(i)
        m = np.mod(i, 2 * (n - 1))
        return np.where(m < n, m, 2 * (n - 1) - m)


def _spatial_problems(node: Node, nd: int, names: Sequence[str]) -> Iterator[str]:
    for name in names:
        value = getattr(node, name)
        want = 2 * nd if name == "pads" else nd
        if len(value) != want:
            yield f"{name} {value} must have {want} entries ({nd} spatial axes)"
        elif name in ("stride", "dilation", "kernel_size") and any(v < 1 for v in value):
            yield f"{name} {value} must be >= 1"
        elif name in ("pads", "output_padding") and any(v < 0 for v in value):
            yield f"{name} {value} must be >= 0"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class ConvTranspose(Node):
    r"""Transposed convolution (the gradient of ``Conv``; ONNX ``ConvTranspose``), 1 to 3 spatial axes.

    ``weight`` is (in, out/groups, *kernel). Each input position scatters into the full output

    .. math:: z[g\cdot O_g + o,\ i s + k d] \mathrel{+}= \sum_c x[g\cdot C_g + c,\ i]\, W[g\cdot C_g + c, o, k]

    of length ``s (n − 1) + d (k − 1) + 1`` per axis; ``output_padding`` zeros are appended, then
    ``pads`` cropped from both ends, and ``bias`` added: output size
    ``s (n − 1) + output_padding + d (k − 1) + 1 − b − e``.
    """

    kind = "ConvTranspose"
    traits = frozenset({Synaptic(), Additive(when=lambda n: n.bias is None)})
    weight: Array
    bias: Array | None = None
    stride: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    output_padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        nd = max(self.weight.ndim - 2, 0)
        for name, default in (("stride", 1), ("dilation", 1), ("output_padding", 0), ("pads", 0)):
            if getattr(self, name) == ():
                object.__setattr__(self, name, (default,) * (2 * nd if name == "pads" else nd))

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        nd = self.weight.ndim - 2
        if nd not in (1, 2, 3):
            yield f"weight must be (in, out/groups, *kernel) with 1 to 3 kernel axes, got {self.weight.shape}"
            return
        yield from _spatial_problems(self, nd, ("stride", "pads", "output_padding", "dilation"))
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            yield f"groups={self.groups} must divide the {self.weight.shape[0]} input channels"
        elif self.bias is not None and self.bias.shape != (self.weight.shape[1] * self.groups,):
            yield f"bias shape {self.bias.shape} does not match {self.weight.shape[1] * self.groups} output channels"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        nd = self.weight.ndim - 2
        if len(shape) != nd + 1 or shape[0] != self.weight.shape[0]:
            raise ShapeError(f"expects (channels={self.weight.shape[0]}, {nd} spatial axes), got shape {shape}")
        out = []
        for i, n in enumerate(shape[1:]):
            k, s, d = self.weight.shape[2 + i], self.stride[i], self.dilation[i]
            m = s * (n - 1) + self.output_padding[i] + d * (k - 1) + 1 - self.pads[i] - self.pads[nd + i]
            if m < 1:
                raise ShapeError(f"pads {self.pads} leave no output for input {shape}")
            out.append(m)
        return (self.weight.shape[1] * self.groups, *out)


POOL_MODES = ("max", "avg")


def pool_output_size(n: int, k: int, s: int, d: int, b: int, e: int, ceil_mode: bool) -> int:
    """ONNX's pooled length: ``(n + b + e − d(k−1) − 1)/s + 1`` rounded down (up with ``ceil_mode``,
    where the last window must still start inside the input or its leading padding)."""
    span = n + b + e - d * (k - 1) - 1
    if span < 0:
        raise ShapeError(f"window of {k} (dilation {d}) does not fit a padded length of {n + b + e}")
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + b:
        out -= 1
    return out


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Pool(Node):
    r"""N-d pooling with ONNX's options (``MaxPool``/``AveragePool``), over (channels, *spatial).

    Windows start at ``p s − b`` and take ``k`` entries ``d`` apart. ``max``: the largest entry
    inside the input (padding never wins). ``avg``: the sum of the entries inside the input over
    a divisor that counts the entries inside the padded input (``count_include_pad=1``, padding
    as zeros) or only those inside the input (``count_include_pad=0``). With ``ceil_mode=1``
    the output length rounds up (``pool_output_size``); the part of a last window beyond the
    padded input counts for nothing. The plain ``MaxPool``/``AvgPool`` kinds are the special case
    of 1–2 axes, symmetric padding, no dilation and (for averages) padding counted.
    """

    kind = "Pool"
    traits = frozenset({Synaptic(), Additive(when=lambda n: n.mode == "avg"), ScalePassesThrough()})
    mode: str
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    ceil_mode: int = 0
    count_include_pad: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        nd = len(self.kernel_size)
        for name, default in (("stride", 1), ("dilation", 1), ("pads", 0)):
            if getattr(self, name) == ():
                object.__setattr__(self, name, (default,) * (2 * nd if name == "pads" else nd))

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.mode not in POOL_MODES:
            yield f"mode {self.mode!r} is not one of {list(POOL_MODES)}"
        nd = len(self.kernel_size)
        if nd < 1:
            yield "kernel_size needs at least one entry"
        yield from _spatial_problems(self, nd, ("kernel_size", "stride", "dilation", "pads"))

    def output_spatial(self, spatial: Sequence[int]) -> tuple[int, ...]:
        nd = len(self.kernel_size)
        return tuple(
            pool_output_size(
                n,
                self.kernel_size[i],
                self.stride[i],
                self.dilation[i],
                self.pads[i],
                self.pads[nd + i],
                bool(self.ceil_mode),
            )
            for i, n in enumerate(spatial)
        )

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        nd = len(self.kernel_size)
        if len(shape) != nd + 1:
            raise ShapeError(f"expects (channels, {nd} spatial axes), got shape {shape}")
        out = self.output_spatial(shape[1:])
        if min(out) < 1:
            raise ShapeError(f"window {self.kernel_size} leaves no output for input {shape}")
        return (shape[0], *out)
