"""The ACME-1 dialect: the chip's two node kinds, with integer fields exactly as the chip stores them.

``AcmeDense`` is a synapse matrix into a neuron group, ``AcmeLIF`` the group (the chip's specification is
in ``acme_sim``'s docstring; the kinds say it again in SIR terms). Loading this module (spikec does it the
first time a graph or a command needs the ``acme1`` target) registers the kinds, their interpreter kernels
(``kernels.py``) and their core demand (``demand.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.node import Array, Level, Node, Shape, elementwise_shape
from spikec.ir.traits import EmitsSpikes, Neuron, Synaptic

V_BITS = 24  # the membrane: signed 24-bit, saturating
V_MIN, V_MAX = -(1 << (V_BITS - 1)), (1 << (V_BITS - 1)) - 1
WEIGHT_BITS = 8  # synaptic weights: signed 8-bit
WEIGHT_MIN, WEIGHT_MAX = -(1 << (WEIGHT_BITS - 1)), (1 << (WEIGHT_BITS - 1)) - 1
BIAS_MIN, BIAS_MAX = -(1 << 15), (1 << 15) - 1  # signed 16-bit
LEAK_SHIFT_MAX = 15
INPUT_MAX = 255  # host inputs: integers 0 .. 255


def _range_problem(name: str, value: np.ndarray, lo: int, hi: int) -> str | None:
    if not np.array_equal(value, np.round(value)):
        return f"'{name}' must hold integers (the chip stores it in fixed point)"
    if value.size and (value.min() < lo or value.max() > hi):
        return f"'{name}' must lie in {lo} .. {hi}, got [{value.min():g}, {value.max():g}]"
    return None


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AcmeDense(Node):
    r"""ACME-1 synapses: :math:`I = W x` with signed 8-bit weights, delivered in the same step.

    ``weight`` is (neurons, inputs), integers -128 .. 127; ``x`` is a group's 0/1 spikes or the host's
    integers 0 .. 255.
    """

    kind = "AcmeDense"
    level = Level.FIXED
    traits = frozenset({Synaptic()})
    weight: Array

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if self.weight.ndim != 2 or shape != (self.weight.shape[1],):
            raise ShapeError(f"AcmeDense weight {self.weight.shape} takes ({self.weight.shape[-1]},), got {shape}")
        return (self.weight.shape[0],)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        problem = _range_problem("weight", np.asarray(self.weight), WEIGHT_MIN, WEIGHT_MAX)
        if problem:
            yield problem + "; quantize{target=acme1} fits float weights into this range"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AcmeLIF(Node):
    r"""An ACME-1 neuron group: integer leak by a right shift, fire at or above θ, reset by subtraction.

    With :math:`I` the summed synaptic input of the step and :math:`k` = ``leak_shift``:

    .. math:: v \leftarrow \mathrm{sat}_{24}\big(v - [k > 0]\,\lfloor v / 2^{k} \rfloor + I + b\big),\qquad
              z = [v \ge \theta],\qquad v \leftarrow v - z\,\theta

    :math:`\mathrm{sat}_{24}` clips to :math:`[-2^{23}, 2^{23} - 1]`; :math:`v = v_0` (``v_init``) at step 0.
    The node outputs z; with ``readout=1`` it never fires and outputs v (a membrane readout). ``threshold``
    1 .. 2²³ − 1, ``bias`` signed 16-bit, ``v_init`` signed 24-bit (per neuron or one value), ``leak_shift``
    0 .. 15 (0: no leak).
    """

    kind = "AcmeLIF"
    level = Level.FIXED
    stateful = True
    traits = frozenset({Neuron(), EmitsSpikes()})
    threshold: Array = dataclasses.field(default_factory=lambda: np.asarray(1, np.int64))
    bias: Array = dataclasses.field(default_factory=lambda: np.asarray(0, np.int64))
    v_init: Array = dataclasses.field(default_factory=lambda: np.asarray(0, np.int64))
    leak_shift: int = 0
    readout: int = 0

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return elementwise_shape(self, inputs)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        for name, lo, hi in (("threshold", 1, V_MAX), ("bias", BIAS_MIN, BIAS_MAX), ("v_init", V_MIN, V_MAX)):
            problem = _range_problem(name, np.asarray(getattr(self, name)), lo, hi)
            if problem:
                yield problem
        if not 0 <= self.leak_shift <= LEAK_SHIFT_MAX:
            yield f"leak_shift {self.leak_shift} must be 0 .. {LEAK_SHIFT_MAX} (0: no leak)"
        if self.readout not in (0, 1):
            yield f"readout must be 0 (a spiking group) or 1 (outputs v), got {self.readout}"


ACME_KINDS: tuple[type[Node], ...] = (AcmeDense, AcmeLIF)

# Loading the dialect brings the kinds' interpreter kernels and their core demand with it.
from acme_spikec import demand, kernels  # noqa: E402, F401
