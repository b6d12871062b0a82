"""Max-pooling of binary spikes on Loihi: the OR over each window, a depthwise ``LoihiConv`` of ones + a LIF
that fires on any input (du = dv = 4095, vth = 0).

Lava's Conv pads both ends of an axis alike, so a pool of any pads, dilation and ceil mode becomes one
such conv by shifting its taps: with window span ``K = (k − 1)·d + 1``, begin padding ``b`` and the end
padding ``e`` a floor-mode walk needs for the pool's output length (``ceil_mode``'s partial windows are
windows over more end padding), the conv pads ``P = max(b, e)`` on both ends and its kernel is
``K + |e − b|`` long, ones at the taps ``off + j·d`` (``off = e − b`` when ``e ≥ b``, else 0). Its
windows then start at ``q·s − P + off = q·s − b``, exactly the pool's, and its output length is
``⌊(n + b + e − K)/s⌋ + 1``, the pool's. Padding never wins: a zero added to a count of spikes leaves
the OR unchanged. Exact for 0/1 spikes (tests/test_maxpool_pads.py runs it against the float pool).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikec.ir import ann, spatial
from spikec.ir.node import Node


@dataclasses.dataclass(frozen=True)
class OrConv:
    """The depthwise conv of an OR layer: weight (C, 1, kH, kW) of 0/1, stride and symmetric padding per axis."""

    weight: np.ndarray
    stride: tuple[int, ...]
    padding: tuple[int, ...]


def _window(pool: Node) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], int]:
    """kernel, stride, dilation, begin pads and ceil mode of a MaxPool or a max Pool."""
    if isinstance(pool, ann.MaxPool):
        return tuple(pool.kernel_size), tuple(pool.stride), (1,) * len(pool.kernel_size), tuple(pool.padding), 0
    assert isinstance(pool, spatial.Pool)
    nd = len(pool.kernel_size)
    return tuple(pool.kernel_size), tuple(pool.stride), tuple(pool.dilation), tuple(pool.pads[:nd]), pool.ceil_mode


def or_problem(pool: Node, shape: tuple[int, ...]) -> str | None:
    """Why ``pool`` over a (C, H, W) input has no OR layer, or None."""
    if isinstance(pool, spatial.Pool) and pool.mode != "max":
        return f"is a {pool.mode} Pool; only max-pools of spikes become OR layers"
    if len(shape) != 3 or len(pool.kernel_size) != 2:  # type: ignore[attr-defined]
        return f"max-pools a {shape} input; Loihi's OR layer is a 2-d conv over (C, H, W)"
    return None


def or_conv(pool: Node, shape: tuple[int, ...]) -> OrConv:
    """The OR layer's conv for ``pool`` (a MaxPool or a max Pool) over a (C, H, W) input (module docstring)."""
    kernel, stride, dilation, begin, ceil = _window(pool)
    as_pool = (
        pool
        if isinstance(pool, spatial.Pool)
        else spatial.Pool(
            mode="max", kernel_size=kernel, stride=stride, dilation=dilation, pads=(*begin, *begin), ceil_mode=ceil
        )
    )
    out = as_pool.output_spatial(shape[1:])
    taps, padding = [], []
    for n, k, s, d, b, o in zip(shape[1:], kernel, stride, dilation, begin, out, strict=True):
        span = (k - 1) * d + 1
        end = max((o - 1) * s + span - n - b, 0)  # the end padding a floor-mode walk needs
        offset = max(end - b, 0)
        axis = np.zeros(span + abs(end - b), np.int64)
        axis[offset : offset + span : d] = 1
        taps.append(axis)
        padding.append(max(b, end))
    weight = np.multiply.outer(taps[0], taps[1])[None, None]
    return OrConv(np.repeat(weight, shape[0], axis=0), stride, tuple(padding))
