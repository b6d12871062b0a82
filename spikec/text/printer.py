"""The deterministic printer of the textual SIR form (.sir) and its string literal codec.

Nodes are printed in the graph's node order (which is what ``Graph.__eq__`` and the order of
inputs/outputs depend on), then the edges in edge order, so ``parse(print(g)) == g``. Floats use
the shortest text that reads back to the same bits (``repr`` for f64, numpy's shortest form for
f32), so arrays survive a round trip exactly.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.ir.graph import Graph
from spikec.ir.node import FieldKind, Node
from spikec.text.tensors import dtype_code, format_elements, format_float, tensor_hash

VERSION = 1
INDENT = "  "
BARE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")
_SIMPLE_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_HEX_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}  # control, lone surrogate, line/paragraph separator


def quote(text: str) -> str:
    """``text`` as a double-quoted .sir string; control and line-break characters are escaped."""
    out = []
    for ch in text:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif unicodedata.category(ch) in _HEX_CATEGORIES:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.S)
_UNESCAPE = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def unquote(literal: str) -> str:
    """The text of a quoted .sir string (the inverse of ``quote``); ValueError on a bad escape."""

    def unescape(m: re.Match[str]) -> str:
        if m.group(3) is not None:
            if m.group(3) not in _UNESCAPE:
                raise ValueError(f"unknown escape '\\{m.group(3)}' in string")
            return _UNESCAPE[m.group(3)]
        code = int(m.group(1) or m.group(2), 16)
        if code > 0x10FFFF:
            raise ValueError(f"escape '{m.group(0)}' is not a unicode code point")
        return chr(code)

    return _ESCAPE.sub(unescape, literal[1:-1])


def node_ref(name: str) -> str:
    """``%name``, quoted as ``%"..."`` when the name is not made of letters, digits, '_', '.'."""
    return "%" + (name if BARE_NAME.fullmatch(name) else quote(name))


class _Printer:
    """Prints one graph (and its subgraphs), collecting the arrays that go to the sidecar."""

    def __init__(self, inline_limit: float) -> None:
        self.inline_limit = inline_limit
        self.tensors: dict[str, np.ndarray] = {}

    def graph(self, graph: Graph, depth: int, prefix: str) -> str:
        pad = INDENT * (depth + 1)
        lines = [f"graph dt={format_float(graph.dt)} {{"]
        for name, node in graph.nodes.items():
            lines.append(pad + self.node(name, node, depth + 1, prefix))
        for edge in graph.edges:
            arrow = "~>" if edge.recurrent else "->"
            lines.append(f"{pad}{node_ref(edge.src)} {arrow} {node_ref(edge.dst)}")
        lines.append(INDENT * depth + "}")
        return "\n".join(lines)

    def node(self, name: str, node: Node, depth: int, prefix: str) -> str:
        fields = []
        for field, kind in node.field_kinds().items():
            where = f"{prefix}{name}.{field}"
            text = FORMATTERS[kind](self, getattr(node, field), where, depth, f"{prefix}{name}/")
            fields.append(f"{field}={text}")
        origin = f" @{quote(node.origin)}" if node.origin else ""
        return f"{node_ref(name)} = {node.kind}({', '.join(fields)}){origin}"

    def array(self, arr: np.ndarray, tensor_name: str) -> str:
        head = f"{dtype_code(arr.dtype)}[{','.join(map(str, arr.shape))}]"
        if arr.size > self.inline_limit:
            self.tensors[tensor_name] = arr
            return f"{head} @tensor({quote(tensor_name)}, sha256={quote(tensor_hash(arr))})"
        return f"{head}{{{', '.join(format_elements(arr))}}}"


Formatter = Callable[[_Printer, Any, str, int, str], str]

# value, sidecar tensor name, indentation depth, name prefix of a nested graph -> text
FORMATTERS: dict[FieldKind, Formatter] = {
    FieldKind.ARRAY: lambda p, v, where, depth, sub: p.array(v, where),
    FieldKind.OPTIONAL_ARRAY: lambda p, v, where, depth, sub: ("none" if v is None else p.array(v, where)),
    FieldKind.INTS: lambda p, v, where, depth, sub: f"[{', '.join(str(int(i)) for i in v)}]",
    FieldKind.INT: lambda p, v, where, depth, sub: str(int(v)),
    FieldKind.FLOAT: lambda p, v, where, depth, sub: format_float(v),
    FieldKind.STR: lambda p, v, where, depth, sub: quote(str(v)),
    FieldKind.GRAPH: lambda p, v, where, depth, sub: p.graph(v, depth, sub),
}


def print_graph(
    graph: Graph, *, sidecar_name: str | None = None, inline_limit: int = 16
) -> tuple[str, dict[str, np.ndarray]]:
    """The .sir text of ``graph`` and the arrays of more than ``inline_limit`` elements.

    Large arrays are referenced as ``@tensor("node.field", sha256="...")`` (``outer/inner.field``
    inside a subgraph) and returned by that name for the sidecar. ``sidecar_name``, when given
    and some tensor is large, is recorded in the header so ``load_sir`` can find the file.
    """
    return _print(graph, sidecar_name, inline_limit)


def to_text(graph: Graph) -> str:
    """The .sir text of ``graph`` with every array inline (no sidecar)."""
    return _print(graph, None, math.inf)[0]


def _print(graph: Graph, sidecar_name: str | None, inline_limit: float) -> tuple[str, dict[str, np.ndarray]]:
    printer = _Printer(inline_limit)
    body = printer.graph(graph, 0, "")
    header = [f"sir {VERSION}"]
    if printer.tensors and sidecar_name is not None:
        header.append(f"sidecar {quote(sidecar_name)}")
    return "\n".join([*header, body]) + "\n", printer.tensors
