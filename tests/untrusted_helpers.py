"""The helpers of the hostile-file tests (``test_untrusted_files.py``, ``test_untrusted_values.py``): the CLI's
contract for a refusal, and small valid files written by the nir and onnx packages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nir
import numpy as np
import onnx
import pytest
from fuzz.oracle import time_limit
from onnx import TensorProto, helper

from spikec.cli import main

SECRET = b"TOP-SECRET-BYTES" * 8


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], error_type: str, pattern: str, *, output: Path | None = None
) -> str:
    """Run the CLI and assert the refusal: exit 1, one line matching ``pattern``, nothing at ``output``."""
    with time_limit(60):
        code, report = run_cli(capsys, *argv)
    assert code == 1 and report["ok"] is False, report
    assert report["error_type"] == error_type, report
    lines = report["error"].split("\n")  # one line; a ParseError adds the source line and a caret under it
    assert len(lines) == 1 or (error_type == "ParseError" and len(lines) == 3 and lines[2].strip() == "^"), lines
    assert re.search(pattern, lines[0]), report["error"]
    if output is not None:
        assert not output.exists() and not list(output.parent.glob(f".{output.name}*")), "an output was written"
    return str(report["error"])


def small_nir(path: Path) -> Path:
    """Input → Affine → Output, written by the nir package."""
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([2])),
        nir.Affine(np.ones((3, 2), np.float32), np.zeros(3, np.float32)),
        nir.Output(np.array([3])),
    )
    nir.write(path, graph)
    return path


def onnx_file(path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], opset: int = 17) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])
    model = helper.make_model(
        helper.make_graph(nodes, "m", [x], [y], inits), opset_imports=[helper.make_opsetid("", opset)]
    )
    path.write_bytes(model.SerializeToString())
    return path
