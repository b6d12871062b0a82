"""``spikec compile`` and ``spikec eval``: artifacts written atomically, reports, progress, bad inputs
(exit 1, one clear message naming what and where, nothing written)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conversion_models import chain, residual_net

from spikec.cli import main
from spikec.convert import convert
from spikec.interp import evaluate
from spikec.ir import Conv, Dense, Flatten, ReLU
from spikec.models import load_model, save_model


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert captured.err == "", "nothing on stderr with --json"
    return code, json.loads(captured.out)


def small_cnn(seed: int = 0) -> object:
    rng = np.random.default_rng(seed)
    return chain(
        ("conv", Conv(weight=rng.normal(0, 0.5, (4, 1, 3, 3)), bias=rng.normal(0, 0.1, 4), origin="toy:conv")),
        ("relu1", ReLU(origin="toy:relu1")),
        ("flat", Flatten()),
        ("fc1", Dense(weight=rng.normal(0, 0.2, (16, 4 * 4 * 4)), bias=rng.normal(0, 0.1, 16))),
        ("relu2", ReLU(origin="toy:relu2")),
        ("fc2", Dense(weight=rng.normal(0, 0.3, (3, 16)))),
        input_shape=(1, 6, 6),
    )


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "cnn.sir"
    save_model(small_cnn(), path)  # type: ignore[arg-type]
    return path


@pytest.fixture()
def arrays(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    data = (rng.uniform(0, 255, size=(80, 6, 6))).astype(np.uint8)  # (N, 6, 6) for an input of (1, 6, 6)
    graph = small_cnn()
    labels = evaluate(graph, data[:, None].astype(np.float64)).outputs["output"].argmax(1)  # type: ignore[attr-defined]
    paths = {"calib": tmp_path / "calib.npy", "data": tmp_path / "x.npy", "labels": tmp_path / "y.npy"}
    np.save(paths["calib"], data[:20])
    np.save(paths["data"], data)
    np.save(paths["labels"], labels)
    return paths


def compile_args(model: Path, calib: Path, out: Path, *extra: str) -> list[str]:
    return [
        "compile",
        str(model),
        "--target",
        "interp",
        "--calib",
        str(calib),
        "--timesteps",
        "16",
        "-o",
        str(out),
        *extra,
    ]


def test_compile_writes_model_and_report(
    model: Path, arrays: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "artifact"
    code, result = run_cli(capsys, *compile_args(model, arrays["calib"], out))
    assert code == 0, result
    assert sorted(p.name for p in out.iterdir()) == ["model.npz", "model.sir", "report.html", "report.json"]
    assert result["files"] == ["model.npz", "model.sir", "report.html", "report.json"]
    assert result["summary"] == {
        "neuron_layers": 3, "neurons": 83, "synapse_layers": 3, "synapses": 1108, "lines": [],
        "report_html": str(out / "report.html"),
    }  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["timesteps"] == 16 and report["calibration_samples"] == 20 and report["target"] == "interp"
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert set(layers) == {"relu1", "relu2"} and layers["relu1"]["origin"] == "toy:relu1"
    for layer in layers.values():
        assert layer["threshold"] > 0 and 0 <= layer["spike_rate"] <= 1
    snn = load_model(out / "model.sir")
    assert snn.nodes["relu1"].kind == "IF" and snn.is_spiking
    calib = np.load(arrays["calib"])
    assert snn == convert(small_cnn(), calib, timesteps=16, measure_rates=False)[0]  # type: ignore[arg-type]
    assert not list(tmp_path.glob(".artifact.*")), "no temporary directory left behind"


def test_compile_replaces_a_previous_artifact_and_refuses_other_directories(
    model: Path, arrays: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "artifact"
    assert run_cli(capsys, *compile_args(model, arrays["calib"], out))[0] == 0
    code, result = run_cli(capsys, *compile_args(model, arrays["calib"], out, "--granularity", "channel"))
    assert code == 0
    assert json.loads((out / "report.json").read_text())["granularity"] == "channel"
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"meow")
    code, result = run_cli(capsys, *compile_args(model, arrays["calib"], other))
    assert code == 1 and "exists and is not a spikec artifact directory" in result["error"]
    assert [p.name for p in other.iterdir()] == ["cat.jpg"]


def test_compile_prints_a_summary_and_no_progress_when_stderr_is_not_a_terminal(
    model: Path, arrays: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a"
    code = main(compile_args(model, arrays["calib"], out))
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"compiled {model} for interp -> {out}") and "relu1" in captured.out
    # the summary closes the output: the network (report.json's metrics), then the page to open
    network = "network: 83 neurons in 3 layers, 1,108 synapses in 3 layers"
    assert lines[-2:] == [network, f"report: {out / 'report.html'}"]
    report = json.loads((out / "report.json").read_text())
    assert sum(layer["neurons"] for layer in report["metrics"]["neuron_layers"]) == 83
    # stderr is captured here, not a terminal: no progress, only the wall clock
    assert [line.split(":")[0] for line in captured.err.splitlines()] == ["timing"]
    assert re.match(r"timing: \d+\.\d\d s in all; ", captured.err)


def test_compile_summary_says_where_the_layers_were_placed(
    model: Path, arrays: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "art"
    args = compile_args(model, arrays["calib"], out)
    args[args.index("--target") + 1] = "loihi2"  # a target whose pipeline partitions the layers onto cores
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["placement: 1 core on 1 chip", f"report: {out / 'report.html'}"]
    assert json.loads((out / "report.json").read_text())["placement"]["cores_used"] == 1


def _nan_model(tmp_path: Path) -> Path:
    good = tmp_path / "good.sir"
    save_model(chain(("fc", Dense(weight=np.eye(2))), ("relu", ReLU()), input_shape=(2,)), good)
    bad = tmp_path / "nan.sir"
    bad.write_text(good.read_text().replace("{1.0, 0.0, 0.0, 1.0}", "{1.0, nan, 0.0, 1.0}"))
    return bad


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong_shape", r"--calib .*bad\.npy has shape \(5, 7, 7\), but the model takes samples of shape \(1, 6, 6\)"),
        ("empty", r"--calib .*bad\.npy is empty \(0 samples\)"),
        ("nan_calib", r"--calib .*bad\.npy holds NaN or inf \(first in sample 2\)"),
        ("nan_weights", r"nan\.sir.*: node 'fc' \(Dense\).*field 'weight' holds 1 NaN"),
        ("missing", r"--calib .*nope\.npy: no such file"),
        ("timesteps", r"--timesteps must be >= 1"),
        ("target", r"no target named 'loihi9'"),
    ],
)
def test_compile_bad_inputs_exit_1_and_write_nothing(
    case: str, message: str, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.npy"
    calib = {
        "wrong_shape": np.zeros((5, 7, 7)),
        "empty": np.zeros((0, 1, 6, 6)),
        "nan_calib": np.where(np.arange(4)[:, None, None, None] == 2, np.nan, np.zeros((4, 1, 6, 6))),
    }.get(case, np.zeros((3, 1, 6, 6)))
    np.save(bad, calib)
    out = tmp_path / "out"
    args = compile_args(_nan_model(tmp_path) if case == "nan_weights" else model, bad, out)
    if case == "nan_weights":
        np.save(bad, np.zeros((3, 2)))
    if case == "missing":
        args[args.index("--calib") + 1] = str(tmp_path / "nope.npy")
    if case == "timesteps":
        args[args.index("--timesteps") + 1] = "0"
    if case == "target":
        args[args.index("--target") + 1] = "loihi9"
    code, result = run_cli(capsys, *args)
    assert code == 1 and result["ok"] is False
    assert "\n" not in result["error"]
    assert re.search(message, result["error"]), result["error"]
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_eval_reports_ann_snn_and_drift(
    model: Path, arrays: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", str(model), "--data", str(arrays["data"]), "--labels", str(arrays["labels"]), "--timesteps", "32"]
    code, result = run_cli(capsys, *args, "--calib", str(arrays["calib"]))
    assert code == 0, result
    assert result["samples"] == 80 and result["ann"]["accuracy"] == 1.0  # labels are the ANN's own answers
    assert result["snn"]["timesteps"] == 32 and 0.8 <= result["snn"]["accuracy"] <= 1.0
    assert [layer["name"] for layer in result["layers"]] == ["relu1", "relu2"]
    assert (
        all(0.8 < layer["drift"] <= 1.0 for layer in result["layers"]) and result["layers"][0]["origin"] == "toy:relu1"
    )
    # without --calib, the head of the data calibrates and the rest is evaluated
    code, result = run_cli(capsys, *args)
    assert code == 0 and result["samples"] == 72 and result["calibration"]["samples"] == 8
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0 and captured.err == "" and "SNN accuracy" in captured.out  # not a terminal: no progress


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros(79, np.int64), r"--labels .*y\.npy hold 79 entries but the data holds 80 samples"),
        (np.zeros((80, 3)), r"--labels .*y\.npy have shape \(80, 3\); give class indices of shape \(80,\)"),
        (np.full(80, 0.5), r"--labels .*y\.npy must be integer class indices"),
    ],
)
def test_eval_bad_labels(
    labels: np.ndarray, message: str, model: Path, arrays: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(arrays["labels"], labels)
    args = ["eval", str(model), "--data", str(arrays["data"]), "--labels", str(arrays["labels"]), "--timesteps", "4"]
    code, result = run_cli(capsys, *args)
    assert code == 1 and re.search(message, result["error"]), result["error"]


def test_compile_a_residual_net_with_every_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "res.sir"
    save_model(residual_net(), path)
    calib = tmp_path / "c.npy"
    np.save(calib, np.random.default_rng(2).normal(size=(8, 2, 8, 8)))
    extra = ["--method", "max", "--granularity", "channel", "--encoding", "poisson", "--decoding", "spikes"]
    code, result = run_cli(capsys, *compile_args(path, calib, tmp_path / "out", *extra, "--backend", "torch"))
    assert code == 0, result
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["encoding"] == "poisson" and report["decoding"] == "spikes" and report["outputs"][0]["name"] == "y"
    snn = load_model(tmp_path / "out" / "model.sir")
    assert {"RateMaxPool", "IF"} <= {n.kind for n in snn.nodes.values()}
