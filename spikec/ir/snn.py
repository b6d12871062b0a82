"""SNN-level node kinds: neurons, thresholds and delays.

Parameters follow NIR's continuous-time definitions; the graph's ``dt`` and the discrete update
order of docs/semantics.md (synaptic input, decay, integrate, fire, reset) turn them into steps.
Every parameter is an array that broadcasts to the node's input shape (a scalar array is fine).
Spikes are emitted when the membrane is strictly above threshold, as NIR defines them.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.ir.ann import _Pool
from spikec.ir.node import Array, Level, Node, Shape, elementwise_shape
from spikec.ir.traits import EmitsSpikes, Neuron, Routing


class Reset(enum.StrEnum):
    """What a spike does to the membrane.

    ``value``: v ← v_reset (the reset to zero when v_reset = 0, NIR's behaviour);
    ``subtract``: v ← v − v_threshold (keeps the residue, as rate-coded conversion needs);
    ``none``: the membrane is left as it is;
    ``subtract_next``: v_th is subtracted at the *next* step, after that step's decay and input
    (v ← decay(v) + input − [v_prev > v_th]·v_th), so the subtraction itself never decays; the stored
    membrane is the value before the reset (snnTorch's default ``reset_delay=True`` order).
    """

    VALUE = "value"
    SUBTRACT = "subtract"
    NONE = "none"
    SUBTRACT_NEXT = "subtract_next"


class Firing(enum.StrEnum):
    """When the membrane fires.

    ``above``: z = [v > v_th] (NIR's strict test, and snnTorch's);
    ``at_or_above``: z = [v ≥ v_th] (SpikingJelly's Heaviside, ``spike = (v − v_th ≥ 0)``).
    A bipolar IF mirrors the test for −1 spikes (``v < −v_th`` or ``v ≤ −v_th``).
    """

    ABOVE = "above"
    AT_OR_ABOVE = "at_or_above"


class Polarity(enum.StrEnum):
    """Which spikes an IF emits.

    ``unipolar``: z = [v > v_th] (NIR's IF);
    ``bipolar``: z = [v > v_th] − [v < −v_th], a −1 spike when the membrane falls below −v_th
    (for signed quantities, e.g. an output layer without ReLU in ANN→SNN conversion).
    """

    UNIPOLAR = "unipolar"
    BIPOLAR = "bipolar"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class _Neuron(Node):
    """Shared checks: every array parameter broadcasts to the input; time constants are non-zero.

    A negative time constant is allowed: the Euler step multiplies the state by ``1 − dt/τ > 1`` (a
    learned decay above 1, as Spyx exports it); docs/semantics.md.
    """

    level = Level.SNN
    stateful = True

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return elementwise_shape(self, inputs)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        for name in self.array_fields():
            value = getattr(self, name)
            if name.startswith("tau") and value is not None and np.any(value == 0):
                yield f"time constant '{name}' must be non-zero (dt/{name} would divide by zero)"
        if "reset" in self.params():
            try:
                Reset(self.reset)  # type: ignore[attr-defined]
            except ValueError:
                yield f"reset {self.reset!r} must be one of {[r.value for r in Reset]}"  # type: ignore[attr-defined]
        if "firing" in self.params():
            try:
                Firing(self.firing)  # type: ignore[attr-defined]
            except ValueError:
                yield f"firing {self.firing!r} must be one of {[f.value for f in Firing]}"  # type: ignore[attr-defined]


def _f(value: float) -> Array:
    return np.asarray(value, dtype=np.float64)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class IF(_Neuron):
    r"""Integrate-and-fire: :math:`v \leftarrow v + R I`; spike :math:`z = [v > v_{th}]`; reset.

    NIR's IF has no time constant, so the input of one step is taken as the charge of that step
    (dt does not appear); docs/semantics.md explains why. Two spikec extensions, both off by default
    (NIR's IF): ``v_init`` is the membrane at step 0 (QCFS-style conversion starts at v_th/2), and
    ``polarity="bipolar"`` adds −1 spikes, :math:`z = [v > v_{th}] - [v < -v_{th}]`; a reset acts on
    either spike (``subtract``: :math:`v \leftarrow v - z\,v_{th}`).
    """

    kind = "IF"
    traits = frozenset({Neuron(), EmitsSpikes()})
    r: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_threshold: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_reset: Array = dataclasses.field(default_factory=lambda: _f(0.0))
    reset: str = Reset.VALUE.value
    v_init: Array = dataclasses.field(default_factory=lambda: _f(0.0))
    polarity: str = Polarity.UNIPOLAR.value
    firing: str = Firing.ABOVE.value

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        try:
            Polarity(self.polarity)
        except ValueError:
            yield f"polarity {self.polarity!r} must be one of {[p.value for p in Polarity]}"
        if self.polarity == Polarity.BIPOLAR and np.any(self.v_threshold <= 0):
            yield "a bipolar IF needs v_threshold > 0 (it fires −1 below −v_threshold)"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LIF(_Neuron):
    r"""Leaky integrate-and-fire, :math:`\tau \dot v = (v_{leak} - v) + R I`, forward Euler:

    .. math:: v \leftarrow v + \tfrac{dt}{\tau}\,(v_{leak} - v) + \tfrac{dt}{\tau} R I,\quad
              z = [v > v_{th}],\quad \text{then reset}

    Beyond NIR (defaults give NIR's LIF): ``firing="at_or_above"`` fires at :math:`v \ge v_{th}`,
    ``reset="subtract_next"`` subtracts after the next step's decay, ``v_init`` is the membrane
    before step 0 (SpikingJelly starts a hard-reset neuron at ``v_reset``).
    """

    kind = "LIF"
    traits = frozenset({Neuron(), EmitsSpikes()})
    tau: Array
    r: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_leak: Array = dataclasses.field(default_factory=lambda: _f(0.0))
    v_threshold: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_reset: Array = dataclasses.field(default_factory=lambda: _f(0.0))
    reset: str = Reset.VALUE.value
    firing: str = Firing.ABOVE.value
    v_init: Array = dataclasses.field(default_factory=lambda: _f(0.0))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class CubaLIF(_Neuron):
    r"""Current-based LIF: a synaptic current feeds the membrane (both forward Euler).

    .. math:: i \leftarrow i + \tfrac{dt}{\tau_{syn}}(w_{in} S - i),\qquad
              v \leftarrow v + \tfrac{dt}{\tau_{mem}}(v_{leak} - v + R\, i),\qquad
              z = [v > v_{th}]
    """

    kind = "CubaLIF"
    traits = frozenset({Neuron(), EmitsSpikes()})
    tau_syn: Array
    tau_mem: Array
    r: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_leak: Array = dataclasses.field(default_factory=lambda: _f(0.0))
    v_threshold: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_reset: Array = dataclasses.field(default_factory=lambda: _f(0.0))
    w_in: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    reset: str = Reset.VALUE.value
    firing: str = Firing.ABOVE.value


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LI(_Neuron):
    r"""Leaky integrator (no spikes; outputs v): :math:`v \leftarrow v + \tfrac{dt}{\tau}(v_{leak} - v + R I)`."""

    kind = "LI"
    traits = frozenset({Neuron()})
    tau: Array
    r: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_leak: Array = dataclasses.field(default_factory=lambda: _f(0.0))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class CubaLI(_Neuron):
    r"""Current-based leaky integrator (outputs v).

    .. math:: i \leftarrow i + \tfrac{dt}{\tau_{syn}}(w_{in} S - i),\qquad
              v \leftarrow v + \tfrac{dt}{\tau_{mem}}(v_{leak} - v + R\, i)
    """

    kind = "CubaLI"
    traits = frozenset({Neuron()})
    tau_syn: Array
    tau_mem: Array
    r: Array = dataclasses.field(default_factory=lambda: _f(1.0))
    v_leak: Array = dataclasses.field(default_factory=lambda: _f(0.0))
    w_in: Array = dataclasses.field(default_factory=lambda: _f(1.0))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class I(_Neuron):
    r"""Integrator (outputs v): :math:`v \leftarrow v + R I` (like IF, without dt)."""

    kind = "I"
    traits = frozenset({Neuron()})
    r: Array = dataclasses.field(default_factory=lambda: _f(1.0))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Threshold(_Neuron):
    r"""Stateless spike generator: :math:`z = [x > \theta]`."""

    kind = "Threshold"
    traits = frozenset({Neuron(), EmitsSpikes()})
    stateful = False
    threshold: Array


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Delay(_Neuron):
    r""":math:`y[t] = x[t - n]` with :math:`n = \mathrm{round}(delay / dt)` steps per element (zeros before)."""

    kind = "Delay"
    traits = frozenset({Routing()})
    delay: Array

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if np.any(self.delay < 0):
            yield "delay must be >= 0"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class RateMaxPool(_Pool):
    r"""Max-pooling of rates: the max over each window of the inputs accumulated since step 0.

    .. math:: S_t = \sum_{\tau \le t} x_\tau,\qquad y_t = \max_k S_t[k] - \max_k S_{t-1}[k]
              \quad (\max S_{-1} = 0)

    so :math:`\sum_t y_t = \max_k S_t[k]`: the output's count is the largest count in the window.
    Fed 0/1 spikes, every :math:`y_t` is 0 or 1 (a count grows by at most one per step); fed
    currents, it passes the growth of the largest accumulated current. Window fields as ``MaxPool``
    (padding never wins). ANN→SNN conversion puts it where the ANN max-pools ReLU outputs.
    """

    kind = "RateMaxPool"
    traits = frozenset({Routing()})
    level = Level.SNN
    stateful = True
