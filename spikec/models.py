"""Load and save models by file suffix: the core's formats, and those installed targets bring.

The core reads ``.sir``, ``.nir``, ``.onnx`` and PyTorch files (``READERS``) and writes ``.sir``/``.nir``
(``WRITERS``); a target adds its own formats (``Target.formats``, e.g. a chip toolchain's network file), found by
suffix through ``spikec.plugins.target_formats``. A reader option given for a format that does not take
it is a usage error, not silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spikec.errors import InputError, SpikecError, UsageError
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


READERS: dict[str, Reader] = {
    ".sir": _read_sir,
    ".nir": _read_nir,
    ".onnx": _read_onnx,
    ".pt": _read_torch,
    ".pth": _read_torch,
    ".pt2": _read_torch,
}
WRITERS: dict[str, Writer] = {".sir": _write_sir, ".nir": _write_nir}
# the core readers' options that only some formats take (option -> suffixes); a target format declares its own
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {"batch_axis": (".onnx", ".pt", ".pth")}
CORE_OPTIONS = ("dt", "arch", "input_shape")  # options every core reader is passed (and may ignore)


def _target_reader(suffix: str) -> tuple[Reader, tuple[str, ...]] | None:
    from spikec.plugins import resolve, target_formats

    found = target_formats().get(suffix)
    if found is None or found[1].reader is None:
        return None
    target, fmt = found
    reader = resolve(found[1].reader, f"target '{target}' reader of {suffix} files")
    names = tuple(o.name for o in fmt.options)

    def read(path: Path, **options: Any) -> Graph:
        return reader(path, **{n: options.get(n) for n in names})  # type: ignore[operator]

    return read, names


def _target_writer(suffix: str) -> Writer | None:
    from spikec.plugins import resolve, target_formats

    found = target_formats().get(suffix)
    if found is None or found[1].writer is None:
        return None
    return resolve(found[1].writer, f"target '{found[0]}' writer of {suffix} files")  # type: ignore[return-value]


def _known(table: dict[str, Any], writable: bool) -> str:
    from spikec.plugins import target_formats

    extra = [s for s, (_, f) in target_formats().items() if (f.writer if writable else f.reader)]
    return ", ".join(sorted({*table, *extra}))


def _taking(option: str) -> list[str]:
    """The suffixes of the formats whose reader takes ``option``."""
    from spikec.plugins import target_formats

    extra = [s for s, (_, f) in target_formats().items() if any(o.name == option for o in f.options)]
    return sorted({*FORMAT_OPTIONS.get(option, ()), *extra})


def load_model(path: str | Path, **options: Any) -> Graph:
    """Read any supported model file into a verified graph (format chosen by suffix); every reader reads
    through ``spikec.safe_read``, and a ``dt`` option must be a finite number of seconds > 0."""
    from spikec.safe_read import check_file

    path = Path(path)
    check_file(path, expect="model file")  # a directory, FIFO or device is named as such (FileError)
    suffix = path.suffix.lower()
    if suffix in READERS:
        reader, takes = READERS[suffix], tuple(n for n, s in FORMAT_OPTIONS.items() if suffix in s)
    else:
        found = _target_reader(suffix)
        if found is None:
            shown = suffix or "(no suffix)"
            raise SpikecError(f"{path}: cannot read '{shown}' files; known: {_known(READERS, writable=False)}")
        reader, takes = found
    dt = options.get("dt")
    if dt is not None and not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise InputError(f"{path}: --dt must be a finite number of seconds per step > 0, got {dt}")
    for name, value in options.items():
        if value is not None and name not in CORE_OPTIONS and name not in takes:
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{path}: {flag} applies only to {'/'.join(_taking(name))} models, not to a '{suffix}' file; "
                "drop the option"
            )
    return reader(path, **options)


def save_model(graph: Graph, path: str | Path) -> None:
    """Write a graph (format chosen by suffix); the write is atomic."""
    path = Path(path)
    suffix = path.suffix.lower()
    writer = WRITERS.get(suffix) or _target_writer(suffix)
    if writer is None:
        raise SpikecError(
            f"{path}: cannot write '{suffix or '(no suffix)'}' files; known: {_known(WRITERS, writable=True)}"
        )
    writer(graph, path)
