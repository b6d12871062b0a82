"""The compile-scaling benchmark's child runs the whole exact conversion and emits a loadable .sir."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from benchmarks.vit.compile_scaling import compile_one
from benchmarks.vit.vit_onnx import vit_onnx
from spikec.ir import STBIF, Difference
from spikec.text import load_sir


@pytest.mark.slow
def test_compile_one_emits_the_exact_snn(tmp_path: Path) -> None:
    model = vit_onnx(depth=2, dim=16, heads=2, mlp=32, patch=8, image=16, classes=4)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    report = compile_one(path, tmp_path, None)
    assert set(report["phases_s"]) == {"import", "convert", "emit"}
    snn = load_sir(tmp_path / "tiny.sir")
    stbif = [n for n in snn.nodes.values() if isinstance(n, STBIF)]
    # per block: LN1, q, k, v, q·kᵀ, softmax, attn·v, LN2, fc1, GELU; then the final LN
    assert len(stbif) == 2 * 10 + 1
    assert any(isinstance(n, Difference) for n in snn.nodes.values())
    assert report["nodes"] == len(snn.nodes)
