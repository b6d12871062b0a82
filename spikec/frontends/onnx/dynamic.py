"""The error for a graph input with a dynamic dimension, named after what the dimension is.

SIR shapes are static, so every dimension but the batch axis must be known at import. A plain
input gets the generic message; an input that is the query/key/value of an ``Attention`` node
is a dynamic *sequence length*, and one that is its ``past_key``/``past_value`` is a growing
key/value cache (the decoder-step pattern), which spikec does not support: the message names
the node and the variant, and says how to fix the shape (``input_shapes=`` or ``--input-shape``)
or what to export instead.
"""

from __future__ import annotations

import onnx

from spikec.errors import FrontendError

ROLES = {0: "query", 1: "key", 2: "value", 4: "past_key", 5: "past_value"}


def _attention_uses(graph: onnx.GraphProto, name: str) -> list[tuple[onnx.NodeProto, int]]:
    """The ``Attention`` nodes that ``name`` reaches (through any other nodes), with the input slot it
    reaches them at; the search stops at each Attention node."""
    readers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for k, i in enumerate(node.input):
            readers.setdefault(i, []).append((node, k))
    found: list[tuple[onnx.NodeProto, int]] = []
    seen, todo = {name}, [name]
    while todo:
        for node, k in readers.get(todo.pop(), []):
            if node.op_type == "Attention":
                if k in ROLES:
                    found.append((node, k))
                continue
            for out in node.output:
                if out and out not in seen:
                    seen.add(out)
                    todo.append(out)
    return found


def _node_label(node: onnx.NodeProto) -> str:
    return f"ONNX node '{node.name or node.op_type}' ({node.op_type})"


def dynamic_dim_error(graph: onnx.GraphProto, file: str, name: str, axis: int, label: str) -> FrontendError:
    """A ``FrontendError`` for dimension ``axis`` (symbol ``label``, may be empty) of input ``name``."""
    fix = (
        f"fix it at import with input_shapes={{'{name}': (...)}} (the full ONNX shape, -1 for a symbolic batch) "
        "or, from the command line, --input-shape with the per-sample shape"
    )
    where = f"{file}: input '{name}' has a dynamic dimension {axis}" + (f" ('{label}')" if label else "")
    attention = _attention_uses(graph, name)
    cache = [(n, k) for n, k in attention if k in (4, 5)]
    if cache:
        node, k = cache[0]
        causal = any(a.name == "is_causal" and a.i for a in node.attribute)
        variant = "causal attention with a past key/value cache" if causal else "attention with a past key/value cache"
        return FrontendError(
            f"{where}: it feeds the {ROLES[k]} of {_node_label(node)}, a key/value cache that grows with every "
            f"call. {variant[0].upper()}{variant[1:]} (KV-cache decoding) is not supported: SIR shapes are static "
            "and spikec compiles one fixed computation. Export the model without past_key/past_value (attention "
            "over the whole sequence, e.g. a causal mask with is_causal=1), or compile one fixed cache length: " + fix
        )
    if attention:
        node = attention[0][0]
        roles = [ROLES[k] for k in sorted({k for n, k in attention if n == node})]
        named = roles[0] if len(roles) == 1 else ", ".join(roles[:-1]) + " and " + roles[-1]
        return FrontendError(
            f"{where}: it feeds the {named} of {_node_label(node)}, whose sequence length must be fixed at "
            "import (SIR shapes are static; only axis 0 may be a batch axis): " + fix
        )
    return FrontendError(
        f"{where} that spikec cannot resolve (SIR shapes are static; only axis 0 may be a batch axis; a "
        "transformer's sequence length must be fixed): export the model with a static shape, or " + fix
    )
