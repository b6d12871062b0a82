"""Which node kinds pass increments through unchanged (not a pass): the tables of the exact path.

The exact SNN carries at every step the increment of each QANN value. A kind ``f`` that is
additive, :math:`f(a + b) = f(a) + f(b)`, maps increments to increments and runs as it is; a kind
with a constant offset (a bias) is additive once the offset is split off and fed in once; every
other kind is wrapped as Σ → f → Δ. Each table is keyed by kind, with the condition on the
node's fields (e.g. ``Pad`` only with value 0); a kind missing from all tables is wrapped, which is
always exact, only not event-driven.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spikec.ir import ann, spatial, structure, tensor
from spikec.ir.graph import Graph
from spikec.ir.node import Inputs, Node, Shape

Condition = Callable[[Node], bool]


def _always(node: Node) -> bool:
    return True


def _no_bias(node: Node) -> bool:
    return getattr(node, "bias", None) is None


# f(a + b) = f(a) + f(b) for the (summed) input, under the condition
ADDITIVE: dict[type[Node], Condition] = {
    structure.Output: _always,
    ann.Dense: _no_bias,
    ann.Conv: _no_bias,
    spatial.ConvTranspose: _no_bias,
    ann.Add: _always,
    ann.Identity: _always,
    ann.Reshape: _always,
    ann.Flatten: _always,
    ann.Transpose: _always,
    ann.Concat: _always,
    ann.SumPool: _always,
    ann.AvgPool: _always,
    ann.Scale: _always,
    tensor.Gather: _always,
    tensor.Slice: _always,
    spatial.Pad: lambda n: n.value == 0.0,  # type: ignore[attr-defined]
    spatial.Pool: lambda n: n.mode == "avg",  # type: ignore[attr-defined]
    tensor.Reduce: lambda n: n.op in ("sum", "mean"),  # type: ignore[attr-defined]
    # isnan/isinf are 0 on every finite value (spike increments are): 0 = 0 + 0 (exporters' NaN guards)
    tensor.Unary: lambda n: n.op in ("neg", "isnan", "isinf"),  # type: ignore[attr-defined]
    tensor.Binary: lambda n: n.op in ("add", "sub"),  # type: ignore[attr-defined]
}

# Products that are linear in one operand when the other comes straight from a Constant: the
# positions (in edge order) a Constant may hold. The Constant's edge then carries its value, not
# its increments.
CONSTANT_OPERAND: dict[type[Node], Callable[[Node], tuple[int, ...]]] = {
    tensor.Binary: lambda n: {"mul": (0, 1), "div": (1,)}.get(n.op, ()),  # type: ignore[attr-defined]
    tensor.MatMul: lambda n: (0, 1),
}


def _channel_offset(bias: np.ndarray, shape: Shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(bias, np.float64).reshape(-1, *[1] * (len(shape) - 1)), shape)


def _split_dense(node: Node, shape: Shape) -> tuple[Node, np.ndarray]:
    return node.replace(bias=None), np.broadcast_to(np.asarray(node.bias, np.float64), shape)  # type: ignore[attr-defined]


def _split_conv(node: Node, shape: Shape) -> tuple[Node, np.ndarray]:
    return node.replace(bias=None), _channel_offset(node.bias, shape)  # type: ignore[attr-defined]


def _split_bias(node: Node, shape: Shape) -> tuple[Node, np.ndarray]:
    return ann.Identity(origin=node.origin), np.broadcast_to(np.asarray(node.bias, np.float64), shape)  # type: ignore[attr-defined]


# y = f(x) + c: the additive part f and the offset c (at the node's output shape), when it has one
OFFSETS: dict[type[Node], Callable[[Node, Shape], tuple[Node, np.ndarray]]] = {
    ann.Dense: _split_dense,
    ann.Conv: _split_conv,
    spatial.ConvTranspose: _split_conv,
    tensor.Bias: _split_bias,
}


def has_offset(node: Node) -> bool:
    return type(node) in OFFSETS and (type(node) is tensor.Bias or getattr(node, "bias", None) is not None)


def raw_constant_edges(graph: Graph, name: str) -> set[int]:
    """Positions of the edges into ``name`` that take a Constant's value as an operand of a product."""
    node = graph.nodes[name]
    slots = CONSTANT_OPERAND.get(type(node))
    if slots is None or node.inputs is not Inputs.ORDERED:
        return set()
    edges = graph.in_edges(name)
    constant = [i for i, e in enumerate(edges) if isinstance(graph.nodes[e.src], tensor.Constant)]
    allowed = set(slots(node))
    # linear in the other operand only when exactly one operand is a Constant in an allowed slot
    return set(constant) if len(constant) == 1 and constant[0] in allowed else set()


def is_additive(graph: Graph, name: str) -> bool:
    """True when ``name`` maps increments to increments once its offset (if any) is split off."""
    node = graph.nodes[name]
    if has_offset(node):
        return True
    rule = ADDITIVE.get(type(node))
    if rule is not None and rule(node):
        return True
    return bool(raw_constant_edges(graph, name))
