"""One compile driver for every ``--method`` (spikec.compiler, spikec.methods), on the ONNX model zoo's MNIST CNN
and Sinabs' N-MNIST SNN, with the commands a user types: each method's artifact is what its library function
makes, ``report.json`` and the result have the same common keys for every method, and a method that does not
fit the calibration samples is a usage error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikec.cli import main
from spikec.models import load_model
from spikec.report.schema import REPORT_SCHEMA, problems

COMMON_REPORT = {"model", "target", "spikec_version", "method", "steps", "host_side", "pipeline", "files"}
COMMON_REPORT |= {"schema_version", "metrics", "energy"}  # docs/report-schema.md
COMMON_RESULT = {"model", "target", "method", "output", "files", "steps", "pipeline", "sample_inputs"}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def mnist(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model zoo CNN (raw 0..255 pixels) and MNIST test images: 8 to calibrate, 40 labelled."""
    from spikec.data.mnist import load_mnist

    images, labels = load_mnist(data_dir / "mnist")
    d = tmp_path_factory.mktemp("mnist")
    np.save(d / "calib.npy", images[:8, None].astype(np.float32))
    np.save(d / "x.npy", images[100:140, None].astype(np.float32))
    np.save(d / "y.npy", labels[100:140].astype(np.int64))
    return {"model": data_dir / "onnx" / "mnist-conv" / "model.onnx", "dir": d}


def _rate(statistic: str) -> Callable[[Any, np.ndarray], Any]:
    def convert(graph: Any, calib: np.ndarray) -> Any:
        from spikec.convert import convert

        return convert(graph, calib, timesteps=4, method=statistic, measure_rates=False)[0]

    return convert


def _exact(graph: Any, calib: np.ndarray) -> Any:
    from spikec.convert_exact import convert_exact

    return convert_exact(graph, calib, levels=16, max_spikes=1)[0]


def _binary(graph: Any, calib: np.ndarray) -> Any:
    from spikec.convert_binary import convert_binary

    return convert_binary(graph, calib, timesteps=4, measure_rates=False)[0]


@pytest.mark.parametrize(
    ("method", "library", "method_keys"),
    [
        ("percentile", _rate("percentile"), {"layers", "calibration_samples", "granularity"}),
        ("max", _rate("max"), {"layers", "calibration_samples", "granularity"}),
        ("exact", _exact, {"neurons", "host_nodes", "settle_bound", "levels"}),
        ("binary", _binary, {"layers", "attention", "binary_spikes"}),
    ],
)
def test_every_method_goes_through_the_one_driver(
    method: str,
    library: Callable[[Any, np.ndarray], Any],
    method_keys: set[str],
    mnist: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, d = tmp_path / "art", mnist["dir"]
    argv = ["compile", str(mnist["model"]), "--calib", str(d / "calib.npy"), "--timesteps", "4", "-o", str(out)]
    code, r = _cli([*argv, "--method", method], capsys)
    assert code == 0, r
    assert set(r) >= COMMON_RESULT and r["method"] == method and r["steps"] == 4
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= COMMON_REPORT | method_keys
    assert report["method"] == method and list(problems(report, REPORT_SCHEMA)) == []
    ops = report["metrics"]["synaptic_operations"]
    assert report["metrics"]["samples"] > 0 and 0 < ops["effective_macs"] + ops["effective_acs"] < ops["dense"]
    assert report["files"] == r["files"] == ["model.npz", "model.sir", "report.html", "report.json"]
    calib = np.load(d / "calib.npy").astype(np.float64)
    assert load_model(out / "model.sir") == library(load_model(mnist["model"]), calib)  # the method's own conversion
    main([*argv, "--method", method])  # the human-readable form: the header and the method's lines
    printed = capsys.readouterr().out
    assert printed.startswith(f"compiled {mnist['model']} for interp -> {out} ") and f"method {method}, T=4" in printed
    assert ("ST-BIF layer" if method == "exact" else "spike rate") in printed


@pytest.mark.parametrize("method", ["percentile", "exact"])
def test_eval_by_method(method: str, mnist: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    d = mnist["dir"]
    argv = ["eval", str(mnist["model"]), "--data", str(d / "x.npy"), "--labels", str(d / "y.npy")]
    code, r = _cli([*argv, "--calib", str(d / "calib.npy"), "--timesteps", "4", "--method", method], capsys)
    assert code == 0, r
    assert r["method"] == method and r["samples"] == 40 and r["calibration"]["samples"] == 8
    assert r["ann"]["accuracy"] >= 0.9  # the zoo model on MNIST
    assert ("qann" in r) == (method == "exact") and ("layers" in r) == (method != "exact")


def test_an_snn_is_compiled_as_it_is(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sinabs' spiking CNN: no --calib means --method snn; the artifact holds the model unchanged."""
    nir = data_dir / "nir" / "cnn" / "cnn_sinabs.nir"
    out = tmp_path / "art"
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((8, 2, 2, 34, 34)) < 0.1).astype(np.float32))
    argv = ["compile", str(nir), "--timesteps", "8", "--inputs", str(tmp_path / "x.npy"), "-o", str(out)]
    code, r = _cli(argv, capsys)
    assert code == 0, r
    assert r["method"] == "snn" and r["sample_inputs"] == 2 and "inputs.npz" in r["files"]
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= COMMON_REPORT and report["method"] == "snn" and report["steps"] == 8
    assert load_model(out / "model.sir") == load_model(nir)
    with np.load(out / "inputs.npz") as x:
        assert x[load_model(nir).inputs[0]].shape == (8, 2, 2, 34, 34)


def test_methods_and_calibration_must_agree(
    data_dir: Path, mnist: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calib, out = str(mnist["dir"] / "calib.npy"), tmp_path / "art"
    code, r = _cli(["compile", str(mnist["model"]), "--method", "exact", "--timesteps", "4", "-o", str(out)], capsys)
    assert code == 2 and r["error_type"] == "UsageError" and "--method exact converts an ANN" in r["error"]
    assert "pass --calib" in r["error"]
    nir = str(data_dir / "nir" / "cnn" / "cnn_sinabs.nir")
    code, r = _cli(["compile", nir, "--method", "snn", "--calib", calib, "--timesteps", "4", "-o", str(out)], capsys)
    assert code == 2 and "--calib does not apply to --method snn" in r["error"]
    code, r = _cli(["compile", str(mnist["model"]), "--timesteps", "4", "-o", str(out)], capsys)  # an ANN, no --calib
    assert code == 1 and "is an ANN (no spiking nodes): pass --calib" in r["error"]
    assert not out.exists()
    # eval converts: it has no --method snn
    assert main(["eval", nir, "--data", calib, "--labels", calib, "--timesteps", "4", "--method", "snn"]) == 2
