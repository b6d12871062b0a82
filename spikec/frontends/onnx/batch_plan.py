"""Which axis of each graph input is the batch axis, before any node is lowered.

``--batch-axis auto`` (the default) takes, for every input,

- its first **symbolic** dimension, when each input has one (a dynamic-batch export; the batch
  may be any axis, e.g. ``(L, batch, E)`` for a sequence-first model), else
- **axis 0**, when every input has one and all agree on its (static) size — any size: an export
  traced with a batch of 2 treats its two samples alike unless an op mixes them. If an op does
  (``BatchAxisError``), a static batch above 1 is retried as no batch axis (the whole tensor is
  one sample); a batch of 1 never needs to be: that op simply sees one sample.

``--batch-axis N`` puts the batch on axis N of every input; ``--batch-axis none`` says there is
none. Every other dimension must be static (``dynamic.dynamic_dim_error`` says how to fix it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import onnx

from spikec.errors import FrontendError
from spikec.frontends.onnx.dynamic import dynamic_dim_error

SYMBOLIC_BATCH = (2, 3)  # trial sizes of a symbolic batch axis, to tell batch-dependent shape values apart
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
INT_TYPES = {
    onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.INT16, onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.BOOL,
}  # fmt: skip

BatchAxis = int | str | bool | None  # "auto"/None, "none"/False, N (True: 0)
Dims = list[int | str | None]


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """``inputs``: ONNX input name → (per-sample shape, batch axis or None). ``sizes``: the static
    batch size, the trial sizes of a symbolic one, or ``()`` without a batch axis. ``fallback``:
    whether a sample-mixing op should retry the import without a batch axis."""

    @property
    def fallback(self) -> bool:
        """Whether an op that mixes samples means "no batch axis" rather than an error (a guessed batch > 1)."""
        return self.guessed and self.sizes[0] > 1

    inputs: dict[str, tuple[tuple[int, ...], int | None]]
    sizes: tuple[int, ...]
    guessed: bool = False  # a static batch on axis 0 taken by --batch-axis auto (outputs must keep it there)
    advice: str = ""  # how the user can change the choice


def normalize(batch_axis: BatchAxis) -> int | str:
    """``"auto"``, ``"none"`` or an axis from any accepted spelling; ``FrontendError`` otherwise."""
    if batch_axis is None or batch_axis == "auto":
        return "auto"
    if batch_axis is False or batch_axis == "none":
        return "none"
    if batch_axis is True:
        return 0
    if isinstance(batch_axis, str) and batch_axis.lstrip("-").isdigit():
        batch_axis = int(batch_axis)
    if isinstance(batch_axis, int) and batch_axis >= 0:
        return batch_axis
    raise FrontendError(f"batch axis {batch_axis!r} is not 'auto', 'none' or an axis number >= 0")


def input_dims(vi: onnx.ValueInfoProto, file: str, input_shapes: Mapping[str, Sequence[int]]) -> Dims:
    """An input's dimensions: ints where static, the symbol (or None) where dynamic."""
    t = vi.type
    if not t.HasField("tensor_type"):
        kind = t.WhichOneof("value")
        raise FrontendError(f"{file}: input '{vi.name}' is not a tensor ({kind}); spikec imports tensors")
    elem = t.tensor_type.elem_type
    if elem not in FLOAT_TYPES | INT_TYPES:
        name = onnx.TensorProto.DataType.Name(elem)
        raise FrontendError(
            f"{file}: input '{vi.name}' has element type {name}; spikec evaluates real-valued tensors and integer "
            f"token ids: bind it to a value with import_onnx(..., constants={{'{vi.name}': ...}})"
        )
    if vi.name in input_shapes:
        return [None if int(d) < 0 else int(d) for d in input_shapes[vi.name]]
    if not t.tensor_type.HasField("shape"):
        fix = f"pass input_shapes={{'{vi.name}': (...)}}"
        raise FrontendError(f"{file}: input '{vi.name}' has no declared shape: {fix}")
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]


def plan_batch(
    graph: onnx.GraphProto,
    file: str,
    live: Sequence[onnx.ValueInfoProto],
    batch_axis: BatchAxis,
    input_shapes: Mapping[str, Sequence[int]],
) -> BatchPlan:
    """Where the batch axis of each live input is (module docstring)."""
    choice = normalize(batch_axis)
    dims = {vi.name: input_dims(vi, file, input_shapes) for vi in live}
    axes: dict[str, int | None]
    sizes: tuple[int, ...]
    guessed = False
    if choice == "none" or not dims:
        axes, sizes = dict.fromkeys(dims), ()
    elif isinstance(choice, int):
        short = [n for n, d in dims.items() if len(d) <= choice]
        if short:
            rank = len(dims[short[0]])
            raise FrontendError(f"{file}: --batch-axis {choice}, but input '{short[0]}' has only {rank} axes")
        axes = dict.fromkeys(dims, choice)
        sizes = _sizes({n: d[choice] for n, d in dims.items()}, file)
    else:
        axes, sizes = _auto(dims, file)
        guessed = len(sizes) == 1
    inputs = {}
    for name, d in dims.items():
        axis = axes[name]
        for k, size in enumerate(d):
            if k == axis:
                continue
            if not isinstance(size, int):
                raise dynamic_dim_error(graph, file, name, k, size if isinstance(size, str) else "")
            if size == 0:
                raise FrontendError(f"{file}: input '{name}' has size 0 on axis {k}; spikec needs non-empty tensors")
        inputs[name] = (tuple(int(s) for k, s in enumerate(d) if k != axis), axis)  # type: ignore[arg-type]
    where = ", ".join(f"'{n}' axis {a}" for n, a in axes.items() if a is not None) or "none"
    advice = (
        f"The batch axis was taken to be: {where} (--batch-axis {choice}); if that is wrong, import with "
        "--batch-axis N (batch_axis=N) or --batch-axis none (the whole tensor is one sample)"
    )
    return BatchPlan(inputs, sizes, guessed, advice)


def _auto(dims: dict[str, Dims], file: str) -> tuple[dict[str, int | None], tuple[int, ...]]:
    """The rule of the module docstring: one symbolic axis per input, else a common axis 0."""
    symbolic = {n: [k for k, s in enumerate(d) if not isinstance(s, int)] for n, d in dims.items()}
    if all(symbolic.values()):
        names = [{d[k] for k in symbolic[n]} for n, d in dims.items()]
        shared = set.intersection(*names) - {None}
        if shared:  # a symbol every input has: the batch, wherever each input holds it
            symbol = min(shared, key=str)
            return {n: d.index(symbol) for n, d in dims.items()}, SYMBOLIC_BATCH
        return {n: symbolic[n][0] for n in dims}, SYMBOLIC_BATCH
    if any(not d for d in dims.values()):
        return dict.fromkeys(dims), ()  # a scalar input: no batch axis
    leading = {d[0] for d in dims.values()}
    static = {d for d in leading if isinstance(d, int)}
    if len(static) == len(leading) == 1 and min(static) >= 1:
        return dict.fromkeys(dims, 0), (int(static.pop()),)
    if static <= {1}:  # symbolic and 1 (inputs broadcast over the batch): a symbolic batch in front
        return dict.fromkeys(dims, 0), SYMBOLIC_BATCH
    return dict.fromkeys(dims), ()  # inputs of different leading sizes: not a batch


def _sizes(at_axis: dict[str, int | str | None], file: str) -> tuple[int, ...]:
    static = {s for s in at_axis.values() if isinstance(s, int)}
    if len(static) > 1:
        raise FrontendError(f"{file}: inputs disagree on the batch size: {at_axis}")
    if len(static) == 1 and all(isinstance(s, int) for s in at_axis.values()):
        size = static.pop()
        if size < 1:
            raise FrontendError(f"{file}: the batch axis has size {size}; spikec needs non-empty tensors")
        return (size,)
    if static:
        raise FrontendError(f"{file}: inputs disagree on the batch size (static and symbolic): {at_axis}")
    return SYMBOLIC_BATCH
