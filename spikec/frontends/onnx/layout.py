"""Where the batch axis sits in an ONNX tensor whose SIR value holds one sample.

SIR shapes are per sample; the ONNX graph carries a batch axis that exporters move around: a
Transpose puts it second (``nn.MultiheadAttention(batch_first=True)`` works sequence-first), a
Reshape merges it with the heads into one axis (``(B·H, L, d)``, as SDPA exports do) or with the
tokens (``(L·B, E)`` before an output projection), and a later Reshape splits it out again.

A ``Layout`` says how one sample's axes ``S`` and the batch ``B`` make up the ONNX tensor: the
batch lies between ``S[pos-1]`` and ``S[pos]`` in C order, and shares one ONNX axis with the
``before`` sample axes in front of it and the ``after`` sample axes behind it:

    ONNX shape = S[:pos-before] + (prod(S[pos-before:pos]) · B · prod(S[pos:pos+after]),) + S[pos+after:]

Every ONNX axis but that one (the *batch group*) is one sample axis. These functions are pure;
``BatchAxisError`` says that an op would mix samples.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from spikec.errors import FrontendError

Shape = tuple[int, ...]


class BatchAxisError(FrontendError):
    """An op acts on the batch axis (reduces, indexes, reorders or broadcasts it): it mixes samples."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """The batch's place in the ONNX view of a per-sample value (see the module docstring)."""

    pos: int
    before: int = 0
    after: int = 0

    @property
    def group(self) -> int:
        """The ONNX index of the axis that holds the batch."""
        return self.pos - self.before

    @property
    def plain(self) -> bool:
        """True when the batch is an ONNX axis of its own."""
        return self.before == 0 and self.after == 0

    def onnx_rank(self, sample_rank: int) -> int:
        return sample_rank + 1 - self.before - self.after

    def onnx_shape(self, sample: Sequence[int], batch: int) -> Shape:
        s = tuple(int(d) for d in sample)
        lo, hi = self.pos - self.before, self.pos + self.after
        return (*s[:lo], math.prod(s[lo : self.pos]) * batch * math.prod(s[self.pos : hi]), *s[hi:])

    def group_axes(self) -> tuple[int, ...]:
        """The sample axes that share the batch's ONNX axis."""
        return tuple(range(self.pos - self.before, self.pos + self.after))

    def sample_axis(self, onnx_axis: int) -> int:
        """The sample axis of ONNX axis ``onnx_axis`` (non-negative); ``BatchAxisError`` on the batch group."""
        g = self.group
        if onnx_axis == g:
            raise BatchAxisError(self.describe_group())
        return onnx_axis if onnx_axis < g else onnx_axis - 1 + self.before + self.after

    def onnx_axis(self, sample_axis: int) -> int:
        """The ONNX axis that holds sample axis ``sample_axis``."""
        lo, hi = self.pos - self.before, self.pos + self.after
        if sample_axis < lo:
            return sample_axis
        if sample_axis < hi:
            return self.group
        return sample_axis + 1 - self.before - self.after

    def describe_group(self) -> str:
        where = f"axis {self.group}"
        if self.plain:
            return f"the op acts on the batch axis ({where})"
        return f"the op acts on {where}, which merges the batch with {self.before + self.after} sample axis(es)"

    def shifted(self, by: int) -> Layout:
        """The same layout with ``by`` sample axes added (or removed) in front of the batch group."""
        return dataclasses.replace(self, pos=self.pos + by)


Axes = list[list[int | None]]  # ONNX axes, each the sample sizes it holds in C order (None: the batch)


def view(sample: Sequence[int], layout: Layout | None) -> Axes:
    """The ONNX axes of a per-sample value: one list per axis, the batch group holding ``None``."""
    axes: Axes = [[int(d)] for d in sample]
    if layout is None:
        return axes
    lo, hi = layout.pos - layout.before, layout.pos + layout.after
    group: list[int | None] = [int(d) for d in sample[lo : layout.pos]]
    group += [None, *(int(d) for d in sample[layout.pos : hi])]
    return [*axes[:lo], group, *axes[hi:]]


def unview(axes: Axes) -> tuple[Shape, Layout | None]:
    """The per-sample shape and layout of ONNX axes built by ``view`` (and rearranged)."""
    flat = [d for axis in axes for d in axis]
    sample = tuple(int(d) for d in flat if d is not None)
    if None not in flat:
        return sample, None
    group = next(axis for axis in axes if None in axis)
    before = group.index(None)
    return sample, Layout(pos=flat.index(None), before=before, after=len(group) - before - 1)


def locate(
    sample: Sequence[int], layout: Layout, batch: int, out: Sequence[int], prefer: int | None
) -> list[tuple[Shape, Layout]]:
    """Where the batch lands when the ONNX view of ``sample`` (batch size ``batch``) is reshaped to ``out``.

    In C order the batch has stride ``prod(S[pos:])`` and extent ``batch``; it stays one block when
    an output axis ``j`` covers it: ``prod(out[j+1:])`` divides that stride (``inner`` sample entries
    below it on axis ``j``) and ``out[j]`` is a multiple of ``inner · batch`` (``outer`` above it).
    Returns every such placement as (per-sample shape, layout), the likeliest first: a plain axis,
    then axis ``prefer``. An empty list means the reshape mixes samples with each other.
    """
    stride = math.prod(int(d) for d in sample[layout.pos :])
    found: list[tuple[int, Shape, Layout]] = []
    for j, size in enumerate(out):
        below = math.prod(int(d) for d in out[j + 1 :])
        if below == 0 or stride % below:
            continue
        inner = stride // below
        if size % (inner * batch):
            continue
        outer = size // (inner * batch)
        per = (*out[:j], *((outer,) if outer > 1 else ()), *((inner,) if inner > 1 else ()), *out[j + 1 :])
        new = Layout(pos=j + int(outer > 1), before=int(outer > 1), after=int(inner > 1))
        rank = (0 if new.plain else 2) + (0 if j == prefer else 1)
        found.append((rank, tuple(int(d) for d in per), new))
    found.sort(key=lambda f: f[0])
    return [(per, new) for _, per, new in found]


def per_sample_constant(value: np.ndarray, layout: Layout, sample: Sequence[int], batch: int) -> np.ndarray:
    """A constant combined (numpy broadcasting) with an activation, as one sample's array.

    The constant aligns with the activation's ONNX view from the right. Where it reaches the batch
    group it must have size 1 (it broadcasts over the batch) or the group's full size with the same
    entries for every sample; anything else treats samples differently (``BatchAxisError``).
    """
    rank = layout.onnx_rank(len(sample))
    if value.ndim > rank:
        raise BatchAxisError(
            f"a constant operand of shape {value.shape} has more axes than the activation's {rank}: it would "
            "broadcast the samples against each other"
        )
    g = layout.group - (rank - value.ndim)  # the constant's axis on the batch group, if it reaches it
    if g < 0:
        return value
    lo, hi = layout.pos - layout.before, layout.pos + layout.after
    group = [int(d) for d in sample[lo:hi]]
    size = int(value.shape[g])
    head, tail = value.shape[:g], value.shape[g + 1 :]
    if size == 1:
        return value.reshape((*head, *([1] * len(group)), *tail))
    whole = math.prod(group) * batch
    if size != whole:
        raise BatchAxisError(
            f"a constant operand of shape {value.shape} has size {size} on the batch axis (the activation has "
            f"{whole}): it treats samples differently"
        )
    split = value.reshape((*head, *group[: layout.before], batch, *group[layout.before :], *tail))
    b = len(head) + layout.before
    first = np.take(split, [0], axis=b)
    if not np.array_equal(split, np.broadcast_to(first, split.shape), equal_nan=True):
        raise BatchAxisError(f"a constant operand of shape {value.shape} holds different values for different samples")
    return np.squeeze(first, axis=b)
