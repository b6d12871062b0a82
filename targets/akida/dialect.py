"""The Akida dialect: one node kind per Akida IP v2 layer family, integer fields exactly as the engine stores them.

Layouts are SIR's: per-sample (C, H, W) feature maps, (O, I/groups, kH, kW) correlation kernels, and a
dense layer's inputs in SIR's C-order flatten of (C, H, W). The emitter (``emit.py``) converts to Akida's
(X, Y, C) maps, flips the kernels of ``Conv2D``/``DepthwiseConv2D`` (a real convolution in the engine;
``InputConv2D`` correlates) and reorders a ``Dense1D``'s inputs to Akida's (X, Y, C) flatten. The
kernels in ``kernels.py`` compute the engine's integer arithmetic exactly (docs/akida-target.md,
"Integer semantics", measured against akida 2.19.3):

.. math::
    acc &= W \\star (x \\ll s_{in}) + (b \\ll s_b) \\\\
    acc &\\leftarrow \\mathrm{pool}(acc)\\ \\text{(max; or global sum, after the ReLU)} \\\\
    acc &\\leftarrow \\max(acc, 0)\\ \\text{(relu)} \\\\
    y &= \\mathrm{sat}_{bits}\\big(\\mathrm{rshift}_{round}(acc \\cdot scale,\\ -shift)\\big)

with :math:`\\mathrm{rshift}_{round}(v, k) = \\lfloor (v + 2^{k-1}) / 2^k \\rfloor` for a negative
``output_shift`` (a positive one shifts left), saturation to [0, 2^bits - 1] for 4-bit outputs, to
int8 for 8-bit outputs ([0, 127] with ReLU) and int32 for 32-bit ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.node import Array, Inputs, Level, Node, Shape
from spikec.ir.traits import NonEvent

POOLS = ("none", "max", "global_avg")
OUTPUT_BITS = (4, 8, 32)
WEIGHT_BITS = (4, 8)


def output_range(bits: int, relu: bool) -> tuple[int, int]:
    """The values an Akida v2 layer's output saturates to: 4-bit unsigned, 8-bit int8 (ReLU: [0, 127]), int32."""
    if bits == 32:
        return (0 if relu else -(1 << 31)), (1 << 31) - 1
    if bits == 8:
        return (0 if relu else -128), 127
    return 0, (1 << bits) - 1


def add_range(bits: int) -> tuple[int, int]:
    """The values an Akida v2 ``Add`` saturates to: the signed ``bits``-bit range, whatever its inputs' signs (two
    unsigned inputs: [0, 127] at 8 bits, [0, 7] at 4; measured)."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding, which Akida's ``Padding.Same`` uses: the odd pad goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _window(size: int, kernel: int, stride: int, lo: int, hi: int) -> int:
    return (size + lo + hi - kernel) // stride + 1


def integer_problems(node: Node, but: tuple[str, ...] = ()) -> Iterator[str]:
    """A problem for each array field of ``node`` (except those in ``but``) holding a non-integer: Akida stores
    them as integers."""
    for name in node.array_fields():
        value = getattr(node, name)
        if name in but:
            continue
        if value is not None and value.size and not np.array_equal(value, np.round(value)):
            yield f"field '{name}' must hold integers (Akida stores it so)"


def range_problems(name: str, value: np.ndarray, lo: int, hi: int, what: str) -> Iterator[str]:
    """A problem when field ``name``'s ``value`` leaves [``lo``, ``hi``], the range of ``what`` (e.g. "int8")."""
    if value.size and (np.min(value) < lo or np.max(value) > hi):
        yield f"'{name}' must lie in [{lo}, {hi}] ({what}), got [{np.min(value)}, {np.max(value)}]"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaLayer(Node):
    """The fields and checks an IP v2 conv or dense layer shares: bias, shifts, output scales, ReLU and bit widths
    (module docstring); each kind adds its ``weight``."""

    level = Level.FIXED
    traits = frozenset({NonEvent()})
    bias: Array  # int8 mantissas, one per output channel
    bias_shift: Array  # uint8
    output_scales: Array  # uint8, 1..255
    output_shift: Array  # int8: < 0 a rounding right shift, > 0 a left shift
    input_shift: Array  # uint8, per input channel (a dense layer: per input)
    relu: int = 1
    output_bits: int = 4
    weights_bits: int = 4

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        yield from integer_problems(self)
        if self.output_bits not in OUTPUT_BITS:
            yield f"output_bits {self.output_bits} must be one of {OUTPUT_BITS} (Akida IP v2)"
        if self.weights_bits not in WEIGHT_BITS:
            yield f"weights_bits {self.weights_bits} must be 4 or 8 (Akida IP v2)"
        half = 1 << (self.weights_bits - 1)
        weight = np.asarray(self.weight)  # type: ignore[attr-defined]
        yield from range_problems("weight", weight, -half, half - 1, f"{self.weights_bits}-bit weights")
        yield from range_problems("bias", np.asarray(self.bias), -128, 127, "int8")
        yield from range_problems("bias_shift", np.asarray(self.bias_shift), 0, 255, "uint8")
        yield from range_problems("output_scales", np.asarray(self.output_scales), 0, 255, "uint8")
        yield from range_problems("output_shift", np.asarray(self.output_shift), -128, 127, "int8")
        yield from range_problems("input_shift", np.asarray(self.input_shift), 0, 255, "uint8")
        outs = int(np.asarray(self.weight).shape[0])  # type: ignore[attr-defined]
        for name in ("bias", "bias_shift", "output_scales", "output_shift"):
            if np.asarray(getattr(self, name)).shape != (outs,):
                yield f"'{name}' must hold one value per output channel ({outs})"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class ConvGeometry:
    """Kernel, pads, stride and max-pool of an Akida convolution (IP v1 and v2 alike, measured): ``pads`` = (top,
    bottom, left, right): (0, 0, 0, 0) is Akida's VALID, else its SAME (``same_pads``, with which a max-pool pads
    SAME too) or SAME_UPPER (the odd pad before: ``upper``).

    The fields of ``AkidaConv`` and ``AkidaV1Conv``, declared once: a kind lists this class first among its bases,
    so that (dataclasses collect fields from the last base to the first) these come after its layer's own fields,
    in this order, as the ``.sir`` printer has always written them."""

    weight: Array  # (O, I/groups, k, k) correlation kernel, integers
    stride: int = 1
    pads: tuple[int, ...] = (0, 0, 0, 0)
    padding: str = ""  # "": Akida's padding follows from the pads; "same": SAME where they are all 0 (a 1x1 kernel)
    groups: int = 1
    pool: str = "none"
    pool_size: int = 0
    pool_stride: int = 0
    input_layer: int = 0  # 1: the model's first layer (InputConv2D, InputConvolutional), which takes 8-bit pixels

    @property
    def same(self) -> bool:
        """Akida's ``Padding.Same`` (or ``SameUpper``): any pad, or ``padding="same"`` (for a 1x1 kernel SAME's pads
        are 0: the same function as VALID, but the engine pools SAME after it, and only SAME maps after the input
        layer)."""
        return self.padding == "same" or any(self.pads)

    @property
    def upper(self) -> bool:
        """Akida's ``Padding.SameUpper``: the odd pad before (TF's SAME puts it after)."""
        return self.pads[0] > self.pads[1] or self.pads[2] > self.pads[3]

    def geometry_problems(self) -> Iterator[str]:
        if len(self.pads) != 4:
            yield "pads must be (top, bottom, left, right)"
        if self.padding not in ("", "same"):
            yield f"padding {self.padding!r} must be '' (from the pads) or 'same'"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        w = np.asarray(self.weight)
        kind = type(self).__name__
        if len(shape) != 3 or shape[0] != w.shape[1] * self.groups:
            raise ShapeError(f"{kind} takes ({w.shape[1] * self.groups}, H, W), got {shape}")
        k = w.shape[2]
        h = _window(shape[1], k, self.stride, self.pads[0], self.pads[1])
        v = _window(shape[2], k, self.stride, self.pads[2], self.pads[3])
        if self.pool == "max":
            h, v = (self.pooled(n) for n in (h, v))
        elif self.pool == "global_avg":
            h = v = 1
        return (w.shape[0], h, v)

    def pool_pads(self, size: int) -> tuple[int, int]:
        return same_pads(size, self.pool_size, self.pool_stride) if self.same else (0, 0)

    def pooled(self, size: int) -> int:
        lo, hi = self.pool_pads(size)
        return _window(size, self.pool_size, self.pool_stride, lo, hi)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaConv(ConvGeometry, AkidaLayer):
    """``InputConv2D`` (``input_layer=1``: 8-bit pixels, 1 or 3 channels, 8-bit weights), ``Conv2D``
    (``groups=1``) or ``DepthwiseConv2D`` (``groups`` = channels): conv, bias, pool, ReLU, scale (module
    docstring); pads and pooling: ``ConvGeometry``."""

    kind = "AkidaConv"

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        yield from self.geometry_problems()
        if self.pool not in POOLS:
            yield f"pool {self.pool!r} must be one of {POOLS}"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class DenseGeometry:
    """The (O, I) integer weight of an Akida dense layer (IP v1 and v2), which reads the C-order flatten of its
    input; listed first among a kind's bases, as ``ConvGeometry`` is, so ``weight`` stays its last field."""

    weight: Array  # (O, I) integers

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        w = np.asarray(self.weight).shape
        if w[1] != int(np.prod(shape)):
            raise ShapeError(f"{getattr(self, 'kind', 'dense')} weight {w} takes {w[1]} inputs, got {shape}")
        return (w[0],)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaDense(DenseGeometry, AkidaLayer):
    """``Dense1D``: (inputs << input_shift) @ W^T + (bias << bias_shift), ReLU, scale (module docstring).
    Inputs in SIR's C-order flatten of the previous layer's (C, H, W)."""

    kind = "AkidaDense"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaAdd(Node):
    """``Add`` of two layers' outputs (edge order: ``a``, then ``b``), per channel:
    :math:`y = \\mathrm{sat}(\\mathrm{rshift}_{round}((a \\ll s_a) + (b \\ll s_b),\\ -shift))`, saturated to
    the signed ``output_bits`` range (``add_range``; measured: docs/akida-target.md, "Add and Concatenate")."""

    kind = "AkidaAdd"
    level = Level.FIXED
    traits = frozenset({NonEvent()})
    inputs = Inputs.ORDERED
    a_shift: Array  # uint8 per channel
    b_shift: Array  # uint8 per channel
    output_shift: Array  # int8 per channel: < 0 a rounding right shift, > 0 a left shift
    output_bits: int = 8
    signed: int = 0  # 1 when an input is signed (a layer without ReLU)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        yield from integer_problems(self)
        if self.output_bits not in (4, 8):
            yield f"output_bits {self.output_bits} must be 4 or 8 (an Akida IP v2 Add between layers)"
        for name in ("a_shift", "b_shift"):
            yield from range_problems(name, np.asarray(getattr(self, name)), 0, 255, "uint8")
        yield from range_problems("output_shift", np.asarray(self.output_shift), -128, 127, "int8")
        sizes = {np.asarray(getattr(self, n)).shape for n in ("a_shift", "b_shift", "output_shift")}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            yield "'a_shift', 'b_shift' and 'output_shift' must hold one value per channel"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        channels = np.asarray(self.output_shift).shape[0]
        if len(inputs) != 2 or inputs[0] != inputs[1] or inputs[0][0] != channels:
            raise ShapeError(f"AkidaAdd takes two ({channels}, H, W) inputs of one shape, got {list(inputs)}")
        return inputs[0]


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaConcat(Node):
    """``Concatenate``: the inputs' channels joined in edge order (Akida's last axis, SIR's first); values pass
    unchanged (the inputs share output bits and sign: the engine's rule)."""

    kind = "AkidaConcat"
    level = Level.FIXED
    traits = frozenset({NonEvent()})
    inputs = Inputs.ORDERED

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs) < 2 or any(len(s) != 3 or s[1:] != inputs[0][1:] for s in inputs):
            raise ShapeError(f"AkidaConcat takes two or more (C, H, W) inputs of one H, W, got {list(inputs)}")
        return (sum(s[0] for s in inputs), *inputs[0][1:])


from spikec.targets.akida import kernels as _kernels  # noqa: E402,F401  (registers the kernels)
from spikec.targets.akida.dialect_v1 import AkidaV1Conv, AkidaV1Dense  # noqa: E402  (IP v1 kinds and kernels)

__all__ = ["AkidaAdd", "AkidaConcat", "AkidaConv", "AkidaDense", "AkidaV1Conv", "AkidaV1Dense", "ConvGeometry"]
