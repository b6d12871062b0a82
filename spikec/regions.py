"""Boxes of neurons: per-axis index ranges ``[lo, hi)`` of a layer's tensor.

The partitioner cuts every neuron layer into boxes (tiles): a ``(C, H, W)`` layer into blocks of
channels × rows × columns, a ``(tokens, features)`` layer into blocks of tokens × features. Synapse
ops map a box of their output to the box of their input that feeds it (spikec.demand), so the
input neurons a tile reads, and the weights it needs, follow from its box.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np

Box = tuple[tuple[int, int], ...]  # per axis [lo, hi)


def full(shape: Sequence[int]) -> Box:
    return tuple((0, n) for n in shape)


def volume(box: Box | None) -> int:
    return 0 if box is None else math.prod(max(hi - lo, 0) for lo, hi in box)


def intersect(a: Box, b: Box) -> Box | None:
    out = tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b, strict=True))
    return None if any(lo >= hi for lo, hi in out) else out


def _unravel(index: int, shape: Sequence[int]) -> list[int]:
    out = []
    for n in reversed(shape):
        index, r = divmod(index, n)
        out.append(r)
    return out[::-1]


def flat_box(shape: Sequence[int], lo: int, hi: int) -> Box | None:
    """Bounding box of the C-order flat range ``[lo, hi)`` of ``shape``."""
    if hi <= lo:
        return None
    first, last = _unravel(lo, shape), _unravel(hi - 1, shape)
    box, same = [], True
    for axis, n in enumerate(shape):
        box.append((first[axis], last[axis] + 1) if same else (0, n))
        same = same and first[axis] == last[axis]
    return tuple(box)


def box_flat_bounds(shape: Sequence[int], box: Box) -> tuple[int, int]:
    """The C-order flat range ``[lo, hi)`` spanning ``box``."""
    lo = hi = 0
    for (a, b), n in zip(box, shape, strict=True):
        lo, hi = lo * n + a, hi * n + (b - 1)
    return lo, hi + 1


def tile_count(shape: Sequence[int], tile: Sequence[int]) -> int:
    """How many tiles of ``tile`` cut ``shape`` (edge tiles clipped): ``prod ⌈n / t⌉``."""
    return math.prod(-(-n // t) for n, t in zip(shape, tile, strict=True))


def tiles(shape: Sequence[int], tile: Sequence[int]) -> Iterator[Box]:
    """The boxes of the ``tile`` grid over ``shape`` in C order of the grid (edge tiles clipped)."""
    axes = [[(lo, min(lo + t, n)) for lo in range(0, n, t)] for n, t in zip(shape, tile, strict=True)]
    return (tuple(box) for box in itertools.product(*axes))


def even_sizes(n: int) -> list[int]:
    """Tile sizes cutting an axis of ``n`` into k nearly equal parts, one per distinct k (largest first).

    ``⌈n / k⌉`` for k = 1..n takes O(√n) distinct values; each is visited once.
    """
    sizes: list[int] = []
    k = 1
    while k <= n:
        t = -(-n // k)
        sizes.append(t)
        k = -(-n // (t - 1)) if t > 1 else n + 1
    return sizes


class BoxUnion:
    """The union U of some boxes of one tensor, asked how many cells of query boxes lie in it.

    One box: ``|q ∩ U| = prod max(0, min(hi) - max(lo))``. Several: a 0/1 mask over their bounding
    box and its summed-area table S, so ``|q ∩ U| = Σ_corners (-1)^(#lo corners) S[corner]``.
    """

    def __init__(self, boxes: Sequence[Box]) -> None:
        self.low = np.min([[lo for lo, _ in b] for b in boxes], axis=0).astype(np.int64)
        self.high = np.max([[hi for _, hi in b] for b in boxes], axis=0).astype(np.int64)
        self.table: np.ndarray | None = None
        if len(boxes) > 1:
            extent = self.high - self.low
            table = np.zeros(tuple(int(e) + 1 for e in extent), dtype=np.int64)
            inner = table[tuple(slice(1, None) for _ in extent)]
            for box in boxes:
                inner[tuple(slice(lo - int(o), hi - int(o)) for (lo, hi), o in zip(box, self.low, strict=True))] = 1
            for axis in range(len(extent)):
                np.cumsum(table, axis=axis, out=table)
            self.table = table

    def overlaps(self, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
        """Per query box (rows of ``lows``/``highs``, per axis [lo, hi)): its cells inside the union."""
        if self.table is None:
            return np.prod(np.clip(np.minimum(highs, self.high) - np.maximum(lows, self.low), 0, None), axis=1)
        extent = self.high - self.low
        a, b = np.clip(lows - self.low, 0, extent), np.clip(highs - self.low, 0, extent)
        total = np.zeros(len(lows), dtype=np.int64)
        for corner in itertools.product((0, 1), repeat=len(extent)):
            index = tuple(a[:, d] if low else b[:, d] for d, low in enumerate(corner))
            total += (-1) ** sum(corner) * self.table[index]
        return total
