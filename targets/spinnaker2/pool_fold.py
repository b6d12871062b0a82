"""Sum and average pools of spikes folded into the synapse that reads them (``quantize{target=spinnaker2}``).

A population reads spikes; a pool's output is a count, so it cannot be a population of its own. It is linear,
so the synapse after it can read the pool's source directly. For a pool of kernel = stride = k, no padding,
over a (C, H, W) map with H and W multiples of k (a = 1 for SumPool, 1/k² for AvgPool):

* ``Conv(W, stride s, padding p)`` after the pool = ``Conv(a·W', stride s·k, padding p·k)`` on the source, with
  ``W'[o, i, ky·k + u, kx·k + v] = W[o, i, ky, kx]`` (each tap spread over the k×k block it summed);
* ``Dense(W)`` after ``Flatten`` of the pool = ``Dense(a·W')`` on the flattened source with
  ``W'[:, (c, y, x)] = W[:, (c, y // k, x // k)]``;
* a pool read by a neuron directly = a depthwise conv of a's (kernel k, stride k) into it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikec.ir import AvgPool, Conv, Dense, SumPool
from spikec.ir.node import Node, Shape


@dataclasses.dataclass(frozen=True)
class PooledView:
    """What a synapse reads when it reads a pool (possibly flattened): the pool's spike source and the pool."""

    source: str
    source_shape: Shape
    kernel: int
    factor: float
    flat: bool = False


def pool_view(name: str, node: SumPool | AvgPool, source: str, source_shape: Shape) -> PooledView | str:
    """The view a pool gives of its source, or why it cannot be folded."""
    kernel = tuple(node.kernel_size)
    stride = tuple(node.stride or kernel)
    if len(kernel) != 2 or kernel[0] != kernel[1] or stride != kernel or any(node.padding or ()):
        return f"pools with kernel {kernel}, stride {stride}, padding {tuple(node.padding or ())}; SpiNNaker2 folds square pools of stride = kernel, no padding, into the next synapse"  # noqa: E501
    k = kernel[0]
    if len(source_shape) != 3 or source_shape[1] % k or source_shape[2] % k:
        return f"pools a {tuple(source_shape)} map by {k}: fold needs height and width multiples of {k}"
    factor = 1.0 if isinstance(node, SumPool) else 1.0 / float(k * k)
    return PooledView(source, tuple(source_shape), k, factor)


def fold(view: PooledView, synapse: Node) -> Node:
    """``synapse`` after the pool as one synapse on the pool's source (module docstring)."""
    k, a = view.kernel, view.factor
    if isinstance(synapse, Conv):
        w = np.repeat(np.repeat(np.asarray(synapse.weight, np.float64), k, axis=2), k, axis=3) * a
        return Conv(
            weight=w,
            bias=synapse.bias,
            stride=tuple(s * k for s in synapse.stride),
            padding=tuple(p * k for p in synapse.padding),
            dilation=tuple(synapse.dilation),
            groups=synapse.groups,
            origin=synapse.origin,
        )
    assert isinstance(synapse, Dense)
    c, h, width = view.source_shape
    ch, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(width), indexing="ij")
    pooled = (ch * (h // k) + yy // k) * (width // k) + xx // k
    weight = np.asarray(synapse.weight, np.float64)[:, pooled.reshape(-1)] * a
    return Dense(weight=weight, bias=synapse.bias, origin=synapse.origin)


def pool_as_conv(view: PooledView, origin: str) -> Conv:
    """A pool read by a neuron directly: a depthwise conv of a's."""
    c = view.source_shape[0]
    weight = np.full((c, 1, view.kernel, view.kernel), view.factor)
    return Conv(weight=weight, stride=(view.kernel,) * 2, padding=(0, 0), dilation=(1, 1), groups=c, origin=origin)
