"""ONNX's operator conformance cases (../shared/data/onnx/node) through the ONNX front end.

Every case either imports and matches all its stored outputs (rtol 1e-4, atol 1e-5), or fails
to import with a ``FrontendError`` (unsupported). Nothing else: no other exception, no mismatch.
The committed docs/onnx-support.md must be what docs/gen_onnx_support.py renders from this walk.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from spikec.frontends.onnx import supported_ops
from spikec.frontends.onnx.conformance import CaseResult, run_case

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO.parent / "shared" / "data" / "onnx" / "node"
CASES = sorted(p.name for p in ROOT.iterdir() if (p / "model.onnx").is_file()) if ROOT.is_dir() else []
# ops whose every conformance case must import (the brief's list; cases of other ops may be unsupported)
REQUIRED = {
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "LeakyRelu",
    "Sigmoid", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose", "Concat", "Gather",
    "Softmax", "LayerNormalization", "Gelu", "Erf", "Sqrt", "Pow", "Unsqueeze", "Squeeze",
}  # fmt: skip


@functools.cache
def result(name: str) -> CaseResult:
    return run_case(ROOT / name)


def all_results() -> list[CaseResult]:
    return [result(name) for name in CASES]


def test_the_cases_are_there(data_dir: Path) -> None:
    assert len(CASES) == 369, f"expected the 369 cases in {ROOT}"


@pytest.mark.parametrize("name", CASES)
def test_case_imports_and_matches_or_is_unsupported(name: str) -> None:
    r = result(name)
    assert r.status in ("pass", "unsupported"), f"{name}: {r.status}: {r.reason}"
    if r.status == "unsupported":
        assert r.reason, name


def test_totals_and_required_ops() -> None:
    results = all_results()
    passed = [r for r in results if r.status == "pass"]
    assert len(passed) >= 348, f"only {len(passed)} of {len(results)} cases pass"
    for r in results:
        if set(r.ops) & REQUIRED and r.status != "pass":
            # representable cases of the required ops all pass; these are the known exceptions
            assert any(why in r.reason for why in ("size 0", "zero-size", "training mode", "Indices")), r


def test_every_supported_op_is_exercised_or_known() -> None:
    exercised = {op for r in all_results() if r.status == "pass" for op in r.ops}
    # covered by tests/test_onnx.py instead (If, LRN, PRelu: tests/test_onnx_classic_ops.py, with ONNX's own cases)
    untested_here = set(supported_ops()) - exercised
    assert untested_here <= {
        "Abs", "Cast", "Ceil", "Celu", "Constant", "ConstantOfShape", "Cos", "Elu", "Equal", "EyeLike", "Exp",
        "Expand", "Floor", "GlobalMaxPool", "If", "IsInf", "IsNaN", "LRN", "Log", "LogSoftmax", "Mish", "Neg",
        "Not", "Pad", "PRelu", "Range", "Reciprocal",
        "ReduceL1", "ReduceL2", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Round",
        "Selu", "Shape", "Sign", "Sin", "Size", "Softplus", "Softsign", "ThresholdedRelu", "Tile",
    }, untested_here  # fmt: skip


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_onnx_support", REPO / "docs" / "gen_onnx_support.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_support_page_is_up_to_date() -> None:
    page = (REPO / "docs" / "onnx-support.md").read_text(encoding="utf-8")
    assert page == _generator().render(all_results()), "run: .venv/bin/python docs/gen_onnx_support.py"
