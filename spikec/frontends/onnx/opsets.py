"""Which default-domain (``ai.onnx``) opsets the ONNX front end reads, and the upgrade of older ones.

The handlers implement every op they lower as it is defined from opset ``MIN_OPSET`` through
``MAX_OPSET``: the attribute forms of opsets 9–12 (``Slice`` < 10, ``Pad``/``Clip`` < 11,
``Squeeze``/``Unsqueeze``/``Split``/``Softmax`` < 13, ``Reduce*`` < 18) and the input forms after
them. Opset 9 is where the last of them to change meaning took its present form
(``BatchNormalization`` dropped ``spatial``); opsets 26–28 changed none of them but by new element
types (``Cast``, ``Celu``, ``Range``'s float16 ``stash_type``, which only folding meets).

A model below ``MIN_OPSET`` is upgraded to ``MIN_OPSET`` with ``onnx.version_converter`` (its
adapters rewrite ``broadcast`` attributes, ``BatchNormalization``'s ``spatial``, ...), one opset
at a time with shapes inferred before each step. The converter serialises the model several
times, so it runs on the weight-less ``skeleton``; the weights are put back by name afterwards.
A model above ``MAX_OPSET`` is refused: its ops may mean something the handlers do not know.
"""

from __future__ import annotations

import onnx
import onnx.shape_inference
import onnx.version_converter

from spikec.errors import FrontendError

MIN_OPSET = 9
MAX_OPSET = 28
DEFAULT_DOMAINS = ("", "ai.onnx")


def default_opset(model: onnx.ModelProto) -> int:
    """The model's ``ai.onnx`` opset version (1 when it imports none, as ONNX assumes)."""
    return next((int(o.version) for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 1)


def supported_range() -> str:
    return f"{MIN_OPSET} to {MAX_OPSET}"


def check_not_newer(model: onnx.ModelProto, file: str) -> None:
    """``FrontendError`` when the model's opset is newer than the handlers know (or named twice, differently)."""
    versions = sorted({int(o.version) for o in model.opset_import if o.domain in DEFAULT_DOMAINS})
    if len(versions) > 1:
        raise FrontendError(
            f"{file}: the model imports the default ONNX domain at several opsets {versions}; it must name one "
            "(re-export the model)"
        )
    opset = default_opset(model)
    if opset > MAX_OPSET:
        raise FrontendError(
            f"{file}: the model uses ONNX opset {opset}, newer than spikec supports (opsets {supported_range()}); "
            f"re-export it with opset {MAX_OPSET} or older (torch.onnx.export(..., opset_version={MAX_OPSET}))"
        )


def upgrade(light: onnx.ModelProto, file: str) -> onnx.ModelProto:
    """``light`` (a weight-less skeleton) converted to ``MIN_OPSET`` when it is older; else ``light``.

    A converter failure (an op without an adapter, an attribute value the newer op cannot express)
    is a ``FrontendError`` naming both opsets and the converter's message.
    """
    opset = default_opset(light)
    if opset >= MIN_OPSET:
        return light
    try:
        for version in range(opset + 1, MIN_OPSET + 1):
            # One opset at a time, shapes inferred before each: the adapters read the shapes of intermediate
            # values (Gemm's broadcast), which opset-1 ops without shape inference (Relu-1) leave unknown.
            light = onnx.version_converter.convert_version(onnx.shape_inference.infer_shapes(light), version)
        return light
    except (
        onnx.version_converter.ConvertError,
        onnx.shape_inference.InferenceError,
        RuntimeError,
        ValueError,
        IndexError,
    ) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FrontendError(
            f"{file}: the model uses ONNX opset {opset}, older than spikec reads (opsets {supported_range()}), and "
            f"onnx.version_converter cannot upgrade it to opset {MIN_OPSET}: {first}; re-export the model with "
            f"opset {MIN_OPSET} or newer"
        ) from None
