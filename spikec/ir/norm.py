"""Normalisation kinds of ANN front ends: ``BatchNorm`` (conversion folds it away) and ``LRN``
(cross-channel normalisation of AlexNet-era CNNs)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.node import Array, Node, Shape
from spikec.ir.traits import NonEvent, Routing


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class BatchNorm(Node):
    r"""Inference batch normalisation over the channel axis (per-sample axis 0):

    .. math:: y[c, \dots] = \frac{x[c, \dots] - \mu_c}{\sqrt{\sigma^2_c + \epsilon}}\,\gamma_c + \beta_c

    ``mean``, ``var``, ``weight`` (γ) and ``bias`` (β) have shape (C,). ``fold-batchnorm`` merges
    it exactly into a preceding Conv or Dense.
    """

    kind = "BatchNorm"
    traits = frozenset({Routing(rescales=True)})
    mean: Array
    var: Array
    weight: Array
    bias: Array
    eps: float = 1e-5

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        shapes = {f: getattr(self, f).shape for f in ("mean", "var", "weight", "bias")}
        if len(set(shapes.values())) != 1 or len(self.mean.shape) != 1:
            yield f"mean, var, weight and bias must all have shape (C,), got {shapes}"
        elif np.any(self.var + self.eps <= 0):
            yield "var + eps must be > 0"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if not shape or shape[0] != self.mean.shape[0]:
            raise ShapeError(f"expects {self.mean.shape[0]} channels on axis 0, got shape {shape}")
        return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LRN(Node):
    r"""Local response normalisation across channels (AlexNet, GoogLeNet; ONNX ``LRN``):

    .. math:: y_c = x_c \Big/ \Big(k + \frac{\alpha}{n} \sum_{c' = c - b}^{c + e} x_{c'}^2\Big)^{\beta},
        \quad b = \lfloor (n-1)/2 \rfloor,\ e = \lceil (n-1)/2 \rceil

    summing only channels ``0 ≤ c' < C`` of the channel axis ``axis`` (per sample; 0 for
    (C, *spatial)), with window ``size`` = n. PyTorch's ``nn.LocalResponseNorm`` is the same for odd
    n; for even n it centres the window one channel earlier.
    """

    kind = "LRN"
    traits = frozenset({NonEvent()})
    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
    axis: int = 0

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.size < 1:
            yield f"size={self.size} must be >= 1"
        for name in ("alpha", "beta", "k"):
            if not math.isfinite(getattr(self, name)):
                yield f"{name}={getattr(self, name)} must be finite"

    def window(self) -> tuple[int, int]:
        """Channels summed before and after each channel: ``(⌊(n−1)/2⌋, ⌈(n−1)/2⌉)``."""
        before = (self.size - 1) // 2
        return before, self.size - 1 - before

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if not -len(shape) <= self.axis < len(shape):
            raise ShapeError(f"channel axis {self.axis} is out of range for shape {shape}")
        return tuple(shape)
