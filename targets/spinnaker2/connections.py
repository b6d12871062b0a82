"""The SpiNNaker2 synapses as PyNN connection lists: (pre, post, weight) over flat C-order neuron indices.

``SpiNNaker2Dense``: every nonzero ``W[post, pre]``; ``SpiNNaker2OneToOne``: every nonzero ``w[k]``, k to k.
``SpiNNaker2Conv``: for output (o, y, x) and kernel tap (c, ky, kx) of its group, the input
``(g·C/groups + c, y·s − p + ky, x·s − p + kx)`` when inside the map (zero padding has no neuron). Built with
numpy index arithmetic, nothing per synapse in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.ir.node import Node, Shape
from spikec.registry import Registry
from spikec.targets.spinnaker2.dialect import SpiNNaker2Conv, SpiNNaker2Dense, SpiNNaker2OneToOne

Connections = tuple[np.ndarray, np.ndarray, np.ndarray]
ConnectionRule = Callable[[Any, Shape], Connections]
CONNECTIONS: Registry[type[Node], ConnectionRule] = Registry("connection list")  # each synapse kind's connection list


def connects(*kinds: type[Node]) -> Callable[[ConnectionRule], ConnectionRule]:
    """Register ``rule`` as the connection list of synapse nodes of ``kinds``."""
    return CONNECTIONS.register(*kinds)


def dense_connections(weight: np.ndarray) -> Connections:
    post, pre = np.nonzero(weight)
    return pre.astype(np.int32), post.astype(np.int32), weight[post, pre].astype(np.int16)


@connects(SpiNNaker2Dense)
def _dense(node: SpiNNaker2Dense, in_shape: Shape) -> Connections:
    return dense_connections(np.asarray(node.weight, np.int64))


@connects(SpiNNaker2OneToOne)
def _one_to_one(node: SpiNNaker2OneToOne, in_shape: Shape) -> Connections:
    weight = np.asarray(node.weight, np.int64)
    (k,) = np.nonzero(weight)
    return k.astype(np.int32), k.astype(np.int32), weight[k].astype(np.int16)


@connects(SpiNNaker2Conv)
def conv_connections(node: SpiNNaker2Conv, in_shape: Shape) -> Connections:
    w = np.asarray(node.weight, np.int64)
    n_out, c_group, kh, kw = w.shape
    _, h, wd = in_shape
    (sh, sw), (ph, pw) = node.stride, node.padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    o, y, x, c, ky, kx = np.meshgrid(
        np.arange(n_out),
        np.arange(oh),
        np.arange(ow),
        np.arange(c_group),
        np.arange(kh),
        np.arange(kw),
        indexing="ij",
        sparse=True,
    )
    iy, ix = y * sh - ph + ky, x * sw - pw + kx
    ci = (o // (n_out // node.groups)) * c_group + c
    shape = np.broadcast_shapes(o.shape, y.shape, x.shape, c.shape, ky.shape, kx.shape)
    weight = np.broadcast_to(w[o, c, ky, kx], shape)
    keep = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd) & (weight != 0)
    keep = np.broadcast_to(keep, shape)
    pre = np.broadcast_to((ci * h + iy) * wd + ix, shape)[keep]
    post = np.broadcast_to((o * oh + y) * ow + x, shape)[keep]
    return pre.astype(np.int32), post.astype(np.int32), weight[keep].astype(np.int16)


def connections(node: Node, in_shape: Shape) -> Connections:
    """The connection list of a SpiNNaker2 synapse node reading a tensor of ``in_shape`` (its rule in
    ``CONNECTIONS``)."""
    return CONNECTIONS[type(node)](node, in_shape)
