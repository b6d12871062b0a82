"""Sum/average pooling folded into the synapse after it: Loihi has no pooling process, and its
synapses (Conv, Dense) must go from neurons to neurons, so a linear pool between a spiking layer and
the next synapse becomes part of that synapse's weights.

For non-overlapping windows (stride = kernel k, no padding) and a factor f (1 for SumPool, 1/k² for
AvgPool), with x the unpooled input:

* a ``Conv`` (kernel K, stride s, padding p, dilation 1) after the pool equals one conv on x with
  kernel ``W'[o, i, a, b] = f·W[o, i, ⌊a/k⌋, ⌊b/k⌋]`` (size K·k), stride s·k and padding p·k;
* a ``Dense`` after the pool (and a Flatten) equals a Dense on the flattened x with each weight
  repeated over its k×k window (``f·W`` upsampled; rows and columns the pool drops get 0).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikec.ir import ann


@dataclasses.dataclass(frozen=True)
class Pooled:
    """A pool waiting to be folded: window k (per spatial axis), factor f, the unpooled (C, H, W) shape."""

    kernel: tuple[int, ...]
    factor: float
    source_shape: tuple[int, ...]


def pool_problem(pool: ann.SumPool | ann.AvgPool, shape: tuple[int, ...]) -> str | None:
    """Why ``pool`` over a (C, H, W) input cannot be folded, or None."""
    if len(shape) != 3 or len(pool.kernel_size) != 2:
        return f"pools a {shape} input; folding takes 2-d (C, H, W) pools"
    if tuple(pool.stride) != tuple(pool.kernel_size) or any(pool.padding):
        return "pools overlapping or padded windows; folding into the next synapse takes stride = kernel, no padding"
    return None


def pooled(pool: ann.SumPool | ann.AvgPool, shape: tuple[int, ...]) -> Pooled:
    kernel = tuple(int(k) for k in pool.kernel_size)
    factor = 1.0 / float(np.prod(kernel)) if isinstance(pool, ann.AvgPool) else 1.0
    return Pooled(kernel, factor, shape)


def fold_into_conv(conv: ann.Conv, pool: Pooled) -> ann.Conv:
    """The conv on the unpooled input equal to ``conv`` after ``pool`` (raises ValueError if none is)."""
    if any(d != 1 for d in conv.dilation):
        raise ValueError(f"a dilated conv (dilation {conv.dilation}) after a pool cannot absorb it")
    (kh, kw), (_, h, w) = pool.kernel, pool.source_shape
    if any(conv.padding) and (h % kh or w % kw):
        raise ValueError(f"a padded conv after a pool of an input ({h}, {w}) not divisible by the window {pool.kernel}")
    weight = np.repeat(np.repeat(np.asarray(conv.weight, np.float64), kh, axis=2), kw, axis=3) * pool.factor
    stride = (conv.stride[0] * kh, conv.stride[1] * kw)
    padding = (conv.padding[0] * kh, conv.padding[1] * kw)
    return ann.Conv(weight=weight, bias=conv.bias, stride=stride, padding=padding, groups=conv.groups,
                    origin=conv.origin)  # fmt: skip


def fold_into_dense(dense: ann.Dense, pool: Pooled) -> ann.Dense:
    """The Dense on the flattened unpooled input equal to ``dense`` after ``pool`` and a Flatten."""
    (kh, kw), (c, h, w) = pool.kernel, pool.source_shape
    out = dense.weight.shape[0]
    weight = np.asarray(dense.weight, np.float64).reshape(out, c, h // kh, w // kw)
    weight = np.repeat(np.repeat(weight, kh, axis=2), kw, axis=3) * pool.factor
    full = np.zeros((out, c, h, w))
    full[:, :, : weight.shape[2], : weight.shape[3]] = weight
    return ann.Dense(weight=full.reshape(out, -1), bias=dense.bias, origin=dense.origin)
