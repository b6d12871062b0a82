"""Boxes of neurons: per-axis index ranges of a layer's tensor, and slices of a layer in an axis order.

A layer of shape ``(C, H, W)`` is cut into slices ``[start, stop)`` of its neurons counted in an
axis ``order`` (``(0, 1, 2)``: channel-major C order; ``(1, 0)`` for a ``(T, D)`` layer: feature-major,
so one slice holds a few features of every token). A slice is not always a box, so it is described
exactly by :func:`slice_pieces` (disjoint boxes) and conservatively by :func:`slice_box` (their
bounding box). Ops map boxes of their output to boxes of their input (spikec.demand).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

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


def _pieces(shape: Sequence[int], a: int, b: int) -> list[Box]:
    """Disjoint boxes exactly covering the C-order flat range ``[a, b)``."""
    if a >= b:
        return []
    if len(shape) == 1:
        return [((a, b),)]
    inner = math.prod(shape[1:])
    i0, r0 = divmod(a, inner)
    i1, r1 = divmod(b, inner)
    if i0 == i1:
        return [((i0, i0 + 1), *p) for p in _pieces(shape[1:], r0, r1)]
    out: list[Box] = []
    if r0:
        out += [((i0, i0 + 1), *p) for p in _pieces(shape[1:], r0, inner)]
        i0 += 1
    if i1 > i0:
        out.append(((i0, i1), *full(shape[1:])))
    if r1:
        out += [((i1, i1 + 1), *p) for p in _pieces(shape[1:], 0, r1)]
    return out


def _unpermute(box: Box, order: Sequence[int]) -> Box:
    natural: list[tuple[int, int]] = [(0, 0)] * len(order)
    for position, axis in enumerate(order):
        natural[axis] = box[position]
    return tuple(natural)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a layer's neurons are numbered for slicing.

    The layer (``shape``) is viewed as ``view_shape`` — axis 0 split into blocks of ``block`` when
    ``block > 0`` — and neurons are counted in axis ``order`` of that view: neuron ``i`` is element
    ``i`` of ``np.transpose(x.reshape(view_shape), order).ravel()``. ``block = 0`` and
    ``order = (0, 1, ...)`` is plain C order (channel-major for (C, H, W)).
    """

    shape: tuple[int, ...]
    order: tuple[int, ...]
    block: int = 0

    @staticmethod
    def c_order(shape: Sequence[int]) -> Layout:
        return Layout(tuple(shape), tuple(range(len(shape))))

    @property
    def view_shape(self) -> tuple[int, ...]:
        if not self.block:
            return self.shape
        return (self.shape[0] // self.block, self.block, *self.shape[1:])

    def _natural(self, box: Box) -> Box:
        """A box of the view as a (bounding) box of the layer."""
        if not self.block:
            return box
        (b0, b1), (t0, t1), *rest = box
        return ((b0 * self.block + t0, (b1 - 1) * self.block + t1), *rest)

    def box(self, start: int, stop: int) -> Box | None:
        """Bounding box (layer axes) of neurons ``start..stop-1``."""
        view = self.view_shape
        box = flat_box([view[axis] for axis in self.order], start, stop)
        return None if box is None else self._natural(_unpermute(box, self.order))

    def pieces(self, start: int, stop: int) -> list[Box]:
        """Disjoint boxes (layer axes) exactly covering neurons ``start..stop-1``."""
        view = self.view_shape
        permuted = [view[axis] for axis in self.order]
        return [self._natural(_unpermute(p, self.order)) for p in _pieces(permuted, start, stop)]

    def to_json(self) -> dict[str, object]:
        return {"shape": list(self.shape), "view": list(self.view_shape), "order": list(self.order)}

    def candidates(self) -> list[Layout]:
        """C order, and for a (tokens, features) layer blocks of 2^k tokens counted feature-major
        (a slice holds some features of a block of tokens: fewer weight rows than whole tokens,
        fewer input axons than every token)."""
        out = [Layout.c_order(self.shape)]
        if len(self.shape) == 2:
            block = 1
            while block <= self.shape[0]:
                if self.shape[0] % block == 0:
                    out.append(Layout(self.shape, (0, 2, 1), block))
                block *= 2
        return out
