"""The handler registry of the ONNX front end, and the values handlers pass around.

A handler lowers one ONNX op: ``fn(node, ctx) -> outputs``, registered by op type with
``@handler("Relu", ...)``. ``node.ins`` holds the node's input values: a ``Const`` (a value known
at import time: initializers, ``Constant`` nodes, folded sub-graphs) or an ``Act`` (a SIR node's
output, per-sample shape). Handlers return one value (or ``None``) per ONNX output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from spikec.errors import FrontendError
from spikec.frontends.onnx.layout import Layout
from spikec.ir.node import Shape
from spikec.registry import Registry

if TYPE_CHECKING:
    from spikec.frontends.onnx.lowering import Lowering


@dataclasses.dataclass(frozen=True)
class Const:
    """A tensor known at import time (ONNX shape, no batch axis stripped).

    ``alt`` is its value when the symbolic batch size takes a second trial value (only for values
    computed from ``Shape`` of an activation); ``None`` when it does not depend on the batch size.
    """

    value: np.ndarray
    alt: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Act:
    """The output of SIR node ``name``: a run-time tensor of per-sample ``shape``, whose batch axis sits
    in its ONNX view as ``layout`` says (``None``: the ONNX tensor holds no batch axis)."""

    name: str
    shape: Shape
    layout: Layout | None = None


Value = Const | Act


@dataclasses.dataclass
class OnnxNode:
    """One ONNX node with its input values and attributes decoded."""

    proto: onnx.NodeProto
    ins: list[Value | None]
    used: list[bool]  # per output: read by a later node or a graph output

    @property
    def op(self) -> str:
        return str(self.proto.op_type)

    @property
    def label(self) -> str:
        """The node's name, or its op type when it has none (what ``origin`` records)."""
        return str(self.proto.name) or self.op

    def attr(self, name: str, default: Any = None) -> Any:
        for a in self.proto.attribute:
            if a.name == name:
                value = onnx.helper.get_attribute_value(a)
                if not isinstance(value, bytes):
                    return value
                try:
                    return value.decode()
                except UnicodeDecodeError:
                    raise FrontendError(
                        f"ONNX node '{self.label}' ({self.op}): attribute '{name}' is not UTF-8 text ({value[:40]!r}); "
                        "the model is damaged"
                    ) from None
        return default

    def input(self, i: int) -> Value | None:
        return self.ins[i] if i < len(self.ins) else None


Outputs = Sequence[Value | None]
Handler = Callable[[OnnxNode, "Lowering"], Outputs]
ONNX_HANDLERS: Registry[str, Handler] = Registry("ONNX op handler")


def handler(*op_types: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the lowering of each ONNX op type in ``op_types``."""
    return ONNX_HANDLERS.register(*op_types)


def supported_ops() -> list[str]:
    """The ONNX op types the front end lowers (any op also folds when all its inputs are constant)."""
    return sorted(ONNX_HANDLERS)


# Ops of custom ONNX domains that spikec itself writes (the ``spikec`` neuron nodes of from_torch),
# keyed ``"<domain>.<op type>"``. Any other custom-domain op is refused.
DOMAIN_HANDLERS: Registry[str, Handler] = Registry("ONNX op handler")


def domain_handler(domain: str, *op_types: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the lowering of each op type in ``op_types`` of the custom ``domain``."""
    return DOMAIN_HANDLERS.register(*(f"{domain}.{op}" for op in op_types))
