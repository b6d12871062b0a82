r"""The two kinds fan-in splitting (``split-fanin``, targets/loihi2/split_fanin.py) builds a wide neuron from.

* ``LoihiPartialDense``: a ``LoihiDense`` whose weight covers only the input columns
  ``[in_offset, in_offset + width)`` of an input of ``in_size`` values: one group of a wide layer's
  synapses, stored on the cores that hold it. Lava has no port slicing, so its process is a ``Sparse``
  over the whole input with the other columns empty (the same arithmetic, bit for bit).
* ``LoihiGradedVec``: Lava 0.10's ``GradedVec`` (``lava.proc.graded``, ``PyGradedVecModelFixed``), a
  stateless graded relay: :math:`v = a_{in}`, :math:`z = v\,[|v| > \mathrm{vth}]`, then :math:`v \leftarrow 0`.
  With ``vth = 0`` it sends every step's integer input on as a graded spike (24-bit payload).

Loading the dialect (``spikec.targets.loihi2.dialect``) loads this module: the kinds, their interpreter
kernels and their core demand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from spikec.demand import DemandContext, SynapseOp, dense_op, synapse_op
from spikec.errors import ShapeError
from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.ir.node import Array, Node, Shape
from spikec.ir.traits import EmitsCounts, Neuron
from spikec.targets.loihi2 import kernels
from spikec.targets.loihi2.demand import dense_bits
from spikec.targets.loihi2.dialect import UV_BITS, LoihiDense, _i, _LoihiNeuron, _range_problem

GRADED_MAX = (1 << (UV_BITS - 1)) - 1  # the largest graded spike payload (signed 24-bit)
GRADED_BITS = UV_BITS  # the message bits of a relay's graded spikes (split-fanin's, a shared part's)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiPartialDense(LoihiDense):
    r"""A ``LoihiDense`` over input columns ``[in_offset, in_offset + W)`` of an ``in_size``-wide input.

    .. math:: y = \mathrm{LoihiDense}(x_{[\mathrm{in\_offset},\ \mathrm{in\_offset} + W)})

    with W the weight's width: every field (exponent, bits, sign mode, delays) means what it means on
    ``LoihiDense``. ``sign_mode`` should be explicit (the layer's, not this group's own): Lava truncates
    weights by the sign mode, so a group of a mixed-sign layer keeps the layer's truncation.
    """

    kind = "LoihiPartialDense"
    in_offset: int = 0
    in_size: int = 0

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if shape != (self.in_size,):
            raise ShapeError(f"LoihiPartialDense reads an input of ({self.in_size},), got {shape}")
        return (self.weight.shape[0],)

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        width = self.weight.shape[1] if self.weight.ndim == 2 else 0
        if self.in_offset < 0 or self.in_offset + width > self.in_size:
            yield f"columns [{self.in_offset}, {self.in_offset + width}) lie outside the input of {self.in_size}"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LoihiGradedVec(_LoihiNeuron):
    r"""Lava ``GradedVec`` (``PyGradedVecModelFixed``): :math:`z = a_{in}\,[|a_{in}| > \mathrm{vth}]`, no state.

    Lava's model adds the input to ``v``, sends ``v`` where :math:`|v| > \mathrm{vth}` and clears ``v``
    every step, so the output depends on this step's input only. A relay with ``vth = 0`` forwards its
    integer input (a partial sum) exactly.
    """

    kind = "LoihiGradedVec"
    stateful = False
    traits = frozenset({Neuron(), EmitsCounts()})
    vth: Array = dataclasses.field(default_factory=lambda: _i(0))

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        problem = _range_problem("vth", np.asarray(self.vth), 0, GRADED_MAX, "a 24-bit threshold")
        if problem:
            yield problem


@kernel(LoihiPartialDense)
def _partial_dense(node: LoihiPartialDense, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    columns = ctx.cached("columns", lambda: np.arange(node.in_offset, node.in_offset + node.weight.shape[1]))
    return kernels._loihi_dense(node, ctx.xp.take(x, columns, 1), state, ctx)


@kernel(LoihiGradedVec)
def _graded_vec(node: LoihiGradedVec, x: Tensor, state: State, ctx: KernelContext) -> tuple[Tensor, State]:
    xp = ctx.xp
    vth = ctx.const("vth", lambda: np.asarray(node.vth, np.float64))
    return xp.where(xp.unary("abs", x) > vth, x, ctx.zeros()), state


@synapse_op(LoihiPartialDense)
def _partial_dense_op(
    name: str, node: Node, in_shapes: Sequence[Shape], out_shape: Shape, index: int, ctx: DemandContext
) -> SynapseOp:
    """The rows' weights as a LoihiDense's (``width`` columns stored), their inputs shifted by ``in_offset``."""
    assert isinstance(node, LoihiPartialDense)
    op = dense_op(np.asarray(node.weight), dense_bits(node), ctx)
    return dataclasses.replace(op, col_lo=op.col_lo + node.in_offset, col_hi=op.col_hi + node.in_offset)
