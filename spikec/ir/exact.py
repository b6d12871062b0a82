"""Kinds of the exact ANN→SNN path (SpikeZIP-TF style; docs/conversion.md, "Exact conversion").

``Quantize`` makes a quantized ANN (QANN); the spike-equivalent SNN carries at every step the
*increment* of each QANN value, so the sum over steps of every tensor converges to the QANN's.
``STBIF`` is the signed integrate-and-fire neuron with a spike-count tracker that a ``Quantize``
lowers to; ``Accumulate`` and ``Difference`` wrap every operation that is not additive
(Σ → f → Δ), and feed constants in once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.node import Array, Level, Node, Shape, broadcast_problem
from spikec.ir.traits import Neuron, NonEvent


def _one(inputs: Sequence[Shape]) -> Shape:
    (shape,) = inputs
    return tuple(shape)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Quantize(Node):
    r"""Clip-floor quantizer with integer levels ``lo..hi`` and step ``s`` (broadcast to the input):

    .. math:: q = \mathrm{clip}(\lfloor x / s + 1/2 \rfloor,\ lo,\ hi),\qquad y = s\,q

    (round half up, then clip). ``L = hi - lo + 1`` levels; ``lo = 0`` for a non-negative tensor.
    """

    kind = "Quantize"
    traits = frozenset({NonEvent()})
    step: Array
    lo: int
    hi: int

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if np.any(np.asarray(self.step) <= 0):
            yield f"step must be > 0 (got min {float(np.min(self.step))})"
        if not self.lo <= 0 <= self.hi or self.lo == self.hi:
            yield f"levels lo={self.lo}..hi={self.hi} must contain 0 and at least two levels"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        problem = broadcast_problem(self, "step", shape)
        if problem:
            raise ShapeError(problem)
        return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class STBIF(Node):
    r"""Signed integrate-and-fire with a spike-count tracker (ST-BIF of SpikeZIP-TF), per step:

    .. math::
        v &\leftarrow v + x \\
        z &= \mathrm{clip}\big(\mathrm{clip}(\lfloor v / \theta \rfloor,\ -k,\ k),\ lo - c,\ hi - c\big) \\
        v &\leftarrow v - z\,\theta,\qquad c \leftarrow c + z,\qquad y = z\,\theta

    with :math:`v_0 = \theta/2`, :math:`c_0 = 0` and :math:`k` = ``max_spikes`` spikes per step
    (1: a neuron fires +1 when :math:`v \ge \theta` and :math:`c < hi`, −1 when :math:`v < 0` and
    :math:`c > lo`). Once the accumulated input :math:`X = \sum_t x_t` stops changing, the count
    moves by up to :math:`k` per step towards :math:`\mathrm{clip}(\lfloor X/\theta + 1/2\rfloor, lo, hi)`,
    the level of ``Quantize(step=θ)`` on :math:`X`, and stays there.
    """

    kind = "STBIF"
    traits = frozenset({Neuron()})
    level = Level.SNN
    stateful = True
    v_threshold: Array
    lo: int
    hi: int
    max_spikes: int = 1

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if np.any(np.asarray(self.v_threshold) <= 0):
            yield f"v_threshold must be > 0 (got min {float(np.min(self.v_threshold))})"
        if not self.lo <= 0 <= self.hi:
            yield f"count bounds lo={self.lo}..hi={self.hi} must contain 0"
        if self.max_spikes < 1:
            yield f"max_spikes={self.max_spikes} must be >= 1"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = _one(inputs)
        problem = broadcast_problem(self, "v_threshold", shape)
        if problem:
            raise ShapeError(problem)
        return shape

    @property
    def settle_steps(self) -> int:
        """Steps the count needs, at most, to reach its level once the input has settled."""
        return -(-(self.hi - self.lo) // self.max_spikes)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Accumulate(Node):
    r"""Running sum over steps: :math:`y_t = \sum_{\tau \le t} x_\tau`."""

    kind = "Accumulate"
    traits = frozenset({NonEvent()})
    level = Level.SNN
    stateful = True

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Difference(Node):
    r"""Change since the previous step: :math:`y_t = x_t - x_{t-1}`, :math:`x_{-1} = 0`.

    A constant input passes once (at step 0) and gives 0 after; :math:`\sum_{\tau \le t} y_\tau = x_t`.
    """

    kind = "Difference"
    traits = frozenset({NonEvent()})
    level = Level.SNN
    stateful = True

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return _one(inputs)
