"""The export variants: torch's dynamo and TorchScript ONNX exporters, static batch 1 or 2, a dynamic
batch, and old opsets. Each is the call a user writes, with default settings otherwise."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .models import CorpusModel

DYNAMIC_EXPORT_BATCH = 2  # the example batch of a dynamic export (torch.export specialises a batch of 1)


@dataclasses.dataclass(frozen=True)
class Variant:
    """``batch``: the static batch, or None for a dynamic one; ``opset``: None for the exporter's default.
    ``walked``: part of the corpus walk (the others run on demand: ``python -m tests.corpus.walk M V``)."""

    name: str
    dynamo: bool
    batch: int | None
    opset: int | None = None
    families: tuple[str, ...] = ("transformer", "cnn")
    walked: bool = True

    @property
    def example_batch(self) -> int:
        return DYNAMIC_EXPORT_BATCH if self.batch is None else self.batch

    def export_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``torch.onnx.export`` besides the model, inputs and file."""
        kwargs: dict[str, Any] = {"dynamo": self.dynamo}
        if self.opset is not None:
            kwargs["opset_version"] = self.opset
        if self.batch is None and self.dynamo:
            kwargs["dynamic_shapes"] = ({0: "batch"},)
        elif self.batch is None:
            axes = {"x": {0: "batch"}, "y": {0: "batch"}}
            kwargs |= {"input_names": ["x"], "output_names": ["y"], "dynamic_axes": axes}
        return kwargs

    @property
    def call(self) -> str:
        """The export call, as the doc shows it."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.export_kwargs().items())
        shape = "N" if self.batch is None else str(self.batch)
        return f"torch.onnx.export(model, (x,), f, {args})  # x: ({shape}, ...)"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("dynamo-b1", dynamo=True, batch=1),
        Variant("dynamo-b2", dynamo=True, batch=2, walked=False),  # fails as torchscript-b2 does; dynamo is slow
        Variant("dynamo-dyn", dynamo=True, batch=None),
        Variant("torchscript-b1", dynamo=False, batch=1),
        Variant("torchscript-b2", dynamo=False, batch=2),
        Variant("torchscript-dyn", dynamo=False, batch=None),
        Variant("torchscript-opset11", dynamo=False, batch=1, opset=11, families=("cnn",)),
        Variant("torchscript-opset9", dynamo=False, batch=1, opset=9, families=("cnn",)),
    ]
}


class ExportError(Exception):
    """The exporter (not spikec) failed; the message is the exporter's first line."""


def export(model: CorpusModel, variant: Variant, path: Path) -> None:
    """Build ``model`` and write it to ``path`` with ``variant``'s exporter call (quietly)."""
    module = model.build()
    x = torch.from_numpy(model.inputs(variant.example_batch, seed=1))
    try:
        with _quiet():
            torch.onnx.export(module, (x,), str(path), **variant.export_kwargs())
    except Exception as err:  # the exporters raise many types
        path.unlink(missing_ok=True)
        raise ExportError(describe_exception(err)) from err


def describe_exception(err: BaseException) -> str:
    """``Type: first line``; for a wrapper (the dynamo exporter's ConversionError), its root cause too."""
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    if root is err:
        return f"{type(err).__name__}: {_first_line(str(err))}"
    wrapper = _first_line(str(err)).split(". ")[0]  # e.g. "Failed to decompose the FX graph for ONNX compatibility"
    return f"{type(err).__name__}: {wrapper} (caused by {type(root).__name__}: {_first_line(str(root))})"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in _ANSI.sub("", text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print progress, log optional-dependency notes (torchvision ops) and warn; keep it out."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
