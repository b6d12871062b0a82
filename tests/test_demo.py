"""`make demo` (examples/demo.py): the ONNX model zoo MNIST CNN compiled for every installed target, each artifact
verified in its target's own software with 0 mismatches and its report.html written; and the copies the demo ships
(examples/models/) are the third-party data: the model unchanged, the first 500 MNIST test images and labels."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from spikec.data.mnist import load_mnist, read_idx
from spikec.plugins import target_entry_points

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spikec_demo_example", EXAMPLES / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_demo_ships_the_model_zoo_cnn_and_the_first_mnist_test_images_unchanged(data_dir: Path) -> None:
    assert (EXAMPLES / "models" / "mnist-conv.onnx").read_bytes() == (
        data_dir / "onnx" / "mnist-conv" / "model.onnx"
    ).read_bytes()
    images, labels = load_mnist(EXAMPLES / "models" / "mnist")
    all_images, all_labels = load_mnist(data_dir / "mnist")
    assert images.shape == (500, 28, 28) and np.array_equal(images, all_images[:500])
    assert np.array_equal(labels, all_labels[:500])
    with gzip.open(EXAMPLES / "models" / "mnist" / "t10k-labels-idx1-ubyte.gz") as fh:  # the IDX header says 500
        assert fh.read(8) == bytes.fromhex("00000801000001f4")
    assert read_idx(EXAMPLES / "models" / "mnist" / "t10k-images-idx3-ubyte.gz").shape == (500, 28, 28)


@pytest.mark.slow
def test_demo_compiles_and_verifies_the_mnist_cnn_on_every_installed_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _demo().run(tmp_path / "demo-out", verify_images=2, eval_images=100)  # the whole demo, fewer images
    printed = capsys.readouterr().out
    assert {"interp", "loihi2", "spinnaker2", "akida"} <= {r.target for r in rows}
    assert [r.target for r in rows] == list(target_entry_points())
    for r in rows:
        assert r.status == "ok", (r.target, r.note)  # the test install has every target's software: none skipped
        assert r.report is not None and r.report.is_file() and (r.report.parent / "report.json").is_file()
        assert f"open {r.report}" in printed
        assert r.accuracy is not None and r.accuracy > 0.9, r
        if r.target != "interp":  # the interpreter is the reference the others are verified against
            assert r.mismatches == 0 and r.compared is not None and r.compared > 0, r
    assert "$ spikec compile" in printed and "$ spikec verify" in printed
