"""The parser of the textual SIR form (.sir): lark grammar ``sir.lark`` -> verified ``Graph``.

Every problem in the text is a ``ParseError`` with ``file:line:col``, the source line and a caret;
a graph that parses but does not verify raises ``VerifyError`` prefixed with the position of the
node (or edge) it names.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.resources
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from spikec.errors import ParseError, TargetError, VerifyError
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import NODE_KINDS, FieldKind, Node
from spikec.safe_read.limits import MAX_NESTING, int_text
from spikec.text.printer import VERSION, node_ref, unquote
from spikec.text.tensors import DTYPES, BadElement, dtype_code, parse_elements, tensor_hash

_INT = re.compile(r"[+-]?\d+")
_TERMINAL_WORDS = {
    "NODE": "a node name like %x",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a string like "text"',
    "DTYPE": "a dtype (" + ", ".join(DTYPES) + ")",
    "VALUES": "array values like {1.0, 2.0}",
    "ARROW": "'->', '~>'",
    "$END": "end of file",
}
_FORMS = {
    "array": "an array like f32[2]{1.0, 2.0}",
    "none": "none",
    "ints": "a list of integers like [1, 2]",
    "number": "a number",
    "string": 'a string like "text"',
    "graph": "a nested 'graph dt=... { ... }' block",
}
Pos = Token | Tree


@functools.cache
def _lark() -> Lark:
    grammar = importlib.resources.files("spikec.text").joinpath("sir.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@dataclasses.dataclass(frozen=True)
class _Field:
    """Which field of which node a value belongs to (for messages)."""

    kind: str
    name: str
    node: str

    def expects(self, what: str) -> str:
        return f"field '{self.name}' of {self.kind} node {node_ref(self.node)} expects {what}"


class _Builder:
    """Turns the parse tree into nodes and graphs, reporting problems at their position."""

    def __init__(self, text: str, file: str, tensors: Mapping[str, np.ndarray] | None, verify: bool) -> None:
        self.lines = text.split("\n")
        self.file, self.tensors, self.verify = file, tensors, verify
        self.depth = 0  # graphs being built: a Subgraph's graph is one deeper

    def error(self, message: str, at: Pos) -> ParseError:
        line, col = _position(at)
        source = self.lines[line - 1].rstrip("\r") if 0 < line <= len(self.lines) else ""
        return _located(message, self.file, line, col, source)

    # -- graphs and nodes -----------------------------------------------------------------------
    def graph(self, tree: Tree) -> Graph:
        if self.depth >= MAX_NESTING:
            raise self.error(f"graphs nested more than {MAX_NESTING} deep: spikec reads at most {MAX_NESTING}", tree)
        self.depth += 1
        try:
            return self._graph(tree)
        finally:
            self.depth -= 1

    def _graph(self, tree: Tree) -> Graph:
        dt_token, *statements = _kids(tree)
        dt = self.dt(dt_token)
        nodes: dict[str, Node] = {}
        where: dict[str, Token] = {}
        edges: list[tuple[Edge, Token]] = []
        ends: list[Token] = []
        for stmt in statements:
            if stmt.data == "node":
                name, node = self.node(stmt)
                if name in nodes:
                    first = where[name].line
                    message = f"node {node_ref(name)} is defined twice (first on line {first})"
                    raise self.error(message, stmt)
                nodes[name], where[name] = node, _kids(stmt)[0]
            else:
                src, arrow, dst = _kids(stmt)
                edges.append((Edge(self.ref(src), self.ref(dst), arrow == "~>"), src))
                ends.extend((src, dst))
        for token in ends:
            if self.ref(token) not in nodes:
                known = ", ".join(node_ref(n) for n in nodes)
                raise self.error(f"there is no node named {token} (nodes: {known})", token)
        try:
            return Graph(nodes, [e for e, _ in edges], dt=dt, verify=self.verify)
        except VerifyError as err:
            raise self.locate(err, where, edges) from err

    def node(self, tree: Tree) -> tuple[str, Node]:
        name_token, kind_token, *rest = _kids(tree)
        name = self.ref(name_token)
        origin = ""
        if rest and rest[-1].data == "origin":
            origin = self.string(_kids(rest.pop())[0])
        cls = NODE_KINDS.get(str(kind_token))
        if cls is None:  # a target's kind: its dialect brings it
            from spikec.plugins import node_kind

            try:
                cls = node_kind(str(kind_token))
            except TargetError as err:
                broken = str(err).partition(" (targets that failed to load")[2]
                raise self.error(_unknown_kind(str(kind_token)) + (f" (targets that failed to load{broken}" if broken
                                 else ""), kind_token) from None  # fmt: skip
        kinds = cls.field_kinds()
        valid = f"fields of {cls.kind}: {', '.join(kinds) or '(none)'}"
        values: dict[str, Any] = {}
        for field in rest:
            field_token, value = _kids(field)
            fname = str(field_token)
            if fname not in kinds:
                raise self.error(f"{cls.kind} has no field '{fname}'; {valid}", field_token)
            if fname in values:
                raise self.error(f"field '{fname}' is given twice", field_token)
            ctx = _Field(cls.kind, fname, name)
            values[fname] = CONVERTERS[kinds[fname]](self, value, ctx)
        missing = [f.name for f in cls.param_fields() if f.name not in values and _required(f)]
        if missing:
            listed = ", ".join(f"'{m}'" for m in missing)
            message = f"{cls.kind} node {node_ref(name)} is missing field {listed}; {valid}"
            raise self.error(message, kind_token)
        try:
            return name, cls(origin=origin, **values)
        except (TypeError, ValueError) as err:
            message = f"cannot build {cls.kind} node {node_ref(name)}: {err}"
            raise self.error(message, kind_token) from None

    def locate(self, err: VerifyError, where: Mapping[str, Token], edges: list[tuple[Edge, Token]]) -> VerifyError:
        """``err`` prefixed with ``file:line:col`` of the edge or node its message names first."""
        message = str(err)
        at: Token | None = next((tok for e, tok in edges if str(e) in message), None)
        if at is None:
            names = (m.group(1) for m in re.finditer(r"'([^']*)'", message))
            at = next((where[n] for n in names if n in where), None)
        if at is None:
            return err
        return VerifyError(f"{self.file}:{at.line}:{at.column}: {message}")

    # -- values ---------------------------------------------------------------------------------
    def expect(self, tree: Tree, ctx: _Field, *forms: str) -> str:
        if tree.data not in forms:
            wanted = " or ".join(_FORMS[f] for f in forms)
            raise self.error(f"{ctx.expects(wanted)}, got {_FORMS[str(tree.data)]}", tree)
        return str(tree.data)

    def array(self, tree: Tree, ctx: _Field) -> np.ndarray:
        dtype_token, *dims, body = _kids(tree)
        dtype = DTYPES[str(dtype_token)]
        shape = tuple(self.integer(d, minimum=0) for d in dims)
        if isinstance(body, Tree):
            return self.tensor(body, dtype, shape)
        return self.values(body, dtype, shape)

    def values(self, token: Token, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The elements of an inline ``{...}`` block (one token, split by ``parse_elements``)."""
        try:
            arr = parse_elements(token[1:-1], dtype)
        except BadElement as err:
            before = token[: err.offset + 1]
            line = (token.line or 0) + before.count("\n")
            col = len(before) - before.rfind("\n") if "\n" in before else (token.column or 0) + len(before)
            raise self.error(str(err), Token("ITEM", "", line=line, column=col)) from None
        if arr.size != math.prod(shape):
            head = f"{dtype_code(dtype)}[{','.join(map(str, shape))}]"
            raise self.error(f"{head} needs {math.prod(shape)} values, got {arr.size}", token)
        return arr.reshape(shape)

    def tensor(self, tree: Tree, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        name_token, hash_token = _kids(tree)
        name, expected = self.string(name_token), self.string(hash_token)
        if self.tensors is None:
            raise self.error(
                f"tensor '{name}' is stored in a sidecar file, but no tensors were given: "
                "load the file with load_sir(path) or pass tensors= to parse_graph",
                tree,
            )
        arr = self.tensors.get(name)
        if arr is None:
            raise self.error(
                f"tensor '{name}' is missing from the sidecar: the sidecar is stale or corrupt (re-save the model)",
                name_token,
            )
        try:
            actual, code = tensor_hash(arr), dtype_code(arr.dtype)
        except ValueError:
            actual, code = "(unsupported dtype)", str(arr.dtype)
        if arr.dtype != dtype or arr.shape != shape or actual != expected:
            raise self.error(
                f"sidecar tensor '{name}' does not match the text: the text expects "
                f"{dtype_code(dtype)}{list(shape)} with sha256 {expected}, the sidecar holds "
                f"{code}{list(arr.shape)} with sha256 {actual}; the sidecar is stale or "
                "corrupt (re-save the model)",
                name_token,
            )
        return np.array(arr, copy=True)

    # -- tokens ---------------------------------------------------------------------------------
    def dt(self, token: Token) -> float:
        """A graph's dt: seconds per step, finite and > 0 (0, negative, nan or inf would run and spike never)."""
        value = float(token)
        if not (math.isfinite(value) and value > 0):
            raise self.error(f"dt must be a finite number of seconds per step > 0, got {token}", token)
        return value

    def int64(self, token: Token, what: str) -> int:
        """An integer token that fits int64."""
        value = int_text(token) if _INT.fullmatch(token) else None
        if value is None:
            shown = token if len(token) <= 24 else f"{token[:12]}... ({len(token)} characters)"
            beyond = " (outside the int64 range)" if _INT.fullmatch(token) else ""
            raise self.error(f"{what}, got {shown}{beyond}", token)
        return value

    def integer(self, token: Token, *, minimum: int | None = None) -> int:
        value = self.int64(token, "expected an integer")
        if minimum is not None and value < minimum:
            raise self.error(f"expected an integer >= {minimum}, got {value}", token)
        return value

    def string(self, token: Token) -> str:
        try:
            return unquote(token)
        except ValueError as err:
            raise self.error(str(err), token) from None

    def ref(self, token: Token) -> str:
        if token[1] != '"':
            return str(token[1:])
        return self.string(Token.new_borrow_pos("STRING", token[1:], token))


def _token(b: _Builder, tree: Tree, ctx: _Field, form: str) -> Token:
    b.expect(tree, ctx, form)
    token: Token = _kids(tree)[0]
    return token


def _int_field(b: _Builder, tree: Tree, ctx: _Field) -> int:
    return b.int64(_token(b, tree, ctx, "number"), ctx.expects("an integer"))


def _array(b: _Builder, tree: Tree, ctx: _Field) -> np.ndarray:
    b.expect(tree, ctx, "array")
    return b.array(tree, ctx)


def _optional_array(b: _Builder, tree: Tree, ctx: _Field) -> np.ndarray | None:
    return None if b.expect(tree, ctx, "array", "none") == "none" else b.array(tree, ctx)


def _ints_field(b: _Builder, tree: Tree, ctx: _Field) -> tuple[int, ...]:
    b.expect(tree, ctx, "ints")
    return tuple(b.integer(x) for x in _kids(tree))


def _graph_field(b: _Builder, tree: Tree, ctx: _Field) -> Graph:
    b.expect(tree, ctx, "graph")
    return b.graph(tree)


Converter = Callable[[_Builder, Tree, _Field], Any]

CONVERTERS: dict[FieldKind, Converter] = {
    FieldKind.ARRAY: _array,
    FieldKind.OPTIONAL_ARRAY: _optional_array,
    FieldKind.INTS: _ints_field,
    FieldKind.INT: _int_field,
    FieldKind.FLOAT: lambda b, t, ctx: float(_token(b, t, ctx, "number")),
    FieldKind.STR: lambda b, t, ctx: b.string(_token(b, t, ctx, "string")),
    FieldKind.GRAPH: _graph_field,
}


def _kids(tree: Tree) -> list[Any]:
    """A tree's children, typed loosely (tokens or subtrees, as the grammar says)."""
    return list(tree.children)


def _required(field: dataclasses.Field[Any]) -> bool:
    missing = dataclasses.MISSING
    return field.default is missing and field.default_factory is missing


def _position(at: Pos) -> tuple[int, int]:
    if isinstance(at, Token):
        return at.line or 0, at.column or 0
    meta = at.meta
    return (meta.line, meta.column) if not meta.empty else (0, 0)


def _unknown_kind(kind: str) -> str:
    close = difflib.get_close_matches(kind, NODE_KINDS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown node kind '{kind}'{hint}; known kinds: {', '.join(sorted(NODE_KINDS))}"


# -- syntax errors ----------------------------------------------------------------------------
def _describe(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    pattern = _lark().get_terminal(name).pattern
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name.lower()


def _syntax_error(err: UnexpectedInput, text: str, file: str) -> ParseError:
    lines = text.split("\n")
    line, col = err.line, err.column
    if isinstance(err, UnexpectedToken):
        expected = set(err.accepts or err.expected)
        if err.token.type == "$END":
            got = "end of file"
            line = max(i + 1 for i, src in enumerate(lines) if src.strip() or i == 0)
            col = len(lines[line - 1].rstrip()) + 1
        else:
            got = f"'{err.token}'"
    elif isinstance(err, UnexpectedCharacters):
        expected = set(err.allowed)
        got = f"character {err.char!r}"
    else:
        expected, got = set(getattr(err, "expected", ())), "end of file"
    words = sorted({_describe(n) for n in expected}, key=lambda w: (not w.startswith("'"), w))
    wanted = f"expected {words[0]}" if len(words) == 1 else f"expected one of: {', '.join(words)}"
    source = lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
    message = f"unexpected {got}; {wanted}"
    return _located(message, file, line, col, source)


def _located(message: str, file: str, line: int, col: int, source: str, width: int = 100) -> ParseError:
    """A ParseError showing at most ``width`` characters of the source line around the caret."""
    if len(source) <= width:
        return ParseError(message, file=file, line=line, col=col, source_line=source)
    start = max(0, min(col - 1 - width // 2, len(source) - width))
    shown = ("..." if start else "") + source[start : start + width] + "..."
    caret = col - start + (3 if start else 0)
    err = ParseError(message, file=file, line=line, col=col)
    err.source_line = shown
    err.args = (f"{err}\n    {shown}\n    {' ' * max(caret - 1, 0)}^",)
    return err


def parse_tree(text: str, *, file: str = "<string>") -> Tree:
    """The lark parse tree of ``text``; a syntax error is a ParseError with what was expected."""
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, text, file) from None
    version = _kids(tree)[0]
    if version != str(VERSION):
        raise _Builder(text, file, None, False).error(
            f"unsupported .sir version {version}: this spikec reads version {VERSION}", version
        )
    return tree


def sidecar_name(tree: Tree, text: str, file: str) -> str | None:
    """The sidecar file named in the header, if any."""
    header = next((c for c in _kids(tree) if isinstance(c, Tree) and c.data == "sidecar"), None)
    return None if header is None else _Builder(text, file, None, False).string(_kids(header)[0])


def uses_tensors(tree: Tree) -> bool:
    """True when the text references sidecar tensors."""
    return any(True for _ in tree.find_data("tensor"))


def build_graph(tree: Tree, text: str, *, file: str, tensors: Mapping[str, np.ndarray] | None, verify: bool) -> Graph:
    """The Graph of a parse tree from ``parse_tree``."""
    body = _kids(tree)[-1]
    return _Builder(text, file, tensors, verify).graph(body)


def parse_graph(
    text: str,
    *,
    file: str = "<string>",
    tensors: Mapping[str, np.ndarray] | None = None,
    verify: bool = True,
) -> Graph:
    """Parse .sir ``text`` into a Graph; ``tensors`` resolves ``@tensor`` sidecar references.

    ``verify=False`` skips graph verification (to inspect a broken model); keep it on otherwise.
    """
    tree = parse_tree(text, file=file)
    return build_graph(tree, text, file=file, tensors=tensors, verify=verify)
