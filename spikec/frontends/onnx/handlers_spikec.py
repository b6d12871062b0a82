"""The ``spikec`` ONNX domain: SIR neurons that ``from_torch`` exported as single nodes.

A node ``spikec.<Kind>`` (``LIF``, ``IF``, ``CubaLIF``, ...: every SNN kind with the ``Neuron`` trait
registered when this module loads) carries the neuron's fields as attributes: arrays as tensors,
modes as strings, time constants **in steps**. The handler builds
the SIR node with the time constants scaled to the graph's dt (``DEFAULT_DT``), so that
``dt/τ`` is the framework's per-step decay. Any other custom domain is refused by the lowering.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from spikec.errors import VerifyError
from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.registry import OnnxNode, Outputs, domain_handler
from spikec.ir.graph import DEFAULT_DT
from spikec.ir.node import NODE_KINDS, FieldKind, Level, Node
from spikec.ir.traits import Neuron

DOMAIN = "spikec"


def neuron_kinds() -> tuple[str, ...]:
    """The SNN kinds with the ``Neuron`` trait: the ops of the ``spikec`` domain."""
    return tuple(name for name, cls in NODE_KINDS.items() if cls.level is Level.SNN and cls.has_trait(Neuron))


def _fields(n: OnnxNode, ctx: Lowering, kind: type[Node]) -> dict[str, Any]:
    kinds = kind.field_kinds()
    fields: dict[str, Any] = {}
    for a in n.proto.attribute:
        if a.name not in kinds:
            raise ctx.fail(f"attribute '{a.name}' is not a field of {kind.kind}; fields: {sorted(kinds)}")
        if kinds[a.name] == FieldKind.ARRAY and a.type == onnx.AttributeProto.TENSOR:
            value: Any = np.asarray(numpy_helper.to_array(a.t), dtype=np.float64)
            fields[a.name] = value * DEFAULT_DT if a.name.startswith("tau") else value
        elif kinds[a.name] == FieldKind.STR and a.type == onnx.AttributeProto.STRING:
            fields[a.name] = a.s.decode()
        else:
            raise ctx.fail(f"attribute '{a.name}' has ONNX type {a.type}, which does not fit {kind.kind}.{a.name}")
    return fields


@domain_handler(DOMAIN, *neuron_kinds())
def _neuron(n: OnnxNode, ctx: Lowering) -> Outputs:
    kind = NODE_KINDS[n.op]
    assert kind.level == Level.SNN
    x = n.input(0)
    if x is None or len(n.ins) != 1:
        raise ctx.fail(f"a spikec neuron node takes one input, got {len(n.ins)}")
    try:
        node = kind(**_fields(n, ctx, kind))
        node.verify(n.label)
    except (TypeError, VerifyError) as err:
        raise ctx.fail(f"cannot build {kind.kind}: {err}") from None
    return [ctx.add(node, [ctx.act(x)])]
