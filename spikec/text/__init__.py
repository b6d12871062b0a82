"""The textual SIR form (.sir): a deterministic printer, a lark parser and file helpers.

Arrays larger than ``inline_limit`` elements live in an ``.npz`` sidecar next to the text,
referenced by name and sha256; docs/sir-format.md describes the format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from spikec.errors import ParseError
from spikec.fileio import Writer, atomic_write_files, integer_arrays, npz_writer
from spikec.ir.graph import Graph
from spikec.text.parser import build_graph, parse_graph, parse_tree, sidecar_name, uses_tensors
from spikec.text.printer import print_graph, to_text
from spikec.text.tensors import read_npz

__all__ = ["load_sir", "parse_graph", "print_graph", "save_sir", "to_text"]

MAX_TEXT_BYTES = 64 << 20  # the text of a .sir (large arrays live in the sidecar): ~400,000 nodes
PARSE_BYTES_PER_CHAR = 80  # measured: lark's tree of a .sir takes about 80 bytes per character of text


def save_sir(graph: Graph, path: str | os.PathLike[str], *, inline_limit: int = 16) -> None:
    """Write ``graph`` to ``path``; large arrays go to ``path.with_suffix('.npz')``.

    Both files are written in full before either replaces an old one (``spikec.fileio``), the sidecar first;
    a failed write changes neither.
    """
    path = Path(path)
    sidecar = path.with_suffix(".npz")
    if sidecar == path:
        raise ValueError(f"{path}: a .sir file cannot be named .npz (that is its sidecar's name)")
    text, tensors = print_graph(graph, sidecar_name=sidecar.name, inline_limit=inline_limit)
    data = text.encode("utf-8")

    def write_text(fh: IO[bytes]) -> None:
        fh.write(data)

    writes: dict[str | Path, Writer] = {sidecar: npz_writer(tensors, compress=integer_arrays)} if tensors else {}
    atomic_write_files({**writes, path: write_text})  # renamed in this order: the sidecar first


def load_sir(path: str | os.PathLike[str]) -> Graph:
    """Read a .sir file and, if it references large tensors, its sidecar (named in the header).

    Both are read through ``spikec.safe_read``: regular files only, the text at most ``MAX_TEXT_BYTES`` (parsing
    takes about 2.5 s per MB of text, and ``PARSE_BYTES_PER_CHAR`` bytes of memory per character).
    """
    from spikec.safe_read import check_memory, read_text

    path = Path(path)
    file = str(path)
    text = read_text(path, max_bytes=MAX_TEXT_BYTES, expect=".sir model")
    check_memory(len(text) * PARSE_BYTES_PER_CHAR, f"{file}: parsing {len(text):,} characters", "split the model")
    tree = parse_tree(text, file=file)
    tensors = None
    if uses_tensors(tree):
        name = sidecar_name(tree, text, file) or path.with_suffix(".npz").name
        if Path(name).name != name or name in ("", ".", ".."):
            raise ParseError(f"sidecar {name!r} must be a file name next to the .sir file", file=file)
        tensors = read_npz(path.parent / name, referenced_by=file)
    return build_graph(tree, text, file=file, tensors=tensors, verify=True)
