"""spikec.convert (the pipeline API) and spikec.compare (accuracy and drift), on small nets and on the
sinabs MNIST net rebuilt as SIR (97.88 % on MNIST as an ANN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conversion_models import mnist_test, residual_net, sinabs_mnist

from spikec.coding import simulate
from spikec.compare import compare
from spikec.convert import convert
from spikec.errors import InputError, SpikecError
from spikec.interp import evaluate
from spikec.ir import IF, Graph


@pytest.fixture(scope="module")
def sinabs(data_dir: Path) -> tuple[Graph, np.ndarray, np.ndarray]:
    images, labels = mnist_test(data_dir)
    return sinabs_mnist(data_dir / "sinabs" / "mnist_params.pt"), images, labels


def ann_answer(graph: Graph, x: np.ndarray) -> np.ndarray:
    (out,) = evaluate(graph, x).outputs.values()
    return out


@pytest.mark.parametrize(("decoding", "granularity"), [("membrane", "layer"), ("spikes", "channel")])
def test_residual_net_converts_and_tracks_the_ann(decoding: str, granularity: str) -> None:
    g = residual_net()
    rng = np.random.default_rng(0)
    calib, x = rng.normal(size=(32, 2, 8, 8)), rng.normal(size=(60, 2, 8, 8))
    stages: list[tuple[str, int, int]] = []
    snn, report = convert(
        g, calib, timesteps=32, decoding=decoding, granularity=granularity, progress=lambda *a: stages.append(a)
    )
    kinds = {node.kind for node in snn.nodes.values()}
    assert {"IF", "RateMaxPool", "SumPool"} <= kinds and not {"ReLU", "BatchNorm", "AvgPool", "MaxPool"} & kinds
    assert [layer.name for layer in report.layers] == ["r1", "r2", "r3", "rb1", "rb2", "r4"]
    assert all(0.0 < layer.spike_rate < 1.0 for layer in report.layers)  # type: ignore[operator]
    assert (stages[-1][0], stages[-1][1]) == ("spike rates", 32) and ("calibration", 32, 32) in stages
    np.testing.assert_allclose(ann_answer(report.ann, x), ann_answer(g, x), rtol=1e-10, atol=1e-12)
    answers = simulate(snn, x, timesteps=32, decoding=decoding).answers["y"][-1]
    ann = ann_answer(g, x)
    assert np.mean(answers.argmax(1) == ann.argmax(1)) >= 0.9
    assert np.corrcoef(answers.ravel(), ann.ravel())[0, 1] >= 0.95
    if decoding == "spikes":
        (out,) = report.outputs
        assert out.name == "y" and out.threshold == pytest.approx(np.percentile(np.abs(ann_answer(g, calib)), 99.9))


def test_report_lists_every_pass_and_serialises() -> None:
    import json

    snn, report = convert(residual_net(), np.random.default_rng(1).normal(size=(16, 2, 8, 8)), timesteps=8)
    names = [p["name"] for p in report.passes]
    assert names == [
        "inline-subgraphs", "fold-batchnorm", "fuse", "avgpool-to-sumpool", "fuse", "output-softmax",
        "threshold-balance", "relu-to-if", "rate-maxpool", "init-membrane", "decode-output", "encode-input", "fuse",
    ]  # fmt: skip
    data = json.loads(json.dumps(report.to_dict()))
    assert data["timesteps"] == 8 and data["layers"][0]["name"] == "r1" and "ann" not in data
    first = snn.nodes["r1"]
    assert isinstance(first, IF) and float(first.v_init) == 0.5 and first.reset == "subtract"


def test_poisson_encoding_converges_to_the_ann() -> None:
    g = residual_net(2)
    rng = np.random.default_rng(2)
    calib, x = rng.normal(size=(32, 2, 8, 8)), rng.normal(size=(40, 2, 8, 8))
    snn, report = convert(g, calib, timesteps=256, encoding="poisson", measure_rates=False)
    assert report.input_scale == pytest.approx(np.abs(calib).max())
    answers = simulate(snn, x, timesteps=256, encoding="poisson", scale=report.input_scale).answers["y"]
    ann = ann_answer(g, x)
    assert np.corrcoef(answers[-1].ravel(), ann.ravel())[0, 1] >= 0.9


@pytest.mark.parametrize(
    ("calib", "message"),
    [
        (np.zeros((0, 2, 8, 8)), r"calibration set is empty \(0 samples\)"),
        (np.zeros((4, 3, 8, 8)), r"calibration set has shape \(4, 3, 8, 8\), but the model takes samples of shape"),
        (np.full((2, 2, 8, 8), np.nan), r"calibration set holds NaN or inf \(first in sample 0\)"),
        (np.array(["a"]), "calibration set: dtype <U1 is not numeric"),
    ],
)
def test_bad_calibration_sets_are_input_errors(calib: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        convert(residual_net(), calib, timesteps=4)


def test_bad_options_and_spiking_models_are_refused() -> None:
    calib = np.zeros((2, 2, 8, 8))
    for options, message in [
        ({"encoding": "rank"}, "encoding 'rank' is not one of"),
        ({"decoding": "first"}, "decoding 'first' is not one of"),
        ({"maxpool": "min"}, "maxpool 'min' is not one of"),
        ({"timesteps": 0}, "timesteps must be >= 1"),
    ]:
        with pytest.raises(SpikecError, match=message):
            convert(residual_net(), calib, **{"timesteps": 4, **options})  # type: ignore[arg-type]
    snn, _ = convert(residual_net(), calib + 1.0, timesteps=2, measure_rates=False)
    with pytest.raises(SpikecError, match="already has spiking"):
        convert(snn, calib, timesteps=2)


def test_compare_gives_the_same_numbers_on_any_count_of_threads() -> None:
    """Batches on several threads (the numpy default uses the cores) are summed in batch order: every number equals
    the one-thread run's, bit for bit."""
    g = residual_net()
    rng = np.random.default_rng(4)
    calib, x = rng.normal(size=(32, 2, 8, 8)), rng.normal(size=(70, 2, 8, 8))
    labels = ann_answer(g, x).argmax(1)
    snn, report = convert(g, calib, timesteps=8, measure_rates=False)
    one = compare(g, snn, report, x, labels, batch_size=9, workers=1).to_dict()
    assert compare(g, snn, report, x, labels, batch_size=9, workers=3).to_dict() == one
    assert one["snn"]["accuracy"] > 0.5 and all(layer["drift"] is not None for layer in one["layers"])


def test_compare_reports_accuracy_and_drift() -> None:
    g = residual_net()
    rng = np.random.default_rng(3)
    calib, x = rng.normal(size=(32, 2, 8, 8)), rng.normal(size=(60, 2, 8, 8))
    labels = ann_answer(g, x).argmax(1)
    snn, report = convert(g, calib, timesteps=32, measure_rates=False)
    result = compare(g, snn, report, x, labels, batch_size=25)
    assert result.ann_accuracy == 1.0 and result.snn_accuracy >= 0.85
    assert list(result.by_timesteps) == [1, 2, 4, 8, 16, 32] and result.by_timesteps[32] == result.snn_accuracy
    assert [d.name for d in result.layers] == [layer.name for layer in report.layers]
    for d in result.layers:
        assert d.drift is not None and 0.8 < d.drift <= 1.0 and d.error is not None and d.error < 0.5
    data = result.to_dict()
    assert (
        data["ann"]["accuracy"] == 1.0
        and data["snn"]["timesteps"] == 32
        and {"name", "origin", "drift"} <= set(data["layers"][0])
    )
    with pytest.raises(InputError, match="labels hold 59 entries but the data holds 60 samples"):
        compare(g, snn, report, x, labels[:59])


@pytest.mark.slow
def test_sinabs_mnist_converts_with_little_loss(sinabs: tuple[Graph, np.ndarray, np.ndarray]) -> None:
    """200 calibration and 200 test images at T=16 (the full 9,000-image numbers: docs/conversion.md)."""
    graph, images, labels = sinabs
    snn, report = convert(graph, images[:200], timesteps=16, measure_rates=False)  # (N, 28, 28) fits (1, 28, 28)
    assert [layer.name for layer in report.layers] == ["relu1", "relu2", "relu3", "relu4"]
    result = compare(graph, snn, report, images[1000:1200, None].astype(np.float64), labels[1000:1200])
    assert result.ann_accuracy >= 0.97
    assert result.snn_accuracy >= result.ann_accuracy - 0.01
    assert result.by_timesteps[8] >= result.ann_accuracy - 0.03
    assert min(d.drift for d in result.layers if d.drift is not None) > 0.9
