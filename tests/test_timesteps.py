"""Time-step advice (spikec.timesteps, ``spikec timesteps``): the effective dimension of known activations, the
rule's T, the rate-coding bound against spikec's own IF neurons, and the command end to end on the ONNX model zoo's
MNIST CNN (../shared/data/onnx/mnist-conv) with real MNIST test images; bad inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spikec.cli import main
from spikec.coding import simulate
from spikec.data.mnist import load_mnist
from spikec.frontends.onnx import import_onnx
from spikec.interp import evaluate
from spikec.ir import Graph
from spikec.methods import METHODS, ConversionOptions
from spikec.timesteps import (
    RULE_C,
    advise,
    default_max_timesteps,
    effective_dimension,
    feature_rows,
    measured_timesteps,
    rate_coding_bound,
    recommended_timesteps,
    rule_timesteps,
)

CALIB, EVAL = 32, 96  # MNIST test images: the first calibrate, the next are measured


def _orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q


def _centred_orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Orthonormal columns of mean zero: their sample covariance is the identity / (rows - 1)."""
    z = rng.standard_normal((rows, cols))
    return np.linalg.qr(z - z.mean(axis=0))[0]


# -- the effective dimension ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 10])
def test_k_equal_orthogonal_directions_have_dimension_k(k: int) -> None:
    rng = np.random.default_rng(k)
    m, d = 400, 24
    z = _centred_orthonormal(rng, m, k)  # k equal eigenvalues of the sample covariance
    directions = _orthonormal(rng, d, k).T  # (k, d), orthonormal rows
    rows = 5.0 * z @ directions + 3.0  # an offset and a scale change nothing
    assert effective_dimension(rows) == pytest.approx(k, rel=1e-9)


def test_random_rank_k_activations_have_dimension_near_k() -> None:
    rng = np.random.default_rng(0)
    k, d = 6, 64
    rows = rng.standard_normal((5000, k)) @ _orthonormal(rng, d, k).T
    assert effective_dimension(rows) == pytest.approx(k, rel=0.05)
    assert effective_dimension(rows) <= k + 1e-9  # never above the rank


def test_participation_ratio_of_a_known_spectrum_both_ways() -> None:
    """Variances 4 and 1 on two axes: (4 + 1)² / (16 + 1); the Gram path (more features than rows) agrees with
    the eigenvalues of the covariance."""
    rng = np.random.default_rng(1)
    z = _centred_orthonormal(rng, 200, 2)
    assert effective_dimension(z * [2.0, 1.0]) == pytest.approx(25 / 17, rel=1e-9)
    wide = rng.standard_normal((20, 300)) * np.linspace(0.1, 3.0, 300)  # 20 rows, 300 features
    eig = np.linalg.eigvalsh(np.cov(wide, rowvar=False))
    assert effective_dimension(wide) == pytest.approx(eig.sum() ** 2 / np.sum(eig**2), rel=1e-9)
    assert effective_dimension(np.ones((50, 4))) == 0.0  # no variance at all


def test_feature_rows_put_channels_last_and_positions_in_rows() -> None:
    a = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)  # (N, C, H, W)
    rows = feature_rows(a)
    assert rows.shape == (2 * 4 * 5, 3)
    np.testing.assert_array_equal(rows[1 * 20 + 2 * 5 + 3], a[1, :, 2, 3])
    assert feature_rows(np.ones((7, 9))).shape == (7, 9)
    assert feature_rows(np.ones(7)).shape == (7, 1)


# -- the rule and the bound -----------------------------------------------------------------------------------
def test_rule_reproduces_the_papers_figures_and_is_monotone() -> None:
    assert RULE_C == 2.3
    assert recommended_timesteps(47) == recommended_timesteps(89) == 4  # arXiv:2604.15769: d_eff 47-89 -> T = 4
    assert rule_timesteps(100) == pytest.approx(4.6)
    assert recommended_timesteps(1.0) == recommended_timesteps(0.0) == 1
    ts = [recommended_timesteps(d) for d in np.geomspace(1, 1e6, 200)]
    assert ts == sorted(ts) and ts[-1] == round(2.3 * 6)
    for d in (2.0, 12.0, 500.0):
        assert recommended_timesteps(d) == max(1, math.floor(RULE_C * math.log10(d) + 0.5))


def test_rate_coding_bound_holds_for_spikecs_neurons(mnist: tuple[np.ndarray, np.ndarray], graph: Graph) -> None:
    """The first spiking layer gets a constant current (direct input): after every T its rate·θ is within the
    bound θ/(2T) of the balanced ANN's activation (θ = 1 there), clipped at θ; and the bound is attained to within
    a few percent, so it is not loose."""
    x, _ = mnist
    snn, conversion = METHODS["percentile"].convert(graph, x[:CALIB], ConversionOptions(timesteps=1), rates=False)
    first = conversion.layers[0].name
    a = np.minimum(evaluate(conversion.ann, x[:8], trace=[first]).traces[first], 1.0)
    for t in (1, 3, 8):
        counts = simulate(snn, x[:8], timesteps=t, count=[first]).counts[first]
        error = np.abs(counts / t - a).max()
        assert error <= rate_coding_bound(1.0, t, conversion.init) + 1e-9
        assert error >= 0.9 * rate_coding_bound(1.0, t, conversion.init)
    assert rate_coding_bound(2.0, 4, 0.0) == 0.5 and rate_coding_bound(2.0, 4, 0.5) == 0.25


def test_measured_timesteps_and_default_length() -> None:
    assert measured_timesteps(0.98, {1: 0.5, 2: 0.96, 4: 0.975, 8: 0.98}, 1.0) == 4
    assert measured_timesteps(0.98, {1: 0.5, 2: 0.9}, 1.0) is None
    assert [default_max_timesteps(t) for t in (1, 2, 4, 5, 9)] == [8, 8, 8, 16, 32]


# -- on a real model ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(data_dir: Path) -> Path:
    return data_dir / "onnx" / "mnist-conv" / "model.onnx"


@pytest.fixture(scope="module")
def graph(model: Path) -> Graph:
    return import_onnx(model)


@pytest.fixture(scope="module")
def mnist(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_mnist(data_dir / "mnist")
    return x[: CALIB + EVAL, None].astype(np.float64), y[: CALIB + EVAL]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, mnist: tuple[np.ndarray, np.ndarray]) -> dict[str, Path]:
    x, y = mnist
    folder = tmp_path_factory.mktemp("timesteps")
    arrays = {"calib": x[:CALIB, 0].astype(np.uint8), "data": x[CALIB:, 0].astype(np.uint8), "labels": y[CALIB:]}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return {name: folder / f"{name}.npy" for name in arrays}


def test_advice_on_the_mnist_cnn(graph: Graph, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    """Each ReLU's d_eff is that of the source ANN's own activations (channels as features), at most its channel
    count; its T follows the rule; the model's T is the largest."""
    x, _ = mnist
    calib = x[:CALIB]
    _, conversion = METHODS["percentile"].convert(graph, calib, ConversionOptions(timesteps=1), rates=False)
    advice = advise(conversion.ann, conversion.layers, calib, max_rows=10**6)
    assert [a.name for a in advice.layers] == ["ReLU32", "ReLU114"]
    raw = evaluate(graph, calib, trace=["ReLU32", "ReLU114"]).traces  # the unbalanced ANN: d_eff is scale-free
    for layer, channels in zip(advice.layers, (8, 16), strict=True):
        assert layer.features == channels and layer.rows == CALIB * int(np.prod(layer.shape[1:]))
        assert 1.0 < layer.effective_dimension <= channels
        assert layer.effective_dimension == pytest.approx(effective_dimension(feature_rows(raw[layer.name])))
        assert layer.timesteps == recommended_timesteps(layer.effective_dimension)
        assert layer.timesteps_interval[0] <= layer.timesteps <= layer.timesteps_interval[1]
        assert layer.bound == pytest.approx(layer.threshold / (2 * layer.timesteps))
    assert advice.timesteps == max(a.timesteps for a in advice.layers)
    sampled = advise(conversion.ann, conversion.layers, calib, max_rows=2000)  # the default subsamples rows
    assert all(s.rows <= 2000 + CALIB for s in sampled.layers)
    for s, full in zip(sampled.layers, advice.layers, strict=True):
        assert s.effective_dimension == pytest.approx(full.effective_dimension, rel=0.1)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_json(model: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, r = _run(["timesteps", str(model), "--calib", str(files["calib"])], capsys)
    assert code == 0 and r["ok"], r
    assert r["rule"]["C"] == 2.3 and r["calibration"]["samples"] == CALIB and "measured" not in r
    assert [layer["name"] for layer in r["layers"]] == ["ReLU32", "ReLU114"]
    for layer in r["layers"]:
        assert layer["timesteps"] == recommended_timesteps(layer["effective_dimension"])
    assert r["timesteps"] == max(layer["timesteps"] for layer in r["layers"])
    limiting = next(layer for layer in r["layers"] if layer["name"] == r["limiting_layer"])
    assert limiting["timesteps"] == r["timesteps"]


def test_cli_measures_accuracy_against_t_as_eval_does(
    model: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """One accuracy per measured T (1, 2, 4, 8 and the prediction); the ANN's accuracy and the SNN's at each T are
    those ``spikec eval`` reports on the same data and calibration."""
    data = ["--data", str(files["data"]), "--labels", str(files["labels"])]
    code, r = _run(["timesteps", str(model), "--calib", str(files["calib"]), *data, "--max-timesteps", "8"], capsys)
    assert code == 0, r
    m = r["measured"]
    predicted = r["timesteps"]
    assert m["samples"] == EVAL and m["max_timesteps"] == 8 and m["predicted_timesteps"] == predicted
    assert sorted(int(t) for t in m["by_timesteps"]) == sorted({1, 2, 4, 8, predicted})
    assert all(0.0 <= a <= 1.0 for a in m["by_timesteps"].values())
    assert m["accuracy_at_predicted"] == m["by_timesteps"][str(predicted)]
    measured = {int(t): a for t, a in m["by_timesteps"].items()}
    assert m["timesteps_within_tolerance"] == measured_timesteps(m["ann_accuracy"], measured, m["tolerance_pp"])
    code, e = _run(["eval", str(model), "--calib", str(files["calib"]), *data, "--timesteps", "8"], capsys)
    assert code == 0, e
    assert m["ann_accuracy"] == e["ann"]["accuracy"]
    assert {t: m["by_timesteps"][t] for t in e["snn"]["by_timesteps"]} == e["snn"]["by_timesteps"]


def test_cli_prints_the_table(model: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(files["data"]), "--labels", str(files["labels"])]
    assert main(["timesteps", str(model), "--calib", str(files["calib"]), *data]) == 0
    out = capsys.readouterr().out
    assert "ReLU32" in out and "ReLU114" in out and "model: T =" in out
    assert "ANN" in out and "T=8:" in out and "predicted T =" in out  # default length for T <= 4: 8 steps


# -- bad input ------------------------------------------------------------------------------------------------
def _error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, r = _run(args, capsys)
    assert code == 1 and not r["ok"], r
    assert "\n" not in r["error"] and "Traceback" not in r["error"]
    return str(r["error"])


def test_bad_inputs(model: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calib = ["--calib", str(files["calib"])]
    assert "--calib" in _error(["timesteps", str(model)], capsys)
    assert "--labels given without --data" in _error(["timesteps", str(model), *calib, "--labels",
                                                      str(files["labels"])], capsys)  # fmt: skip
    assert "--data given without --labels" in _error(["timesteps", str(model), *calib, "--data",
                                                      str(files["data"])], capsys)  # fmt: skip
    np.save(tmp_path / "small.npy", np.zeros((4, 27, 27)))
    message = _error(["timesteps", str(model), "--calib", str(tmp_path / "small.npy")], capsys)
    assert "--calib" in message and "(4, 27, 27)" in message
    assert "no-such.npy" in _error(["timesteps", str(model), "--calib", str(tmp_path / "no-such.npy")], capsys)
    np.save(tmp_path / "few.npy", np.zeros(3, np.int64))
    message = _error(["timesteps", str(model), *calib, "--data", str(files["data"]), "--labels",
                      str(tmp_path / "few.npy")], capsys)  # fmt: skip
    assert "--labels" in message and "3 entries" in message
    assert "--max-timesteps" in _error(["timesteps", str(model), *calib, "--max-timesteps", "0"], capsys)


def test_a_model_without_spiking_layers(
    data_dir: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A linear classifier (no ReLU, exported by torch) and an SNN (Norse's LIF, NIR): neither has a layer to
    advise on, and each error says what the command needs."""
    linear = tmp_path / "linear.onnx"
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    torch.onnx.export(net, (torch.zeros(1, 1, 28, 28),), str(linear), dynamo=True, verbose=False)
    message = _error(["timesteps", str(linear), "--calib", str(files["calib"])], capsys)
    assert "no layer becomes spiking neurons" in message and "ReLU" in message
    lif = data_dir / "nir" / "lif" / "lif_norse.nir"
    np.save(tmp_path / "one.npy", np.zeros((4, 1)))
    message = _error(["timesteps", str(lif), "--calib", str(tmp_path / "one.npy")], capsys)
    assert "already spiking" in message and "ANN" in message
