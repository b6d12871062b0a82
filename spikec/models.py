"""Load and save models by file suffix: one registry of readers and one of writers.

Later front ends (ONNX, PyTorch, netx) add their suffixes here; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from spikec.errors import SpikecError, UsageError
from spikec.ir.graph import Graph

Reader = Callable[..., Graph]
Writer = Callable[[Graph, Path], None]


def _read_sir(path: Path, **options: Any) -> Graph:
    from spikec.text import load_sir

    return load_sir(path)


def _write_sir(graph: Graph, path: Path) -> None:
    from spikec.text import save_sir

    save_sir(graph, path)


def _read_nir(path: Path, **options: Any) -> Graph:
    from spikec.frontends.nir_import import import_nir

    return import_nir(path, dt=options.get("dt"))


def _write_nir(graph: Graph, path: Path) -> None:
    from spikec.frontends.nir_export import export_nir

    export_nir(graph, path)


def _read_torch(path: Path, **options: Any) -> Graph:
    from spikec.frontends.torch_import import import_torch_file

    return import_torch_file(
        path, arch=options.get("arch"), input_shape=options.get("input_shape"), batch_axis=options.get("batch_axis")
    )


def _read_onnx(path: Path, **options: Any) -> Graph:
    from spikec.frontends.onnx import import_onnx

    graph = import_onnx(path, sample_shape=options.get("input_shape"), batch_axis=options.get("batch_axis"))
    dt = options.get("dt")
    return graph if dt is None else graph.replace(dt=dt)


def _read_netx(path: Path, **options: Any) -> Graph:
    from spikec.frontends.netx import import_netx

    return import_netx(
        path, reset_interval=options.get("reset_interval") or 0, reset_offset=options.get("reset_offset") or 0
    )


def _write_netx(graph: Graph, path: Path) -> None:
    from spikec.frontends.netx_export import export_netx

    export_netx(graph, path)


READERS: dict[str, Reader] = {
    ".sir": _read_sir,
    ".nir": _read_nir,
    ".onnx": _read_onnx,
    ".pt": _read_torch,
    ".pth": _read_torch,
    ".pt2": _read_torch,
    ".net": _read_netx,
}
WRITERS: dict[str, Writer] = {".sir": _write_sir, ".nir": _write_nir, ".net": _write_netx}
# reader options only some formats take (option -> suffixes): given for another format, they are a usage
# error, not silently ignored
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {
    "reset_interval": (".net",),
    "reset_offset": (".net",),
    "batch_axis": (".onnx", ".pt", ".pth"),
}


def _lookup(table: dict[str, Any], path: Path, what: str) -> Any:
    suffix = path.suffix.lower()
    if suffix not in table:
        raise SpikecError(f"{path}: cannot {what} '{suffix or '(no suffix)'}' files; known: {', '.join(sorted(table))}")
    return table[suffix]


def load_model(path: str | Path, **options: Any) -> Graph:
    """Read any supported model file into a verified graph (format chosen by suffix)."""
    path = Path(path)
    if not path.exists():
        raise SpikecError(f"{path}: no such file")
    reader: Reader = _lookup(READERS, path, "read")
    suffix = path.suffix.lower()
    for name, suffixes in FORMAT_OPTIONS.items():
        if options.get(name) is not None and suffix not in suffixes:
            raise UsageError(
                f"{path}: --{name.replace('_', '-')} applies only to {'/'.join(suffixes)} models, "
                f"not to a '{suffix}' file; drop the option"
            )
    return reader(path, **options)


def save_model(graph: Graph, path: str | Path) -> None:
    """Write a graph (format chosen by suffix); the write is atomic."""
    path = Path(path)
    writer: Writer = _lookup(WRITERS, path, "write")
    writer(graph, path)
