"""Import ONNX models into SIR: ``import_onnx(path_or_model) -> Graph``.

The model is checked (``onnx.checker``), its shapes inferred (``onnx.shape_inference``), and its
nodes lowered one by one in graph order. A node whose inputs are all constants (initializers,
``Constant`` nodes, ``Shape`` of an activation, results of such nodes) is evaluated at import
time with ``onnx.reference`` and becomes a constant, so the ``Shape → Gather → Concat → Reshape``
chains exporters emit fold away. Every other node goes to the handler registered for its op type
(``ONNX_HANDLERS``); an op without one raises ``FrontendError`` naming the op type, the node and
the supported ops. Every SIR node records ``origin="onnx:<node name or op type>"``.

**The batch axis.** SIR shapes are per sample. If every graph input's leading dimension is
symbolic or 1, axis 0 is the batch axis: it is stripped from every shape, ``axis`` attributes
count without it, and an op that acts on it (a Transpose moving it, a Reshape merging it, a
Softmax over it, ...) raises ``FrontendError`` saying so. Otherwise the ONNX shapes are one
sample's and the run-time batch is added in front. ``batch_axis=True/False`` overrides the rule.
Any other dynamic dimension must be fixed: export with a static shape or pass ``input_shapes``.

Graph inputs bound with ``constants={name: array}`` become constants (useful for inputs that are
really parameters, as in ONNX's operator tests). See docs/onnx-support.md for the op table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
import onnx.checker
import onnx.shape_inference
from google.protobuf.message import DecodeError

from spikec.errors import FrontendError
from spikec.frontends.onnx import (  # noqa: F401 - importing registers the handlers
    handlers_attention,
    handlers_math,
    handlers_nn,
    handlers_norm,
    handlers_shape,
    handlers_spikec,
)
from spikec.frontends.onnx.lowering import Lowering, sir_name
from spikec.frontends.onnx.registry import ONNX_HANDLERS, handler, supported_ops
from spikec.ir.graph import Graph

__all__ = ["ONNX_HANDLERS", "handler", "import_onnx", "load_onnx", "sir_name", "supported_ops"]


def load_onnx(path_or_model: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Read and check a model; returns it and the name used in messages (the file, or ``<model>``)."""
    if isinstance(path_or_model, onnx.ModelProto):
        model, file = path_or_model, "<model>"
    else:
        path = Path(path_or_model)
        file = str(path)
        if not path.is_file():
            raise FrontendError(f"{file}: no such file")
        try:
            model = onnx.load(str(path))
        except (DecodeError, ValueError, OSError, RuntimeError) as err:
            raise FrontendError(f"{file}: not a readable ONNX model: {type(err).__name__}: {err}") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FrontendError(f"{file}: the ONNX checker rejects the model: {first}") from None
    return model, file


def import_onnx(
    path_or_model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    batch_axis: bool | None = None,
    constants: Mapping[str, Any] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> Graph:
    """Import an ONNX model (a file or a ``ModelProto``) into a verified SIR graph.

    ``batch_axis``: None applies the rule above; True/False forces axis 0 to be / not to be the
    batch axis. ``constants``: values for graph inputs that should be constants. ``input_shapes``:
    full ONNX shapes (``-1`` for a symbolic batch) for graph inputs, replacing declared ones.
    """
    model, file = load_onnx(path_or_model)
    if input_shapes:
        model = _with_input_shapes(model, input_shapes, file)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except (onnx.shape_inference.InferenceError, RuntimeError) as err:
        raise FrontendError(f"{file}: ONNX shape inference fails: {err}") from None
    lowering = Lowering(model, file=file)
    return lowering.run(batch_axis=batch_axis, constants=dict(constants or {}), input_shapes=dict(input_shapes or {}))


def _with_input_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]], file: str) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inputs = {vi.name: vi for vi in copy.graph.input}
    for name, shape in shapes.items():
        if name not in inputs:
            raise FrontendError(f"{file}: input_shapes names '{name}', which is not a graph input: {list(inputs)}")
        dims = inputs[name].type.tensor_type.shape.dim
        del dims[:]
        for d in shape:
            dim = dims.add()
            if int(d) < 0:
                dim.dim_param = "batch"
            else:
                dim.dim_value = int(d)
    return copy
