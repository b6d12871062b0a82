"""Loihi 2 fixed-point fields from float values: weight mantissas and exponents, biases, decays, thresholds.

Pure functions on numpy arrays, shared by ``quantize{target=loihi2}`` (targets/loihi2/quantize.py).
The arithmetic they target is the one ``spikec.targets.loihi2.kernels`` runs (docs/semantics.md):

* a weight is ``m · 2^e`` with a mantissa ``m`` on the grid of its sign mode and bit width (the values
  Lava's ``clip_weights`` + ``truncate_weights`` keep unchanged: multiples of ``2^k``,
  ``k = 8 − bits + [mixed]``, in mixed [−256, 255], excitatory [0, 255], inhibitory [−255, 0]) and one
  exponent ``e ∈ [−8, 7]`` per layer;
* a bias is ``bias_mant · 2^bias_exp`` with a 13-bit signed mantissa and ``bias_exp ∈ [0, 7]``;
* a decay is 12-bit, ``d = round(4096 · dt/τ)`` (the factor ``1 − dt/τ`` of forward Euler).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from spikec.targets.loihi2.dialect import DECAY_BITS, SignMode, weight_range

WEIGHT_EXPONENTS = range(-8, 8)  # Loihi's signed 4-bit weight exponent
BIAS_MANT_MAX = (1 << 12) - 1  # 13-bit signed mantissa
BIAS_EXP_MAX = 7


@dataclasses.dataclass(frozen=True)
class Grid:
    """The mantissas a synapse keeps unchanged: ``lo..hi`` in steps of ``step``."""

    lo: int
    hi: int
    step: int

    def snap(self, x: np.ndarray, scale: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
        """The nearest grid value of each element of ``x / scale`` (ties to even), clipped to the range; into
        ``out`` when given (a large layer's search then allocates nothing per exponent)."""
        out = np.divide(x, scale * self.step, out=out)  # scale and step are powers of 2: exact
        np.round(out, out=out)
        out *= self.step
        return np.clip(out, -self.most_negative, self.most_positive, out=out)

    @property
    def largest(self) -> int:
        """The largest magnitude on the grid."""
        return max(self.most_negative, self.most_positive)

    @property
    def most_positive(self) -> int:
        return self.step * math.floor(self.hi / self.step)

    @property
    def most_negative(self) -> int:
        """The magnitude of the most negative grid value (0 for excitatory)."""
        return -self.step * math.ceil(self.lo / self.step)

    def fits(self, weight: np.ndarray) -> float:
        """The largest factor c for which c·weight lies within the grid's range."""
        top, bottom = float(np.max(weight, initial=0.0)), -float(np.min(weight, initial=0.0))
        up = self.most_positive / top if top > 0 else np.inf
        return min(up, self.most_negative / bottom if bottom > 0 else np.inf)


def mantissa_grid(mode: SignMode, bits: int) -> Grid:
    """The grid of ``bits``-bit mantissas in sign ``mode`` (MIXED/EXCITATORY/INHIBITORY, not AUTO)."""
    lo, hi = weight_range(mode)
    return Grid(lo, hi, 1 << (8 - bits + int(mode == SignMode.MIXED)))


@dataclasses.dataclass(frozen=True)
class Mantissas:
    """A layer's weights as ``mantissa · 2^exponent`` ≈ ``target`` (the float weights in a_in units)."""

    mantissa: np.ndarray  # integers on the grid
    exponent: int
    squared_error: float  # Σ (mantissa · 2^exponent − target)²

    def value(self) -> np.ndarray:
        return self.mantissa * 2.0**self.exponent


def quantize_weights(target: np.ndarray, grid: Grid, exponents: range = WEIGHT_EXPONENTS) -> Mantissas:
    """The exponent (and mantissas) minimising Σ (m · 2^e − target)² over ``exponents``.

    For a fixed exponent each weight's best mantissa is its own nearest grid value, so searching the
    exponents is the exact minimum over all mantissa/exponent choices; ties go to the larger exponent (fewer
    saturating mantissas for the same error). The search tries few of the 16 exponents (``_best_exponent``):
    a classifier read from a pooled map has 10⁸ weights (ResNet-50: 1,000 × 2,048 · 7 · 7). Zero weights stay
    0 at every exponent (0 is on every grid), so a sparse layer searches only its non-zero ones.
    """
    flat = np.asarray(target, np.float64).reshape(-1)
    where = np.flatnonzero(flat) if np.count_nonzero(flat) < flat.size // 2 else None
    values = flat if where is None else flat[where]
    exponent, error = _best_exponent(values, grid, list(exponents))
    mantissa = grid.snap(values, 2.0**exponent).astype(np.int64)
    if where is not None:
        mantissa, sparse = np.zeros(flat.size, np.int64), mantissa
        mantissa[where] = sparse
    return Mantissas(mantissa.reshape(np.shape(target)), exponent, error)


def _best_exponent(values: np.ndarray, grid: Grid, exponents: list[int]) -> tuple[int, float]:
    """The exponent of ``exponents`` (ascending) with the least Σ (snap(v / 2^e) · 2^e − v)², and that error.

    Let e₀ be the smallest exponent at which no value clips. Above it, each value's nearest grid point can only
    be farther (the grid of e + 1 is every other point of e's, and the range holds every value), so those are
    tried only while the error stays equal (the tie rule). Below it, the clipped values alone cost
    Σ (|v| − edge · 2^e)², which grows as e falls: the search down stops once that reaches the best error.
    """
    top, bottom = float(np.max(values, initial=0.0)), -float(np.min(values, initial=0.0))
    buffer = np.empty_like(values)

    def error(e: int) -> float:
        residual = grid.snap(values, 2.0**e, out=buffer)
        residual *= 2.0**e
        residual -= values
        return float(np.dot(residual, residual))

    def clipped(e: int) -> float:
        hi, lo = grid.most_positive * 2.0**e, grid.most_negative * 2.0**e
        over, under = values[values > hi] - hi, values[values < -lo] + lo
        return float(np.dot(over, over) + np.dot(under, under))

    fits = [e for e in exponents if top <= grid.most_positive * 2.0**e and bottom <= grid.most_negative * 2.0**e]
    start = exponents.index(fits[0]) if fits else len(exponents) - 1
    best, least = exponents[start], error(exponents[start])
    for e in exponents[start + 1 :]:
        err = error(e)
        if err > least:
            break
        best, least = e, err
    for e in reversed(exponents[:start]):
        if clipped(e) >= least:
            break
        err = error(e)
        if err < least:
            best, least = e, err
    return best, least


def bias_fields(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(bias_mant, bias_exp)`` per element with ``bias_mant · 2^bias_exp`` nearest ``value``.

    The exponent is the smallest in 0..7 whose 13-bit mantissa holds the value (0 when it fits: an
    integer bias is then exact); a value beyond ``4095 · 2^7`` is the caller's error to raise.
    """
    value = np.asarray(value, np.float64)
    exp = np.zeros(value.shape, np.int64)
    big = np.abs(value) > BIAS_MANT_MAX
    exp[big] = np.ceil(np.log2(np.abs(value[big]) / BIAS_MANT_MAX)).astype(np.int64)
    exp = np.minimum(exp, BIAS_EXP_MAX)
    mant = np.clip(np.round(value / 2.0**exp), -BIAS_MANT_MAX - 1, BIAS_MANT_MAX)
    return mant.astype(np.int64), exp


def decay_field(dt_over_tau: np.ndarray, name: str) -> int:
    """``round(4096 · dt/τ)`` for a per-layer (single-valued) ``dt/τ`` in (0, 1]; ``name`` for errors."""
    values = np.unique(np.asarray(dt_over_tau, np.float64))
    if values.size != 1:
        raise ValueError(f"{name} varies across the layer ({values.min():g}..{values.max():g}); Loihi's is per layer")
    if not 0 < values[0] <= 1:
        raise ValueError(
            f"{name} = {values[0]:g} is outside (0, 1]: a decay factor 1 - {name} = {1 - values[0]:g} has no "
            "Loihi equivalent (its decays lie in [0, 1)); a negative tau or dt > tau cannot be quantized"
        )
    return int(np.clip(np.round(float(values[0]) * (1 << DECAY_BITS)), 0, (1 << DECAY_BITS) - 1))
