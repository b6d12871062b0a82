"""Core demand of the Loihi dialect's kinds, registered with spikec.demand when the dialect loads.

Synapses store the bits the node itself says, not the partition's ``weight_bits`` default:

- ``LoihiDense``: ``num_weight_bits`` per weight (Lava keeps b bits in every sign mode: a mixed-sign
  weight spends one of them on the sign), plus 6 bits per synapse when it has delays (Lava
  ``DelayDense``: a 0..62 delay per synapse);
- ``LoihiConv``: Lava's fixed-point Conv has no bit-width field, so the bits its weights need —
  ``bit_length(max |w|)`` plus a sign bit when both signs occur — capped at the target's
  ``max_weight_bits``. With a delay or a weight exponent it is Lava's ``DelaySparse``/``Sparse`` over the conv's
  connectivity: no weight sharing, so every synapse of a core's box stores its weight (and its 6-bit delay).

Neurons: ``LoihiLIF``, ``LoihiDelta``, ``LoihiSigmaDelta``, ``LoihiSigma`` (their state bytes are in
the resource file's ``[neuron_state_bytes]``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from spikec.demand import DemandContext, SynapseOp, WindowOp, conv_op, dense_op, synapse_op
from spikec.ir.node import Node, Shape
from spikec.regions import Box
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, SignMode, sign_mode_of

DELAY_BITS = 6  # Loihi 2 synaptic delays 0..62 (docs/semantics.md, Lava DelayDense)


def dense_bits(node: LoihiDense) -> int:
    """Bits one synapse of a LoihiDense stores: its weight bits, plus the delay field when it delays."""
    delayed = node.delay is not None and bool(np.any(np.asarray(node.delay)))
    return int(node.num_weight_bits) + (DELAY_BITS if delayed else 0)


def conv_bits(weight: np.ndarray, cap: int) -> int:
    """Bits a LoihiConv weight needs: magnitude bits plus a sign bit for mixed signs, at most ``cap``."""
    w = np.asarray(weight, dtype=np.int64)
    magnitude = int(np.max(np.abs(w))).bit_length() if w.size else 1
    sign = 1 if sign_mode_of(w) == SignMode.MIXED else 0
    return max(1, min(cap, magnitude + sign))


@synapse_op(LoihiDense)
def _loihi_dense(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    assert isinstance(node, LoihiDense)
    return dense_op(np.asarray(node.weight), dense_bits(node), ctx)


@dataclasses.dataclass(frozen=True)
class UnsharedWindowOp(WindowOp):
    """A conv stored synapse by synapse (a delayed LoihiConv or one with a weight exponent, Lava's DelaySparse or
    Sparse): every output neuron of the box keeps its own non-zero weights (and delays); ``stored[c]``: the non-zero
    weights of output channels [0, c), per neuron."""

    stored: tuple[int, ...] = ()

    def memory_bits(self, box: Box) -> int:
        (c0, c1), *spatial = box
        neurons = math.prod(hi - lo for lo, hi in spatial)
        return (self.stored[c1] - self.stored[c0]) * neurons * self.bits


@synapse_op(LoihiConv)
def _loihi_conv(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    assert isinstance(node, LoihiConv)
    bits = conv_bits(np.asarray(node.weight), ctx.model.synapses["max_weight_bits"].value)
    if not node.per_synapse:
        return conv_op(node, in_shapes, out_shape, bits)
    shared = conv_op(node, in_shapes, out_shape, bits + (DELAY_BITS if node.delay else 0))
    weight = np.asarray(node.weight)
    per_channel = np.count_nonzero(weight.reshape(weight.shape[0], -1), axis=1)
    stored = tuple(int(n) for n in np.concatenate([[0], np.cumsum(per_channel)]))
    return UnsharedWindowOp(**{f.name: getattr(shared, f.name) for f in dataclasses.fields(shared)}, stored=stored)
