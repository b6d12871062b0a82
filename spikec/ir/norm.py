"""Normalisation kinds that ANN front ends produce and conversion folds away."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.node import Array, Node, Shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class BatchNorm(Node):
    r"""Inference batch normalisation over the channel axis (per-sample axis 0):

    .. math:: y[c, \dots] = \frac{x[c, \dots] - \mu_c}{\sqrt{\sigma^2_c + \epsilon}}\,\gamma_c + \beta_c

    ``mean``, ``var``, ``weight`` (γ) and ``bias`` (β) have shape (C,). ``fold-batchnorm`` merges
    it exactly into a preceding Conv or Dense.
    """

    kind = "BatchNorm"
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
