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

    def snap(self, x: np.ndarray) -> np.ndarray:
        """The nearest grid value of each element (ties to even), clipped to the range."""
        lo, hi = self.step * math.ceil(self.lo / self.step), self.step * math.floor(self.hi / self.step)
        return np.clip(np.round(x / self.step) * self.step, lo, hi)

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
    (16) exponents is the exact minimum over all mantissa/exponent choices; ties go to the larger
    exponent (fewer saturating mantissas for the same error). Zero weights stay 0 at every exponent (0 is
    on every grid), so only the non-zero ones are searched: sparse layers quantize in time ∝ their synapses.
    """
    target = np.asarray(target, np.float64)
    where = np.flatnonzero(target)
    values = target.reshape(-1)[where]
    best: tuple[np.ndarray, int, float] | None = None
    for e in exponents:
        m = grid.snap(values / 2.0**e)
        err = float(np.sum((m * 2.0**e - values) ** 2))
        if best is None or err <= best[2]:
            best = (m, e, err)
    assert best is not None
    mantissa = np.zeros(target.size, np.int64)
    mantissa[where] = best[0]
    return Mantissas(mantissa.reshape(target.shape), best[1], best[2])


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
