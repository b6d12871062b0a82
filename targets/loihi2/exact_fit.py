r"""Integer fields of one neuron stage of the exact path on Loihi (``targets/loihi2/exact.py``).

A stage reads a *current*: a linear function of the running sums of integer spike sources,

.. math:: I = \sum_k A_k\, s_k + b,\qquad s_k = \sum_{\tau \le t} y_{k,\tau}

(float, one row per neuron), where :math:`y_k` are source k's graded spikes (increments). On Loihi each
source reaches the stage through a synapse :math:`W_k = m_k 2^{e_k}` (8-bit mantissas on the sign mode's
grid) and a sigma neuron sums the increments, so it holds :math:`\sigma = \sum_k W_k s_k` exactly. With
:math:`r` integer units per float unit (one factor per neuron), :math:`W_k \approx r A_k` and the
constant :math:`c \approx r b` becomes the sigma-delta neuron's bias.

The exponents are **never negative**: Lava's Dense shifts each step's sum right with a floor, and the
floors of increments do not add up to the floor of their sum; with :math:`e_k \ge 0` every synapse is
exact integer arithmetic and the running sums telescope. The limits are those of Lava 0.10's
fixed-point models: 24-bit sigma and activation, a 16-bit sigma-delta bias (``PySigmaDeltaModelFixed``),
weight exponents up to 7.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikec.targets.loihi2.dialect import SignMode, sign_mode_of
from spikec.targets.loihi2.fixed import mantissa_grid, quantize_weights

STATE_MAX = (1 << 23) - 1  # Loihi's 24-bit sigma, activation and graded payload
BIAS_MAX = (1 << 15) - 1  # Lava's SigmaDelta bias: a 16-bit field
EXPONENTS = range(0, 8)  # non-negative weight exponents only (see the module docstring)
FLOOR_STEP = 8  # Lava's weight exponent reaches -8: one floor Dense divides by at most 2**8
MAX_SHIFT = 2 * FLOOR_STEP  # up to 2**16 units per level: two floor Dense in turn


@dataclasses.dataclass(frozen=True)
class Spikes:
    """A lowered node sending integer increments ``y``; the value it stands for is ``scale · Σ_t y + offset``.

    ``low``/``high`` bound the running sum ``Σ_t y`` per neuron; ``step_max`` bounds ``|y|`` in one step.
    """

    node: str
    scale: np.ndarray
    offset: np.ndarray
    low: np.ndarray
    high: np.ndarray
    step_max: float

    @property
    def size(self) -> int:
        return int(self.scale.size)

    @property
    def message_bits(self) -> int:
        return message_bits(self.step_max)


def message_bits(largest: float) -> int:
    """Bits of a signed graded payload up to ``|largest|`` (Lava's ``num_message_bits``, at most 24)."""
    return min(24, int(np.ceil(abs(largest))).bit_length() + 1)


@dataclasses.dataclass(frozen=True)
class Term:
    """One source of a current: ``weight @ Σ_t y`` (float, (neurons, source size))."""

    source: Spikes
    weight: np.ndarray


@dataclasses.dataclass(frozen=True)
class Current:
    """``Σ_k weight_k @ Σ_t y_k + bias``: a linear function of spike sources that no neuron holds yet."""

    terms: tuple[Term, ...]
    bias: np.ndarray

    @staticmethod
    def of(spikes: Spikes, rows: np.ndarray | None = None) -> Current:
        """The value a spike source stands for (only its neurons ``rows``, when given)."""
        rows = np.arange(spikes.size) if rows is None else rows
        weight = np.zeros((rows.size, spikes.size))
        weight[np.arange(rows.size), rows] = spikes.scale[rows]
        return Current((Term(spikes, weight),), spikes.offset[rows].copy())

    @staticmethod
    def constant(value: np.ndarray) -> Current:
        return Current((), np.asarray(value, np.float64).ravel())

    def mapped(self, matrix: np.ndarray) -> Current:
        """``matrix @ self``: the current after a linear node whose flat map is ``matrix``."""
        return Current(tuple(Term(t.source, _times(matrix, t.weight)) for t in self.terms), matrix @ self.bias)

    def select(self, rows: np.ndarray) -> Current:
        """The current of the neurons ``rows`` only (in that order, repeats allowed)."""
        return Current(tuple(Term(t.source, t.weight[rows]) for t in self.terms), self.bias[rows])

    @staticmethod
    def stack(currents: list[Current]) -> Current:
        """The currents one above the other (rows concatenated); a source missing from one gets zero rows there."""
        sources = {t.source.node: t.source for c in currents for t in c.terms}
        terms = []
        for node, source in sources.items():
            blocks = [next((t.weight for t in c.terms if t.source.node == node), np.zeros((c.bias.size, source.size)))
                      for c in currents]  # fmt: skip
            terms.append(Term(source, np.vstack(blocks)))
        return Current(tuple(terms), np.concatenate([c.bias for c in currents]))

    def minus(self, other: Current) -> Current:
        return self.plus(Current(tuple(Term(t.source, -t.weight) for t in other.terms), -other.bias))

    def plus(self, other: Current) -> Current:
        """The sum of two currents; a source reached along both gets the sum of its weights."""
        merged: dict[str, Term] = {t.source.node: t for t in self.terms}
        for t in other.terms:
            seen = merged.get(t.source.node)
            merged[t.source.node] = t if seen is None else Term(t.source, seen.weight + t.weight)
        return Current(tuple(merged.values()), self.bias + other.bias)


def _times(matrix: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``matrix @ weight``; a diagonal ``weight`` (a source's own neurons, ``Current.of``) scales columns instead."""
    n = weight.shape[0]
    square = weight.shape == (n, n) and np.count_nonzero(weight) <= n
    if square and np.array_equal(weight, np.diag(np.diagonal(weight))):
        return matrix * np.diagonal(weight)
    return matrix @ weight


def interval(weight: np.ndarray, source: Spikes) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``weight @ Σ_t y`` per row over the source's running-sum box."""
    pos, neg = np.maximum(weight, 0.0), np.minimum(weight, 0.0)
    return pos @ source.low + neg @ source.high, pos @ source.high + neg @ source.low


def bounds(current: Current) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the current's sources part ``Σ_k A_k Σ_t y_k`` (float), per neuron."""
    low, high = np.zeros(current.bias.shape), np.zeros(current.bias.shape)
    for term in current.terms:
        lo, hi = interval(term.weight, term.source)
        low, high = low + lo, high + hi
    return low, high


@dataclasses.dataclass(frozen=True)
class Synapses:
    """One stage's fitted synapses: per term ``mantissa · 2^exponent`` ≈ ``rows · weight``."""

    mantissas: tuple[np.ndarray, ...]
    exponents: tuple[int, ...]
    modes: tuple[SignMode, ...]
    sigma_low: np.ndarray  # bounds of σ = Σ_k W_k Σ_t y_k per neuron, from the sources' running-sum bounds
    sigma_high: np.ndarray
    max_rel_error: float  # max |stored − r·A| over the stage's largest |r·A|
    mean_rel_error: float  # mean over the non-zero weights, also over the largest |r·A|


def fit_synapses(current: Current, rows: np.ndarray, weight_bits: int) -> tuple[Synapses | None, str]:
    """Mantissas and exponents (0..7) for ``rows[:, None] · A_k``; ``(None, why)`` when a weight exceeds 2^7
    times the largest mantissa."""
    mantissas, exponents, modes = [], [], []
    low, high = np.zeros(rows.shape), np.zeros(rows.shape)
    errors = []
    largest = max((float(np.max(np.abs(t.weight * rows[:, None]), initial=0.0)) for t in current.terms), default=0.0)
    for term in current.terms:
        target = term.weight * rows[:, None]
        mode = sign_mode_of(target)
        grid = mantissa_grid(mode, weight_bits)
        if grid.fits(target) < 2.0 ** -max(EXPONENTS):
            return None, f"a weight ({float(np.max(np.abs(target))):.4g} units) exceeds {grid.largest}·2^7"
        q = quantize_weights(target, grid, EXPONENTS)
        stored = q.value()
        mantissas.append(q.mantissa)
        exponents.append(q.exponent)
        modes.append(mode)
        term_low, term_high = interval(stored, term.source)
        low, high = low + term_low, high + term_high
        errors.append(np.abs(stored - target)[target != 0])
    err = np.concatenate(errors) if errors else np.zeros(0)
    synapses = Synapses(
        tuple(mantissas), tuple(exponents), tuple(modes), low, high,
        float(np.max(err, initial=0.0)) / (largest or 1.0), float(np.mean(err)) / (largest or 1.0) if err.size else 0.0,
    )  # fmt: skip
    return synapses, ""


def _finest_needed(current: Current, rows: np.ndarray, weight_bits: int, cap: int) -> int:
    """The smallest k (0..cap) at which every term's largest weight ``2^k · rows · A`` fills the upper half of its
    mantissa range: beyond it the weights gain nothing (their exponent grows instead)."""
    needed = 0
    for term in current.terms:
        target = term.weight * rows[:, None]
        peak = float(np.max(np.abs(target), initial=0.0))
        if peak > 0:
            half = mantissa_grid(sign_mode_of(target), weight_bits).largest / 2
            needed = max(needed, int(np.ceil(np.log2(half / peak))))
    return min(max(needed, 0), cap)


@dataclasses.dataclass(frozen=True)
class QuantizerFields:
    """An ST-BIF as Loihi integers: ``2^shift`` units per level; the clip neurons' bias fields (``2n``: the lower
    bound's, then the upper bound's), which Lava scales by ``2^spike_exp``; the synapses."""

    shift: int
    spike_exp: int
    bias: np.ndarray
    top: int  # (hi − lo)·2^shift: the largest clipped sum
    synapses: Synapses

    @property
    def floors(self) -> list[int]:
        r"""The right shifts that divide by ``2^shift`` in turn (each at most 8, Lava's weight exponent):
        :math:`\lfloor\lfloor x/2^a\rfloor/2^b\rfloor = \lfloor x/2^{a+b}\rfloor`."""
        return [FLOOR_STEP, self.shift - FLOOR_STEP] if self.shift > FLOOR_STEP else [self.shift]


def fit_quantizer(
    current: Current, theta: np.ndarray, lo: int, hi: int, weight_bits: int
) -> tuple[QuantizerFields | None, str]:
    r"""The shift ``p ≤ 16`` (``2^p`` units per level) at which the ST-BIF's weights fill their mantissas, or the
    largest below it at which its integers fit (``theta`` per neuron).

    With :math:`2^p` units per level the accumulated input is :math:`\sigma + c`, :math:`c = \mathrm{round}(2^p b/θ)
    + 2^{p-1}` (the half level of ST-BIF's :math:`v_0 = θ/2`), and the level is
    :math:`\mathrm{clip}(\lfloor(\sigma + c)/2^p\rfloor, lo, hi)`. Two ReLU neurons give
    :math:`\mathrm{clip}(y, 0, top) = \mathrm{relu}(y) - \mathrm{relu}(y - top)` of :math:`y = \sigma + c - 2^p lo`
    with :math:`top = (hi - lo)2^p`, whose floor by :math:`2^p` is the level minus ``lo``. A bias beyond the
    field's 16 bits is stored as a multiple of :math:`2^k` (``spike_exp`` k ≤ p − 8: the constant keeps
    1/256 of a level).
    """
    why = ""
    for shift in range(_finest_needed(current, 1.0 / theta, weight_bits, MAX_SHIFT), -1, -1):
        rows = 2.0**shift / theta
        synapses, why = fit_synapses(current, rows, weight_bits)
        if synapses is None:
            continue
        c = np.round(current.bias * rows) + (2 ** (shift - 1) if shift else 0)
        top = (hi - lo) * 2**shift
        lower = c - lo * 2**shift
        spike_exp = next((k for k in range(max(shift - FLOOR_STEP, 0) + 1)
                          if np.max(np.abs(np.round(lower / 2**k))) + top / 2**k <= BIAS_MAX), None)  # fmt: skip
        if spike_exp is None:
            why = f"a clip bias ({int(np.max(np.abs(lower)) + top)}) exceeds the 16-bit sigma-delta bias (±{BIAS_MAX})"
            continue
        field = np.round(lower / 2**spike_exp)
        lower = field * 2**spike_exp
        peak = max(float(np.max(np.abs(synapses.sigma_low))), float(np.max(synapses.sigma_high + lower)))
        if max(peak, float(np.max(np.abs(synapses.sigma_high))), top) > STATE_MAX:
            why = f"the accumulated input reaches {peak:.4g}, beyond the 24-bit sigma (±{STATE_MAX})"
            continue
        bias = np.concatenate([field, field - top // 2**spike_exp]).astype(np.int64)
        return QuantizerFields(shift, spike_exp, bias, top, synapses), ""
    return None, why


@dataclasses.dataclass(frozen=True)
class GradedFields:
    """A sigma-delta neuron emitting the increments of ``f(σ + bias)``: ``rows`` units per float unit."""

    rows: float
    bias: np.ndarray
    synapses: Synapses


def fit_graded(current: Current, weight_bits: int) -> tuple[GradedFields | None, str]:
    """The scale r (units per float unit) at which the weights fill their mantissas (a power of two), or the largest
    below it at which the weights (exponent ≤ 7), the 16-bit bias and the 24-bit sigma and activation fit; the
    stored integers are checked, shrinking r until they do."""
    ones = np.ones(current.bias.shape)
    unit = _common_unit(current)
    for rows in [2.0**k / unit for k in EXPONENTS] if unit else []:  # whole weights and bias: an exact scale
        synapses, _ = fit_synapses(current, rows * ones, weight_bits)
        bias = np.round(current.bias * rows).astype(np.int64)
        if synapses is not None and synapses.max_rel_error == 0 and _fits(synapses, bias):
            return GradedFields(rows, bias, synapses), ""
    limits = [BIAS_MAX / float(np.max(np.abs(current.bias), initial=0.0) or 1e-300)]
    for term in current.terms:
        grid = mantissa_grid(sign_mode_of(term.weight), weight_bits)
        limits.append(grid.fits(term.weight) * 2.0 ** max(EXPONENTS))
    peak = float(np.max(np.abs(np.concatenate(bounds(current)))))  # of the float current: the state limit
    limits.append(STATE_MAX / ((peak + float(np.max(np.abs(current.bias), initial=0.0))) or 1e-300))
    rows = min(min(limits), 2.0 ** _finest_needed(current, ones, weight_bits, 64)) * 0.999
    why = "no scale fits"
    for _ in range(60):
        synapses, why = fit_synapses(current, rows * ones, weight_bits)
        bias = np.round(current.bias * rows).astype(np.int64)
        if synapses is not None:
            if _fits(synapses, bias):
                return GradedFields(rows, bias, synapses), ""
            why = "the stored integers overflow the 24-bit sigma or the 16-bit bias"
        rows *= 0.9
    return None, why


def _fits(synapses: Synapses, bias: np.ndarray) -> bool:
    """The bias within its 16 bits; sigma and activation within 24."""
    act = np.concatenate([synapses.sigma_low + bias, synapses.sigma_high + bias, synapses.sigma_high])
    return bool(np.max(np.abs(bias), initial=0) <= BIAS_MAX and float(np.max(np.abs(act))) <= STATE_MAX)


def _common_unit(current: Current) -> float | None:
    """The smallest |weight| when every weight and the bias are whole multiples of it (a difference or sum of one
    quantizer's levels, as in a max-pool's comparisons): at ``2^k`` units per it, the stage is exact."""
    weights = np.concatenate([np.abs(t.weight[t.weight != 0]) for t in current.terms] or [np.zeros(0)])
    if not weights.size:
        return None
    unit = float(np.min(weights))
    ratios = np.concatenate([weights, np.abs(current.bias)]) / unit
    return unit if np.all(np.abs(ratios - np.round(ratios)) <= 1e-9 * np.maximum(ratios, 1.0)) else None
