"""The Loihi dialect: node kinds that mirror Lava 0.10's bit-accurate (``fixed_pt``) process models.

Every field is an integer exactly as Lava stores it (weight mantissas, exponents, 12-bit decays,
unscaled thresholds); the kernels in ``spikec.targets.loihi2.kernels`` reproduce the models' integer
arithmetic step for step. docs/semantics.md ("Loihi 2 fixed point") writes every equation and bit
width down. Layouts are SIR's: per-sample (C, H, W) feature maps and (O, I/groups, kH, kW)
correlation kernels; the netx reader and the Lava builder convert to Lava's (X, Y, C) and flipped
(O, kW, kH, I) kernels.

Synapses (``LoihiDense``, ``LoihiConv``) deliver at step t what they accumulated at step t - 1, as
Lava's do (its one-step dendritic buffer); neurons act in the step they receive.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.errors import ShapeError
from spikec.ir.ann import Conv
from spikec.ir.node import Array, Level, Node, Shape, broadcast_problem, elementwise_shape
from spikec.ir.traits import EmitsCounts, EmitsSpikes, Neuron, Synaptic

UV_BITS = 24  # u, v, sigma, activations: signed 24-bit on Loihi
DECAY_BITS = 12  # du, dv: 4096 = 1.0
VTH_SHIFT = 6  # vth enters as vth << 6
ACT_SHIFT = 6  # synaptic input enters u as a_in << 6


class SignMode(enum.IntEnum):
    """Lava's synapse sign modes (``lava.utils.weightutils.SignMode``); 0 lets Lava decide from the weights."""

    AUTO = 0
    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


def sign_mode_of(weight: np.ndarray) -> SignMode:
    """Lava's ``determine_sign_mode``: excitatory if all >= 0, inhibitory if all <= 0, else mixed."""
    if np.min(weight) >= 0:
        return SignMode.EXCITATORY
    if np.max(weight) <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


def weight_range(mode: SignMode) -> tuple[int, int]:
    """The stored weights Lava keeps unclipped: mixed [-256, 255], excitatory [0, 255], inhibitory [-255, 0]."""
    if mode == SignMode.MIXED:
        return -256, 255
    if mode == SignMode.INHIBITORY:
        return -255, 0
    return 0, 255


def _i(value: int) -> Array:
    return np.asarray(value, dtype=np.int64)


def _integer_problems(node: Node) -> Iterator[str]:
    for name in node.array_fields():
        value = getattr(node, name)
        if value is not None and value.size and not np.array_equal(value, np.round(value)):
            yield f"field '{name}' must hold integers (Loihi stores it in fixed point), got e.g. {value.ravel()[0]!r}"


def _range_problem(name: str, value: np.ndarray, lo: int, hi: int, what: str) -> str | None:
    if value.size and (np.min(value) < lo or np.max(value) > hi):
        return f"'{name}' must lie in [{lo}, {hi}] ({what}), got [{np.min(value)}, {np.max(value)}]"
    return None


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class _LoihiSynapse(Node):
    level = Level.FIXED
    stateful = True  # the one-step dendritic buffer
    traits = frozenset({Synaptic()})

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        yield from _integer_problems(self)
        bits = self.num_message_bits  # type: ignore[attr-defined]
        if not 0 <= bits <= 24:
            yield f"num_message_bits {bits} must be 0 (binary spikes) .. 24 (graded)"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiDense(_LoihiSynapse):
    r"""Lava ``Dense`` (``PyDenseModelBitAcc``): 8-bit weight mantissas, a shared exponent, a one-step buffer.

    Once: :math:`W \leftarrow \mathrm{trunc}_b(\mathrm{clip}(W))`, clipping to the sign mode's range
    (mixed [-256, 255], excitatory [0, 255], inhibitory [-255, 0]) and clearing the
    :math:`8 - b + [\text{mixed}]` low bits of the magnitude's two's complement
    (``(w >> k) << k``, on :math:`-w` for inhibitory). Each step:

    .. math:: y_t = a_{t-1},\quad a_t = \mathrm{shift}(W s_t, e),\qquad
              \mathrm{shift}(x, e) = x \cdot 2^{e}\ (e > 0),\ \lfloor x / 2^{-e} \rfloor\ (e \le 0)

    with :math:`s_t = [x_t \ne 0]` for binary spikes (``num_message_bits = 0``), else the graded value.
    ``buffered=0`` drops the buffer (:math:`y_t = a_t`) for a synapse whose output returns on a
    recurrent edge: the edge already delays by one step, so the loop has Lava's one-step latency
    (netx ``dense_rec``). ``delay`` (Lava ``DelayDense``, 0..62 per synapse, broadcast to the weight)
    holds synapse (i, j)'s contribution back d more steps: it arrives at :math:`t + 1 + d_{ij}`.
    """

    kind = "LoihiDense"
    weight: Array  # (out, in) integer mantissas, as given to Lava's Dense(weights=...)
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: int = SignMode.AUTO.value
    num_message_bits: int = 0
    buffered: int = 1
    delay: Array | None = None

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if self.weight.ndim != 2 or shape != (self.weight.shape[1],):
            raise ShapeError(f"LoihiDense weight {self.weight.shape} takes ({self.weight.shape[-1]},), got {shape}")
        return (self.weight.shape[0],)

    @property
    def effective_sign_mode(self) -> SignMode:
        return SignMode(self.sign_mode) if self.sign_mode else sign_mode_of(np.asarray(self.weight))

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.sign_mode not in {m.value for m in SignMode}:
            yield f"sign_mode {self.sign_mode} must be one of {[f'{m.value} ({m.name})' for m in SignMode]}"
            return
        if not 1 <= self.num_weight_bits <= 8:
            yield f"num_weight_bits {self.num_weight_bits} must be 1..8"
        if self.buffered not in (0, 1):
            yield "buffered must be 1 (Lava's one-step buffer) or 0 (a synapse on a recurrent edge)"
        if self.delay is not None:
            problem = broadcast_problem(self, "delay", tuple(self.weight.shape))
            if problem:
                yield problem.replace("input shape", "weight shape")
            elif (problem := _range_problem("delay", self.delay, 0, 62, "Loihi 2's 6-bit synaptic delays")) is not None:
                yield problem
            if not self.buffered:
                yield "a synaptic delay needs the buffer (buffered=1)"
        if not -8 <= self.weight_exp <= 7:
            yield f"weight_exp {self.weight_exp} must be -8..7 (Loihi's signed 4-bit weight exponent)"
        mode = self.effective_sign_mode
        lo, hi = weight_range(mode)
        problem = _range_problem("weight", np.asarray(self.weight), lo, hi, f"{mode.name.lower()} 8-bit mantissas")
        if problem:
            yield problem + "; rescale the layer into the mantissa range and move the factor into weight_exp"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiConv(_LoihiSynapse):
    r"""Lava ``Conv`` (``PyConvModelFixed``): integer correlation, 24-bit wrap-around, a one-step buffer.

    .. math:: y_t = a_{t-1},\quad a_t = \mathrm{wrap}_{24}(W \star s_t),\qquad
              \mathrm{wrap}_{24}(x) = ((x + 2^{23}) \bmod 2^{24}) - 2^{23}

    Lava's fixed-point Conv model applies neither a weight exponent nor weight-bit truncation, so
    this kind has neither. Fields are SIR's (weight (O, I/groups, kH, kW), stride etc. as (H, W)); Lava's
    process takes ``weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)`` and the (X, Y) reversals.

    ``delay`` d > 0 (0..62, every synapse alike) holds the output back d more steps, :math:`y_t = a_{t-1-d}`.
    ``weight_exp`` e ≠ 0 (-8..7) shifts the sums, :math:`a_t = \mathrm{shift}(W \star s_t, e)` (``x·2^e``, or
    ``⌊x / 2^-e⌋`` for e < 0, as ``LoihiDense``): a graded input of wide range read with full-width weights (a
    shared part's relay, targets/loihi2/shared_relay.py). Lava's Conv has neither, so such a conv is *stored
    synapse by synapse*: Lava's ``Sparse`` (``DelaySparse`` with a delay) over the conv's connectivity
    (``lava_build.conv_matrix``), which sums without wrapping and applies its weight processing: the weights
    must pass it unchanged (``dense_weights`` at 8 bits: mixed even in [-256, 254], or all of one sign). A
    delayed one reads binary spikes only (``DelaySparse``'s bool input port) and keeps e = 0.
    """

    kind = "LoihiConv"
    weight: Array
    stride: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    dilation: tuple[int, ...] = (1, 1)
    groups: int = 1
    num_message_bits: int = 0
    delay: int = 0
    weight_exp: int = 0

    @property
    def per_synapse(self) -> bool:
        """Stored synapse by synapse (Lava's Sparse/DelaySparse over its connectivity), not as a shared kernel."""
        return bool(self.delay or self.weight_exp)

    def _as_conv(self) -> Conv:
        return Conv(
            weight=np.asarray(self.weight, np.float64),
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return self._as_conv().infer_shape(inputs)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.weight.ndim != 4:
            yield f"weight must be (O, I/groups, kH, kW) for a 2-d convolution, got {self.weight.shape}"
            return
        yield from self._as_conv().problems()
        problem = _range_problem("weight", np.asarray(self.weight), -256, 255, "Loihi synaptic weights")
        if problem:
            yield problem
        if not 0 <= self.delay <= 62:
            yield f"delay {self.delay} must be 0..62 (Loihi 2's 6-bit synaptic delays)"
        elif not -8 <= self.weight_exp <= 7:
            yield f"weight_exp {self.weight_exp} must be -8..7 (Loihi's weight exponent)"
        elif self.per_synapse:
            yield from self._sparse_problems()

    def _sparse_problems(self) -> Iterator[str]:
        if self.delay and self.num_message_bits:
            yield "a delayed conv (Lava's DelaySparse) takes binary spikes only (num_message_bits 0)"
        if self.delay and self.weight_exp:
            yield "a delayed conv keeps weight_exp 0 (put the exponent on an undelayed synapse)"
        w = np.asarray(self.weight, np.int64)
        mode = sign_mode_of(w)
        kept = np.clip(w, *weight_range(mode)) >> int(mode == SignMode.MIXED) << int(mode == SignMode.MIXED)
        if mode == SignMode.INHIBITORY:
            kept = -np.clip(-w, 0, 255)
        if not np.array_equal(kept, w):
            yield (
                "a conv stored synapse by synapse (delay or weight_exp: Lava's Sparse) must have weights that "
                "pass Lava's weight processing unchanged: "
                "mixed signs even in [-256, 254], or one sign in [-255, 255]"
            )


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class _LoihiNeuron(Node):
    level = Level.FIXED
    stateful = True
    traits = frozenset({Neuron(), EmitsCounts()})  # graded spikes: sigma-delta messages are integers

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return elementwise_shape(self, inputs)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        yield from _integer_problems(self)


class InputMode(enum.StrEnum):
    """Where a LoihiLIF's incoming value enters: ``current`` (a_in, into u) or ``bias`` (replaces bias_mant)."""

    CURRENT = "current"
    BIAS = "bias"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiLIF(_LoihiNeuron):
    r"""Lava ``LIF`` / ``LIFReset`` (``PyLifModelBitAcc``): 24-bit u and v, 12-bit decays, reset to zero.

    With :math:`\mathrm{rs}(x, k) = \mathrm{sign}(x)\lfloor |x| / 2^k \rfloor` (a right shift of the magnitude):

    .. math:: u \leftarrow \mathrm{wrap}(\mathrm{rs}(u\,(4096 - du - 1), 12) + 2^{6} a_{in}),\qquad
              v \leftarrow \mathrm{clip}(\mathrm{rs}(v\,(4096 - dv), 12) + u + b,\ \pm(2^{23} - 1)),

    :math:`b = \mathrm{bias\_mant} \cdot 2^{\mathrm{bias\_exp}}` (floor shift for a negative exponent),
    spike :math:`z = [v > \mathrm{vth} \cdot 2^{6}]`, then :math:`v \leftarrow 0` where z. ``wrap`` maps
    :math:`u > 2^{23}` to :math:`u - 2^{24}` and :math:`u \le -2^{23}` to :math:`u + 2^{24}`.
    ``reset_interval`` > 0 zeroes u and v before the dynamics of every step whose 1-based index t has
    :math:`t \bmod \mathrm{interval} = \mathrm{offset} \bmod \mathrm{interval}` (``LIFReset``).
    ``input_mode="bias"`` takes the incoming value as bias_mant instead of a_in (netx input layers).
    """

    kind = "LoihiLIF"
    traits = frozenset({Neuron(), EmitsSpikes()})
    du: int = 0
    dv: int = 0
    vth: Array = dataclasses.field(default_factory=lambda: _i(10))
    bias_mant: Array = dataclasses.field(default_factory=lambda: _i(0))
    bias_exp: Array = dataclasses.field(default_factory=lambda: _i(0))
    reset_interval: int = 0
    reset_offset: int = 0
    input_mode: str = InputMode.CURRENT.value

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        # du = -1 (netx's iDecay = 0) means no current decay: Lava adds 1 to du before decaying.
        for name, lo in (("du", -1), ("dv", 0)):
            if not lo <= getattr(self, name) < 1 << DECAY_BITS:
                yield f"'{name}' {getattr(self, name)} must be a 12-bit decay, {lo}..4095"
        for name, lo, hi in (("vth", 0, 1 << 17), ("bias_mant", -(1 << 12), (1 << 12) - 1), ("bias_exp", -7, 7)):
            problem = _range_problem(name, np.asarray(getattr(self, name)), lo, hi, "its Loihi register width")
            if problem:
                yield problem
        if self.reset_interval < 0:
            yield "reset_interval must be >= 0 (0: never)"
        try:
            InputMode(self.input_mode)
        except ValueError:
            yield f"input_mode {self.input_mode!r} must be one of {[m.value for m in InputMode]}"


class ActMode(enum.StrEnum):
    """Sigma-delta activation: ``relu`` or ``unit`` (identity), Lava's ``ActivationMode``."""

    RELU = "relu"
    UNIT = "unit"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class _Delta(_LoihiNeuron):
    vth: Array = dataclasses.field(default_factory=lambda: _i(0))
    spike_exp: int = 0
    state_exp: int = 0
    cum_error: int = 0

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        for name in ("spike_exp", "state_exp"):
            if not 0 <= getattr(self, name) <= 7:
                yield f"'{name}' {getattr(self, name)} must be a 3-bit exponent, 0..7"
        if self.cum_error not in (0, 1):
            yield "cum_error must be 0 or 1"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiDelta(_Delta):
    r"""Lava ``Delta`` (``PyDeltaModelFixed``): sends the change of its input once it reaches vth.

    With :math:`e = \mathrm{spike\_exp} + \mathrm{state\_exp}` and :math:`\theta = \mathrm{vth} \cdot 2^{e}`:

    .. math:: x = a_{in} \cdot 2^{e},\quad d = x - x_{prev} + r,\quad s = d\,[|d| \ge \theta],\quad
              r \leftarrow d - s,\quad z = \lfloor s / 2^{\mathrm{state\_exp}} \rfloor

    (``cum_error``: an error accumulator :math:`\epsilon \mathrel{+}= d` decides instead, cleared where it fires).
    """

    kind = "LoihiDelta"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiSigmaDelta(_Delta):
    r"""Lava ``SigmaDelta`` (``PySigmaDeltaModelFixed``): accumulate (sigma), activate, send changes (delta).

    .. math:: \sigma \mathrel{+}= a_{in},\quad x = f(\sigma + \mathrm{bias} \cdot 2^{e}),\quad
              d = x - x_{prev} + r,\quad s = d\,[|d| \ge \mathrm{vth} \cdot 2^{e}],\quad r \leftarrow d - s,\quad
              z = \lfloor s / 2^{\mathrm{state\_exp}} \rfloor

    with :math:`e = \mathrm{spike\_exp} + \mathrm{state\_exp}` and f ReLU or identity (``act_mode``).
    """

    kind = "LoihiSigmaDelta"
    bias: Array = dataclasses.field(default_factory=lambda: _i(0))
    act_mode: str = ActMode.RELU.value

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        try:
            ActMode(self.act_mode)
        except ValueError:
            yield f"act_mode {self.act_mode!r} must be one of {[m.value for m in ActMode]}"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiSigma(_LoihiNeuron):
    r"""Lava ``Sigma`` (``PySigmaModelFixed``): :math:`\sigma \mathrel{+}= a_{in}`, outputs :math:`\sigma` (graded)."""

    kind = "LoihiSigma"


LOIHI_KINDS: tuple[type[Node], ...] = (LoihiDense, LoihiConv, LoihiLIF, LoihiDelta, LoihiSigmaDelta, LoihiSigma)

# Loading the dialect brings the kinds' interpreter kernels and their core demand with it, and the relay kinds
# fan-in splitting builds (relay.py: LoihiPartialDense, LoihiGradedVec).
from spikec.targets.loihi2 import demand, kernels, relay, scans  # noqa: E402, F401
