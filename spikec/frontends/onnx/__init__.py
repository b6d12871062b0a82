"""Import ONNX models into SIR: ``import_onnx(path_or_model) -> Graph``.

The model is checked (``onnx.checker``), upgraded when its opset is older than the handlers read
(``opsets``: opsets 9 to 28; newer ones are refused), its shapes inferred
(``onnx.shape_inference``), and its nodes lowered one by one in graph order. A node whose inputs
are all constants (initializers, ``Constant`` nodes, ``Shape`` of an activation, results of such
nodes) is evaluated at import time (``folding``: the node alone in a model of the source's
opsets, run by ``onnx.reference``) and becomes a constant, so the ``Shape → Gather → Concat →
Reshape`` chains exporters emit fold away. Every other node goes to the handler registered for
its op type (``ONNX_HANDLERS``); an op without one raises ``FrontendError`` naming the op type,
the node and the supported ops. Every SIR node records ``origin="onnx:<node name or op type>"``.

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

import numpy as np
import onnx
import onnx.checker
import onnx.shape_inference
from google.protobuf.message import Message

from spikec.errors import FrontendError
from spikec.frontends.onnx import (  # noqa: F401 - importing registers the handlers
    handlers_attention,
    handlers_control,
    handlers_math,
    handlers_nn,
    handlers_norm,
    handlers_shape,
    handlers_spikec,
)
from spikec.frontends.onnx.batch_plan import FLOAT_TYPES, BatchAxis, plan_batch
from spikec.frontends.onnx.external import load_model
from spikec.frontends.onnx.layout import BatchAxisError
from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.opsets import check_not_newer, upgrade
from spikec.frontends.onnx.protos import initializer_array, sir_name
from spikec.frontends.onnx.registry import ONNX_HANDLERS, handler, supported_ops
from spikec.ir.graph import Graph

__all__ = ["ONNX_HANDLERS", "handler", "import_onnx", "load_onnx", "sir_name", "skeleton", "supported_ops"]

SKELETON_MAX_ELEMENTS = 1024  # float initializers larger than this are checked by type and shape only


def _read(path_or_model: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, "<model>"
    path = Path(path_or_model)
    return load_model(path), str(path)  # through spikec.safe_read; external data only from the model's folder


def _copy_fields(src: Message, dst: Message, skip: str) -> None:
    """Copy every set field of ``src`` except ``skip`` into ``dst`` (no serialisation round trip)."""
    for field, value in src.ListFields():
        if field.name == skip:
            continue
        if field.is_repeated:
            getattr(dst, field.name).extend(value)
        elif field.message_type is not None:
            getattr(dst, field.name).CopyFrom(value)
        else:
            setattr(dst, field.name, value)


def skeleton(model: onnx.ModelProto, max_elements: int = SKELETON_MAX_ELEMENTS) -> onnx.ModelProto:
    """``model`` without the data of its large float initializers, which become typed graph inputs.

    The checker and shape inference serialise the whole model (several copies of every weight, and
    a hard 2 GB protobuf limit); they need the weights' types and shapes, never their values, and the
    values shape inference does read (Reshape shapes, Slice bounds, pads) are small integer tensors,
    which stay. The lowering reads the weights from ``model`` itself and reports unreadable ones.
    """
    graph = onnx.GraphProto()
    _copy_fields(model.graph, graph, skip="initializer")
    listed = {vi.name: vi for vi in graph.input}
    for init in model.graph.initializer:
        size = int(np.prod(init.dims, dtype=np.int64))
        if init.data_type in FLOAT_TYPES and size > max_elements:
            info = listed.get(init.name) or graph.input.add()
            info.CopyFrom(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            graph.initializer.append(init)
    light = onnx.ModelProto()
    _copy_fields(model, light, skip="graph")
    light.graph.CopyFrom(graph)
    return light


def _check(model: onnx.ModelProto, file: str) -> None:
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FrontendError(f"{file}: the ONNX checker rejects the model: {first}") from None
    except UnicodeDecodeError:  # the checker's message quotes a string field that is not UTF-8
        raise FrontendError(f"{file}: the ONNX checker rejects the model: a name or text in it is not UTF-8") from None


def load_onnx(path_or_model: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Read and check a model; returns it and the name used in messages (the file, or ``<model>``)."""
    model, file = _read(path_or_model)
    check_not_newer(model, file)
    _check(skeleton(model), file)
    return model, file


def import_onnx(
    path_or_model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    batch_axis: BatchAxis = None,
    constants: Mapping[str, Any] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    sample_shape: Sequence[int] | None = None,
) -> Graph:
    """Import an ONNX model (a file or a ``ModelProto``) into a verified SIR graph.

    ``batch_axis``: ``None``/``"auto"`` applies the rule above; an int puts the batch on that axis of
    every input (``True``: 0); ``"none"``/``False`` says there is none. ``constants``: values for
    graph inputs that should be constants. ``input_shapes``: full ONNX shapes (``-1`` for a symbolic
    batch) for graph inputs, replacing declared ones. ``sample_shape``: the per-sample shape of a
    one-input model (the CLI's ``--input-shape``); a declared leading batch axis is kept in front of it.

    The checker, the opset upgrade and shape inference run on the model's ``skeleton`` (weights as
    typed inputs): a model older than opset ``opsets.MIN_OPSET`` is upgraded to it, one newer than
    ``opsets.MAX_OPSET`` is refused. The weights are read into arrays once; for a model read from a
    file the protobuf is then dropped, and the lowering drops each weight after its last reader, so
    the peak memory stays near twice the weight bytes.
    """
    model, file = _read(path_or_model)
    check_not_newer(model, file)
    if sample_shape is not None:
        input_shapes = {**_sample_input_shape(model, sample_shape, set(constants or {}), file), **(input_shapes or {})}
    light = skeleton(model)
    if input_shapes:
        _set_input_shapes(light, input_shapes, {vi.name for vi in model.graph.input}, file)
    _check(light, file)
    upgraded = upgrade(light, file)
    if upgraded is not light:
        _check(upgraded, file)
    try:
        inferred = onnx.shape_inference.infer_shapes(upgraded, strict_mode=False).graph
    except (onnx.shape_inference.InferenceError, RuntimeError, UnicodeDecodeError) as err:
        raise FrontendError(f"{file}: ONNX shape inference fails: {err}") from None
    types = {vi.name: vi.type.tensor_type.elem_type for vi in [*inferred.input, *inferred.value_info, *inferred.output]}
    del inferred
    constants = dict(constants or {})
    listed = {vi.name for vi in model.graph.input}
    unknown = sorted(set(constants) - listed)
    if unknown:
        raise FrontendError(f"{file}: constants {unknown} are not graph inputs; inputs: {sorted(listed)}")
    weights = {init.name: initializer_array(init, file) for init in model.graph.initializer}
    structure = onnx.ModelProto()
    if upgraded is light:
        _copy_fields(model, structure, skip="graph")
        _copy_fields(model.graph, structure.graph, skip="initializer")
    else:  # the upgraded skeleton's nodes; its small initializers (the converter may add some), our weights
        weights.update({init.name: initializer_array(init, file) for init in upgraded.graph.initializer})
        _copy_fields(upgraded, structure, skip="graph")
        _copy_fields(upgraded.graph, structure.graph, skip="initializer")
        _drop_stand_ins(structure.graph, listed, set(weights))
    del model, light, upgraded  # when read from a file, this frees the protobuf copy of the weights
    live = [vi for vi in structure.graph.input if vi.name not in weights and vi.name not in constants]
    plan = plan_batch(structure.graph, file, live, batch_axis, dict(input_shapes or {}))
    kept = dict(weights) if plan.fallback else None  # a retry without a batch axis needs them again
    try:
        return Lowering(structure, file=file, initializers=weights, types=types).run(plan=plan, constants=constants)
    except BatchAxisError:
        if kept is None:
            raise
    del weights
    plan = plan_batch(structure.graph, file, live, "none", dict(input_shapes or {}))
    return Lowering(structure, file=file, initializers=kept, types=types).run(plan=plan, constants=constants)


def _drop_stand_ins(graph: onnx.GraphProto, listed: set[str], weights: set[str]) -> None:
    """Remove the graph inputs ``skeleton`` added in place of weights (those the source did not list)."""
    keep = [vi for vi in graph.input if vi.name in listed or vi.name not in weights]
    del graph.input[:]
    graph.input.extend(keep)


def _set_input_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]], names: set[str], file: str) -> None:
    inputs = {vi.name: vi for vi in model.graph.input if vi.name in names}
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


def _sample_input_shape(
    model: onnx.ModelProto, sample: Sequence[int], bound: set[str], file: str
) -> dict[str, tuple[int, ...]]:
    """``{input: full shape}`` for the one live input of ``model`` from a per-sample shape."""
    weights = {init.name for init in model.graph.initializer} | bound
    live = [vi for vi in model.graph.input if vi.name not in weights]
    if len(live) != 1:
        raise FrontendError(
            f"{file}: --input-shape gives one input's shape, but the model has inputs {[vi.name for vi in live]}: "
            "pass input_shapes={name: shape, ...} to import_onnx"
        )
    (vi,) = live
    declared = vi.type.tensor_type.shape.dim
    sample = tuple(int(d) for d in sample)
    if len(declared) == len(sample) + 1:
        lead = declared[0]
        batch = lead.dim_value if lead.HasField("dim_value") and lead.dim_value > 0 else -1
        return {vi.name: (batch, *sample)}
    if len(declared) in (0, len(sample)):
        return {vi.name: sample}
    raise FrontendError(
        f"{file}: --input-shape {','.join(map(str, sample))} has {len(sample)} axes, but input '{vi.name}' has "
        f"{len(declared)} (batch axis included): give the shape of one sample"
    )
