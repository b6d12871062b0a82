"""Core demand of the ACME-1 kinds (registered with spikec.demand when the dialect loads).

``partition{target=acme1}`` places every neuron group on cores under ``resources.toml``. An ``AcmeLIF`` is
a neuron layer because its class says so (the ``Neuron`` trait: one compartment per neuron, state bytes
from the resource file); an ``AcmeDense`` is registered here as a dense synapse op storing
``WEIGHT_BITS`` per weight (the chip's only width, whatever the pass's ``weight_bits`` says).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acme_spikec.dialect import WEIGHT_BITS, AcmeDense
from spikec.demand import DemandContext, SynapseOp, dense_op, synapse_op
from spikec.ir.node import Node, Shape


@synapse_op(AcmeDense)
def _acme_dense(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    return dense_op(np.asarray(node.weight), WEIGHT_BITS, ctx)  # type: ignore[attr-defined]
