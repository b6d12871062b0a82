"""Which node kinds pass increments through unchanged (not a pass): the rules of the exact path.

The exact SNN carries at every step the increment of each QANN value. A kind ``f`` that is
additive, :math:`f(a + b) = f(a) + f(b)` (its ``Additive`` trait, with the condition on the node's
fields, e.g. ``Pad`` only with value 0), maps increments to increments and runs as it is; a
``Product`` is linear in one operand when the other comes straight from a Constant (the positions
its trait allows); a kind with a constant offset (a bias, ``OFFSETS``) is additive once the offset
is split off and fed in once; every other kind is wrapped as Σ → f → Δ, which is always exact, only
not event-driven.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spikec.ir import ann, spatial, tensor
from spikec.ir.graph import Graph
from spikec.ir.node import Inputs, Node, Shape
from spikec.ir.traits import Additive, Product


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
    product = node.get_trait(Product)
    if product is None or node.inputs is not Inputs.ORDERED:
        return set()
    edges = graph.in_edges(name)
    constant = [i for i, e in enumerate(edges) if isinstance(graph.nodes[e.src], tensor.Constant)]
    allowed = set(product.slots(node))
    # linear in the other operand only when exactly one operand is a Constant in an allowed slot
    return set(constant) if len(constant) == 1 and constant[0] in allowed else set()


def is_additive(graph: Graph, name: str) -> bool:
    """True when ``name`` maps increments to increments once its offset (if any) is split off."""
    node = graph.nodes[name]
    if has_offset(node):
        return True
    additive = node.get_trait(Additive)
    if additive is not None and additive.holds(node):
        return True
    return bool(raw_constant_edges(graph, name))
