"""Run ONNX's operator conformance cases (``onnx/backend/test/data/node`` layout) through spikec.

A case is a folder with ``model.onnx`` and ``test_data_set_0/{input,output}_<k>.pb``. The cases
feed every operand as a graph input, weights and shapes included, where real models hold them as
initializers. So each case is imported up to five times, stopping at the first import that does
not raise ``FrontendError``: (1) every input live; (2) non-float inputs (shapes, axes, indices,
masks) and inputs holding ±inf (which ``spikec run`` refuses to feed) bound as constants; (3)
every input but the first bound as a constant; then (3) again with ``batch_axis=True`` and with
``batch_axis=False`` (the user's override of the rule). A case that imports is evaluated once as
an ANN (``spikec.interp.evaluate``, numpy, float64) and must match every stored output to
``rtol=1e-4, atol=1e-5`` (``2e-3`` for outputs the op computes in float16). Used by
tests/test_onnx_conformance.py and docs/gen_onnx_support.py.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from spikec.errors import FrontendError, SpikecError
from spikec.frontends.onnx import import_onnx
from spikec.interp import evaluate
from spikec.ir.graph import Graph

RTOL, ATOL = 1e-4, 1e-5
# Cases whose stored outputs are rounded to 4 decimals (onnxruntime and onnx.reference both give
# spikec's value to 1e-7): compared with an absolute tolerance of 1e-4.
HALF = 2e-3
ROUNDED = {"test_averagepool_2d_ceil_last_window_starts_on_pad": 1e-4}
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}


@dataclasses.dataclass
class CaseResult:
    """``status``: ``pass`` (imported and matched), ``unsupported`` (FrontendError on import),
    ``mismatch`` (imported but wrong or failing to run) or ``crash`` (another exception on import)."""

    name: str
    ops: list[str]
    status: str
    reason: str = ""
    bound: list[str] = dataclasses.field(default_factory=list)
    batch_axis: bool | None = None  # the override that made it import (None: the rule)
    seconds: float = 0.0


def _read(path: Path, vi: onnx.ValueInfoProto) -> np.ndarray | None:
    if not vi.type.HasField("tensor_type"):
        return None  # sequences, optionals: not tensors
    proto = onnx.TensorProto()
    proto.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(proto)


def load_case(case: Path) -> tuple[onnx.ModelProto, dict[str, np.ndarray | None], dict[str, np.ndarray | None]]:
    model = onnx.load(str(case / "model.onnx"))
    data = case / "test_data_set_0"
    inits = {i.name for i in model.graph.initializer}
    live = [vi for vi in model.graph.input if vi.name not in inits]
    inputs = {vi.name: _read(data / f"input_{k}.pb", vi) for k, vi in enumerate(live)}
    outputs = {vi.name: _read(data / f"output_{k}.pb", vi) for k, vi in enumerate(model.graph.output)}
    return model, inputs, outputs


def binding_modes(model: onnx.ModelProto, inputs: dict[str, np.ndarray | None]) -> list[list[str]]:
    types = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.input}
    names = list(inputs)
    special = [  # inputs spikec cannot feed at run time: not real-valued, or not finite
        n for n, a in inputs.items() if types.get(n) not in FLOATS or (a is not None and not np.all(np.isfinite(a)))
    ]
    modes = [[], special, names[1:]]
    unique: list[list[str]] = []
    for m in modes:
        if m not in unique:
            unique.append(m)
    return unique


def origin_name(graph: Graph, node: str) -> str:
    return graph.nodes[node].origin.removeprefix("onnx:")


def check(
    graph: Graph,
    inputs: dict[str, np.ndarray | None],
    outputs: dict[str, np.ndarray | None],
    atol: float = ATOL,
    **backend: Any,
) -> str:
    """Evaluate ``graph`` on the case's inputs; '' when every output matches, else what differs."""
    feeds = {}
    for name in graph.inputs:
        a = inputs[origin_name(graph, name)]
        assert a is not None
        shape = graph.types[name]
        feeds[name] = a[None] if a.shape == shape else a  # no batch axis in the model: a batch of one
    result = evaluate(graph, feeds, **backend)
    problems = []
    for name in graph.outputs:
        want = outputs[origin_name(graph, name)]
        got = result.outputs[name]
        if want is None:
            return f"output '{name}' is not a tensor"
        if got.shape != want.shape and got.shape[1:] == want.shape:
            got = got[0]
        if got.shape != want.shape:
            problems.append(f"output '{name}' has shape {got.shape}, expected {want.shape}")
        elif not np.allclose(got, want.astype(np.float64), **_tolerance(want, atol), equal_nan=True):
            err = np.max(np.abs(got - want.astype(np.float64)))
            problems.append(f"output '{name}' differs by up to {err:.3g}")
    return "; ".join(problems)


def _tolerance(want: np.ndarray, atol: float) -> dict[str, float]:
    """rtol 1e-4, atol 1e-5; for float16 outputs (the op computed in half precision) 2e-3, two ulps."""
    if want.dtype == np.float16:
        return {"rtol": HALF, "atol": HALF}
    return {"rtol": RTOL, "atol": atol}


def run_case(case: Path, **backend: Any) -> CaseResult:
    """Import and check one case; ``backend`` goes to ``evaluate`` (``backend="torch", device="cuda"``)."""
    start = time.perf_counter()
    model, inputs, outputs = load_case(case)
    ops = list(dict.fromkeys(n.op_type for n in model.graph.node))
    result = CaseResult(case.name, ops, "unsupported")
    modes: list[tuple[list[str], bool | None]] = [(b, None) for b in binding_modes(model, inputs)]
    modes += [(modes[-1][0], True), (modes[-1][0], False)]  # then override the batch-axis rule
    for bound, batch_axis in modes:
        values = {n: inputs[n] for n in bound}
        fed = [a for n, a in inputs.items() if n not in bound and a is not None]
        if any(v is None for v in values.values()) or any(not np.all(np.isfinite(a)) for a in fed):
            continue  # cannot bind a non-tensor; cannot feed ±inf
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = import_onnx(case / "model.onnx", constants=values, batch_axis=batch_axis)
        except FrontendError as err:
            if batch_axis is None:  # report why the rule's import failed
                result.reason = str(err).split(": ", 1)[-1]
            continue
        except Exception as err:  # anything but FrontendError on import is a bug
            result.status, result.reason = "crash", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
            break
        result.bound, result.batch_axis = bound, batch_axis
        try:
            problem = check(graph, inputs, outputs, atol=ROUNDED.get(case.name, ATOL), **backend)
        except SpikecError as err:
            problem = f"{type(err).__name__}: {err}"
        result.status, result.reason = ("mismatch", problem) if problem else ("pass", "")
        break
    result.seconds = time.perf_counter() - start
    return result


def run_all(root: Path, **backend: Any) -> list[CaseResult]:
    return [run_case(case, **backend) for case in sorted(p for p in root.iterdir() if (p / "model.onnx").is_file())]
