"""Control-flow ONNX ops: an ``If`` whose condition is known at import time.

TorchScript exports test shapes at run time (``x.squeeze(1)`` becomes ``If(Shape(x)[1] == 1)``
from opset 11 on); the shapes are static per sample, so the condition folds to a constant and
the taken branch is lowered in place of the ``If`` (``Lowering.inline``). A condition computed from
activations, or from the symbolic batch size, is refused.
"""

from __future__ import annotations

import numpy as np

from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.registry import Const, OnnxNode, Outputs, handler


@handler("If")
def _if(n: OnnxNode, ctx: Lowering) -> Outputs:
    cond = n.input(0)
    if not isinstance(cond, Const):
        raise ctx.fail(
            "the condition is computed at run time from activations; spikec lowers an If only when its "
            "condition is known at import time (constants and static shapes)"
        )
    value = np.asarray(ctx.static(cond, "the condition"))
    if value.size != 1:
        raise ctx.fail(f"the condition has {value.size} entries; ONNX needs one")
    return ctx.inline(n.attr("then_branch" if bool(value.reshape(-1)[0]) else "else_branch"))
