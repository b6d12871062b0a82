"""The SpiNNaker2 dialect: int8 synapses and the integer integrate-and-fire population they feed.

The kinds say in SIR terms what SpiNNaker2's ``lif_no_delay`` / ``lif_conv2d`` populations compute with
``alpha_decay = 1`` (no leak) and integer parameters (docs/spinnaker2-target.md in this folder, "Semantics"):
``SpiNNaker2Dense``, ``SpiNNaker2OneToOne`` and ``SpiNNaker2Conv`` carry signed 8-bit weights (py-spinnaker2 scales
every layer's weights to ±127), ``SpiNNaker2LIF`` is the population. Loading this module registers the kinds, their
interpreter kernels (``kernels.py``) and their core demand (``demand.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir import Conv
from spikec.ir.node import Array, Level, Node, Shape, elementwise_shape
from spikec.ir.traits import EmitsSpikes, Neuron, Synaptic

WEIGHT_BITS = 8
WEIGHT_MAX = (1 << (WEIGHT_BITS - 1)) - 1  # ±127: py-spinnaker2 scales weights to the int8 range
V_MAX = (1 << 24) - 1  # |v| below 2**24: exact in the float32 the PE's FPU and PyNN's simulators use
RESETS = ("value", "subtract")  # lif_no_delay: reset_to_v_reset, reset_by_subtraction


def _integer_problem(name: str, value: np.ndarray, bound: int) -> str | None:
    if not np.array_equal(value, np.round(value)):
        return f"'{name}' must hold integers (quantize{{target=spinnaker2}} makes them)"
    if value.size and float(np.max(np.abs(value))) > bound:
        return f"'{name}' must lie in -{bound} .. {bound}, got [{value.min():g}, {value.max():g}]"
    return None


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SpiNNaker2Dense(Node):
    r"""All-to-all int8 synapses: :math:`I = W x`, ``weight`` (out, in) in -127 .. 127, ``x`` 0/1 spikes."""

    kind = "SpiNNaker2Dense"
    level = Level.FIXED
    traits = frozenset({Synaptic()})
    weight: Array

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if self.weight.ndim != 2 or tuple(shape) != (self.weight.shape[1],):
            raise ShapeError(
                f"SpiNNaker2Dense weight {self.weight.shape} takes ({self.weight.shape[-1]},), got {shape}"
            )
        return (self.weight.shape[0],)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        problem = _integer_problem("weight", np.asarray(self.weight), WEIGHT_MAX)
        if problem:
            yield problem


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SpiNNaker2OneToOne(Node):
    r"""One int8 synapse per neuron: :math:`I_k = w_k x_k`, ``weight`` (N,) in -127 .. 127 (a residual's identity
    path on a flat source: N synapses, not an N × N diagonal ``SpiNNaker2Dense``)."""

    kind = "SpiNNaker2OneToOne"
    level = Level.FIXED
    traits = frozenset({Synaptic()})
    weight: Array

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if self.weight.ndim != 1 or tuple(shape) != tuple(self.weight.shape):
            raise ShapeError(f"SpiNNaker2OneToOne weight {self.weight.shape} takes {self.weight.shape}, got {shape}")
        return tuple(shape)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        problem = _integer_problem("weight", np.asarray(self.weight), WEIGHT_MAX)
        if problem:
            yield problem


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SpiNNaker2Conv(Node):
    r"""A 2-d convolution of int8 weights (``lif_conv2d``'s synapses): :math:`I = W \star x`, as ``Conv``.

    ``weight`` (O, I/groups, kH, kW) in -127 .. 127; ``stride``, ``padding`` (zero), ``groups`` as SIR's Conv.
    """

    kind = "SpiNNaker2Conv"
    level = Level.FIXED
    traits = frozenset({Synaptic()})
    weight: Array
    stride: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    groups: int = 1

    def as_conv(self) -> Conv:
        w = np.asarray(self.weight, np.float64)
        return Conv(weight=w, stride=self.stride, padding=self.padding, dilation=(1, 1), groups=self.groups)

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return self.as_conv().infer_shape(inputs)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.weight.ndim != 4:
            yield f"weight must be (O, I/groups, kH, kW), got {self.weight.shape}"
            return
        yield from self.as_conv().problems()
        problem = _integer_problem("weight", np.asarray(self.weight), WEIGHT_MAX)
        if problem:
            yield problem


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SpiNNaker2LIF(Node):
    r"""A SpiNNaker2 ``lif_no_delay`` population: decay, integrate, fire above θ, reset.

    With :math:`I` the summed synaptic input of the step, :math:`b` = ``bias`` (``i_offset``),
    :math:`\alpha` = ``alpha_decay`` and :math:`\beta` = ``syn_decay`` (per neuron, broadcast to the population;
    α = 1: no leak, an integrate-and-fire neuron; β = 0, the default: no synaptic current):

    .. math:: i \leftarrow \beta i + I + b,\qquad v \leftarrow \alpha v + i,\qquad z = [v > \theta],\qquad
              v \leftarrow \begin{cases} v_{reset} & \text{reset = value (reset\_to\_v\_reset)}\\
              v - z\,\theta & \text{reset = subtract (reset\_by\_subtraction)}\end{cases}

    (the value reset acts where z = 1). With β = 0, :math:`v \leftarrow \alpha v + I + b` (``lif_no_delay``);
    β > 0 is a current-based population (``lif_curr_exp``: its current decays by β and v reads this step's
    current). :math:`v = v_0` (``v_init``) and i = 0 before step 0. With ``readout = 1``
    the population never fires and outputs v (a membrane readout). All array fields are integers, |v| < 2²⁴;
    with ``alpha_decay = 1`` and no current v stays an integer (exact in float32 and float64), else it is a float.
    """

    kind = "SpiNNaker2LIF"
    level = Level.FIXED
    stateful = True
    traits = frozenset({Neuron(), EmitsSpikes()})
    threshold: Array = dataclasses.field(default_factory=lambda: np.asarray(1, np.int64))
    bias: Array = dataclasses.field(default_factory=lambda: np.asarray(0, np.int64))
    v_init: Array = dataclasses.field(default_factory=lambda: np.asarray(0, np.int64))
    v_reset: Array = dataclasses.field(default_factory=lambda: np.asarray(0, np.int64))
    reset: str = "value"
    readout: int = 0
    alpha_decay: Array = dataclasses.field(default_factory=lambda: np.asarray(1.0))
    syn_decay: Array = dataclasses.field(default_factory=lambda: np.asarray(0.0))

    @property
    def leaky(self) -> bool:
        """Whether any neuron decays (``alpha_decay < 1``) or has a current: its v is then a float."""
        return bool(np.any(np.asarray(self.alpha_decay) != 1.0)) or self.current_based

    @property
    def current_based(self) -> bool:
        """Whether the population has a synaptic current (any ``syn_decay > 0``)."""
        return bool(np.any(np.asarray(self.syn_decay) != 0.0))

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return elementwise_shape(self, inputs)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        for name in ("threshold", "bias", "v_init", "v_reset"):
            problem = _integer_problem(name, np.asarray(getattr(self, name)), V_MAX)
            if problem:
                yield problem
        if self.reset not in RESETS:
            yield f"reset {self.reset!r} must be one of {RESETS}"
        alpha = np.asarray(self.alpha_decay)
        if alpha.size and not (np.all(alpha > 0.0) and np.all(alpha <= 1.0)):
            yield f"alpha_decay must lie in (0, 1] (1: no leak), got [{alpha.min():g}, {alpha.max():g}]"
        beta = np.asarray(self.syn_decay)
        if beta.size and not (np.all(beta >= 0.0) and np.all(beta < 1.0)):
            yield f"syn_decay must lie in [0, 1) (0: no synaptic current), got [{beta.min():g}, {beta.max():g}]"
        if self.current_based and self.readout:
            yield "a readout (readout = 1) has no synaptic current: syn_decay must be 0"
        if self.readout not in (0, 1):
            yield f"readout must be 0 (spiking) or 1 (outputs v), got {self.readout}"


SPINNAKER2_KINDS: tuple[type[Node], ...] = (SpiNNaker2Dense, SpiNNaker2OneToOne, SpiNNaker2Conv, SpiNNaker2LIF)

# Loading the dialect brings the kinds' interpreter kernels and their core demand with it.
from spikec.targets.spinnaker2 import demand, kernels  # noqa: E402, F401
