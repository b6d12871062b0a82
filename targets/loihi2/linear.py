r"""Linear maps between spike sources and the neurons that read them, and how two of them compose.

On Loihi a value travels only as spikes through a synapse into a neuron, so every linear node between two
neuron layers (Conv, Dense, pools, Scale, Add, Concat, channel permutations, flattening, global means) must
become part of the synapses of the neuron after it. A map from one source is either

* ``ConvMap``: a correlation on a (C, H, W) source, ``y[o, p] = Σ_{c,k} W[o, c, k]·x[c, p·s − pad + k·d]``
  (zero padding, ``groups`` as in ``ann.Conv``); ``flat``: its output is read flattened (row-major), or
* ``MatrixMap``: ``y = W x`` on a flat source.

Composition ``B ∘ A`` (A first) of two correlations is one correlation when it is exact:

* A pointwise (1×1, stride 1, no padding): ``W[o, c] = Σ_m B[o, m]·A[m, c]`` with B's geometry;
* B pointwise: the same sum with A's geometry;
* otherwise (no dilation): kernel ``(k_B − 1)·s_A + k_A``, stride ``s_A·s_B``, padding ``p_A + p_B·s_A``,
  ``W[o, c, b·s_A + a] += Σ_m B[o, m, b]·A[m, c, a]`` — exact when B does not pad (its windows stay inside
  A's output), or when A tiles its input (kernel = stride, no padding, sizes divisible), so that B's zero
  padding is the padding of A's input.

Biases do not enter the maps: ``targets/loihi2/affine.py`` carries them as tensors.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

Pair = tuple[int, int]


class NotOneSynapse(ValueError):
    """A chain of linear nodes that no single Loihi synapse computes exactly (the message says why)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ConvMap:
    """A correlation on a (C, H, W) source; weight (O, C/groups, kh, kw)."""

    weight: np.ndarray
    in_shape: tuple[int, int, int]
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    flat: bool = False

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        size = [
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip((h, w), (kh, kw), self.stride, self.padding, self.dilation, strict=True)
        ]
        return (self.weight.shape[0], size[0], size[1])

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    @property
    def pointwise(self) -> bool:
        return self.weight.shape[2:] == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def expanded(self) -> np.ndarray:
        """The weight with groups expanded to one group: (O, C, kh, kw), zeros between the groups."""
        if self.groups == 1:
            return np.asarray(self.weight, np.float64)
        o, per_in = self.weight.shape[:2]
        per_out = o // self.groups
        full = np.zeros((o, per_in * self.groups, *self.weight.shape[2:]))
        for g in range(self.groups):
            rows = slice(g * per_out, (g + 1) * per_out)
            full[rows, g * per_in : (g + 1) * per_in] = self.weight[rows]
        return full

    def replace(self, **changes: object) -> ConvMap:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True, eq=False)
class MatrixMap:
    """``y = W x`` on a flat source; weight (O, N)."""

    weight: np.ndarray

    @property
    def out_size(self) -> int:
        return int(self.weight.shape[0])


Map = ConvMap | MatrixMap


def identity(shape: tuple[int, ...]) -> Map:
    """The identity on a source of ``shape``: a depthwise 1×1 correlation of ones, or the identity matrix."""
    if len(shape) == 3:
        return ConvMap(np.ones((shape[0], 1, 1, 1)), (shape[0], shape[1], shape[2]), groups=shape[0])
    return MatrixMap(np.eye(math.prod(shape)))


def regroup(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """The most groups an expanded (O, C, kh, kw) weight splits into (zeros between the blocks), and its
    grouped form (O, C/groups, kh, kw): a depthwise map stays depthwise after composition."""
    o, c = weight.shape[:2]
    nonzero = np.any(weight != 0, axis=(2, 3))
    for g in sorted((d for d in range(2, math.gcd(o, c) + 1) if o % d == 0 and c % d == 0), reverse=True):
        per_out, per_in = o // g, c // g
        block = np.arange(o)[:, None] // per_out != np.arange(c)[None, :] // per_in
        if not np.any(nonzero & block):
            rows = np.arange(o)
            cols = (rows // per_out)[:, None] * per_in + np.arange(per_in)[None, :]
            return weight[rows[:, None], cols], g
    return weight, 1


def compose(outer: ConvMap, inner: ConvMap) -> ConvMap:
    """``outer ∘ inner`` (inner applied first) as one correlation; raises NotOneSynapse when none is exact."""
    if inner.flat:
        raise NotOneSynapse("a flattened value cannot be convolved")
    if inner.out_shape != outer.in_shape:
        raise NotOneSynapse(f"composes a map to {inner.out_shape} with one from {outer.in_shape}")
    if is_channelwise(inner) and outer.pointwise:  # a pool or depthwise conv, then a 1×1 (a classifier on a pool)
        weight = outer.expanded()[:, :, 0, 0][:, :, None, None] * np.asarray(inner.weight, np.float64)[None, :, 0]
        return _regrouped(inner.replace(weight=weight, groups=1), outer.flat)
    b, a = outer.expanded(), inner.expanded()
    if inner.pointwise and inner.dilation == (1, 1):
        weight = np.einsum("om...,mc->oc...", b, a[:, :, 0, 0])
        result = outer.replace(weight=weight, in_shape=inner.in_shape, groups=1)
    elif outer.pointwise:
        weight = np.einsum("om,mc...->oc...", b[:, :, 0, 0], a)
        result = inner.replace(weight=weight, groups=1)
    else:
        result = _general(outer, inner, b, a)
    if result.out_shape != outer.out_shape:  # pragma: no cover - the rules above keep the size
        raise NotOneSynapse(f"composition changes the output {outer.out_shape} to {result.out_shape}")
    return _regrouped(result, outer.flat)


def _regrouped(m: ConvMap, flat: bool) -> ConvMap:
    weight, groups = regroup(m.weight)
    return m.replace(weight=weight, groups=groups, flat=flat)


def _general(outer: ConvMap, inner: ConvMap, b: np.ndarray, a: np.ndarray) -> ConvMap:
    if outer.dilation != (1, 1) or inner.dilation != (1, 1):
        raise NotOneSynapse("two dilated correlations in a row (without a neuron between) are not one synapse")
    ka, sa, pa = inner.weight.shape[2:], inner.stride, inner.padding
    if any(outer.padding):
        _, h, w = inner.in_shape
        tiles = tuple(ka) == tuple(sa) and not any(pa) and h % sa[0] == 0 and w % sa[1] == 0
        if not tiles:
            raise NotOneSynapse(
                f"a padded correlation (padding {outer.padding}) after another one (kernel {tuple(ka)}, stride "
                f"{sa}, padding {pa}) without a neuron between: its zero padding is not the first one's"
            )
    kb = b.shape[2:]
    kernel = ((kb[0] - 1) * sa[0] + ka[0], (kb[1] - 1) * sa[1] + ka[1])
    weight = np.zeros((b.shape[0], a.shape[1], *kernel))
    for i in range(kb[0]):
        for j in range(kb[1]):
            part = np.einsum("om,mc...->oc...", b[:, :, i, j], a)
            weight[:, :, i * sa[0] : i * sa[0] + ka[0], j * sa[1] : j * sa[1] + ka[1]] += part
    stride = (sa[0] * outer.stride[0], sa[1] * outer.stride[1])
    padding = (pa[0] + outer.padding[0] * sa[0], pa[1] + outer.padding[1] * sa[1])
    return ConvMap(weight, inner.in_shape, stride, padding, (1, 1), 1)


def channel_slice(op: ConvMap, start: int, stop: int) -> ConvMap:
    """``op`` restricted to input channels [start, stop) of its source (a term that covers only those).

    A depthwise op (one input channel per output channel) keeps its output channels [start, stop) too."""
    c, h, w = op.in_shape
    if op.groups == c == op.weight.shape[0] and op.weight.shape[1] == 1:
        return op.replace(weight=op.weight[start:stop], in_shape=(stop - start, h, w), groups=stop - start)
    return op.replace(weight=op.expanded()[:, start:stop], in_shape=(stop - start, h, w), groups=1)


def is_channelwise(op: ConvMap) -> bool:
    """One input channel per output channel, channel o from channel o (pools, per-channel scales, depthwise)."""
    return op.groups == op.in_shape[0] == op.weight.shape[0] and op.weight.shape[1] == 1


def dense_as_conv(weight: np.ndarray, shape: tuple[int, int, int]) -> ConvMap:
    """A Dense reading a flattened (C, H, W) value as a correlation with an (H, W) kernel: output (O, 1, 1)."""
    return ConvMap(weight.reshape(weight.shape[0], *shape), shape, flat=True)


def as_matrix(m: ConvMap) -> np.ndarray:
    """The correlation as a matrix from the flattened source to the flattened output (O·H'·W', C·H·W)."""
    c, h, w = m.in_shape
    o, ho, wo = m.out_shape
    full = m.expanded()
    kh, kw = full.shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = m.stride, m.padding, m.dilation
    if (kh, kw, ph, pw) == (h, w, 0, 0):  # a window over the whole map (a classifier on a global pool)
        return full.reshape(o, c * h * w)
    if (ho, wo) == (1, 1) and (sh, sw) == (1, 1) and (dh, dw) == (1, 1):  # a window over the (padded) map: crop it
        padded = np.zeros((o, c, max(kh, h + ph), max(kw, w + pw)))
        padded[:, :, :kh, :kw] = full
        return padded[:, :, ph : ph + h, pw : pw + w].reshape(o, c * h * w)
    matrix = np.zeros((o * ho * wo, c * h * w))
    y = np.arange(ho)[:, None] * sh - ph + np.arange(kh)[None, :] * dh  # (ho, kh)
    x = np.arange(wo)[:, None] * sw - pw + np.arange(kw)[None, :] * dw  # (wo, kw)
    for i in range(kh):
        for j in range(kw):
            rows_y = np.nonzero((y[:, i] >= 0) & (y[:, i] < h))[0]
            rows_x = np.nonzero((x[:, j] >= 0) & (x[:, j] < w))[0]
            out_pos = (rows_y[:, None] * wo + rows_x[None, :]).ravel()
            in_pos = (y[rows_y, i][:, None] * w + x[rows_x, j][None, :]).ravel()
            # vectorised scatter: output rows (oc, pos) read input (cc, pos'); weight full[oc, cc, i, j]
            rows = np.arange(o)[:, None] * ho * wo + out_pos[None, :]  # (o, P)
            cols = np.arange(c)[:, None] * h * w + in_pos[None, :]  # (c, P)
            matrix[rows[:, None, :], cols[None, :, :]] += full[:, :, i, j][:, :, None]
    return matrix
