"""Core demand of the SpiNNaker2 kinds, registered with spikec.demand when the dialect loads.

``SpiNNaker2LIF`` is a neuron layer by its ``Neuron`` trait (state bytes from ``resources.toml``);
``SpiNNaker2Dense`` stores its nonzero weights at 8 bits each, ``SpiNNaker2OneToOne`` as the diagonal Dense it is
(built from its N weights), ``SpiNNaker2Conv`` its kernel once per PE (``lif_conv2d`` keeps the kernel, not a
synapse per connection).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spikec.demand import DemandContext, DenseOp, SynapseOp, conv_op, dense_op, synapse_op
from spikec.ir.node import Node, Shape
from spikec.targets.spinnaker2.dialect import WEIGHT_BITS, SpiNNaker2Conv, SpiNNaker2Dense, SpiNNaker2OneToOne


@synapse_op(SpiNNaker2Dense)
def _dense(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return dense_op(np.asarray(node.weight), WEIGHT_BITS, ctx)  # type: ignore[attr-defined]


@synapse_op(SpiNNaker2Conv)
def _conv(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    assert isinstance(node, SpiNNaker2Conv)
    return conv_op(node.as_conv(), in_shapes, out_shape, WEIGHT_BITS)


@synapse_op(SpiNNaker2OneToOne)
def _one_to_one(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    """``dense_op`` of the diagonal matrix, without it: row k holds column k when its weight is nonzero."""
    nonzero = np.asarray(node.weight) != 0  # type: ignore[attr-defined]
    n, k = nonzero.size, np.arange(nonzero.size)
    nnz = np.concatenate([[0], np.cumsum(nonzero)])
    return DenseOp(n, n, nnz, WEIGHT_BITS, ctx.index_bits, np.where(nonzero, k, n), np.where(nonzero, k + 1, 0))
