"""``threshold="auto"`` with reset to zero (spikec/threshold_search.py): the four usual fractions of each layer's
activation scale, and lower ones while the lowest tried is still the best by argmax agreement or by the
correlation of the outputs (a deep network at few steps loses a residue per spike in every layer, and only a
lower threshold brings its first spikes through in time)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spikec.coding import simulate
from spikec.convert import CALIBRATION_DTYPE, convert
from spikec.ir import Dense, Graph, Input, Output
from spikec.ir.ann import ReLU
from spikec.threshold_search import LOWER_CANDIDATES, SEARCH_TIE, THRESHOLD_CANDIDATES


def _deep_mlp(depth: int, seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    nodes: dict[str, object] = {"x": Input(shape=(16,))}
    for i in range(depth):
        nodes[f"fc{i}"] = Dense(weight=rng.normal(0.05, 0.3, (16, 16)), bias=rng.normal(0, 0.05, 16))
        nodes[f"relu{i}"] = ReLU()
    nodes |= {"head": Dense(weight=rng.normal(0, 0.5, (4, 16))), "y": Output()}
    return Graph(nodes, list(itertools.pairwise(nodes)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("depth", "timesteps", "tried", "chosen"),
    [
        (6, 8, THRESHOLD_CANDIDATES, 1.0),  # best at 1 by both measures: nothing more is tried
        (8, 8, (*THRESHOLD_CANDIDATES, 0.6), 0.7),  # 0.7 the best of the four, 0.6 worse: bracketed
        (10, 12, (*THRESHOLD_CANDIDATES, 0.6, 0.5), 0.5),  # better down to 0.5, which agrees on every sample
        (10, 8, (*THRESHOLD_CANDIDATES, *LOWER_CANDIDATES), 0.3),  # better and better down to the last fraction
        # agreement best at 1 (0.94 against 0.92 at 0.7), the correlation at 0.7: on down to 0.4, all samples
        (6, 12, (*THRESHOLD_CANDIDATES, 0.6, 0.5, 0.4), 0.4),
    ],
)
def test_the_search_goes_lower_while_the_lowest_fraction_is_the_best(
    depth: int, timesteps: int, tried: tuple[float, ...], chosen: float
) -> None:
    x = np.random.default_rng(depth).random((64, 16))
    _, report = convert(_deep_mlp(depth, seed=0), x, timesteps=timesteps, reset="zero", init=0.0,
                        threshold="auto", measure_rates=False)  # fmt: skip
    search = report.threshold_search
    assert search is not None and [float(f) for f in search] == list(tried)
    assert report.threshold == chosen and search[f"{chosen:g}"] >= max(search.values()) - SEARCH_TIE


@pytest.mark.parametrize("samples", [64, 80])
def test_the_reported_spike_rates_are_the_chosen_snns_on_every_calibration_sample(samples: int) -> None:
    """With every calibration sample in the search (64 of 64), the chosen candidate's run gives the rates and no
    further run is made; with more (80), the rates come from a run on all of them. Both equal a fresh run of the
    converted SNN in the calibration runs' float32, and lie within 0.01 spikes per step of a float64 run."""
    x = np.random.default_rng(1).random((samples, 16))
    stages: list[str] = []
    snn, report = convert(_deep_mlp(8, seed=0), x, timesteps=8, reset="zero", init=0.0, threshold="auto",
                          progress=lambda stage, done, total: stages.append(stage))  # fmt: skip
    assert ("spike rates" in stages) == (samples > 64)
    names = [layer.name for layer in report.layers]
    sim = simulate(snn, x, timesteps=8, count=names, dtype=CALIBRATION_DTYPE)
    reference = simulate(snn, x, timesteps=8, count=names)
    for layer in report.layers:
        assert layer.spike_rate == pytest.approx(float(np.mean(np.abs(sim.counts[layer.name]))) / 8, abs=1e-12)
        assert layer.spike_rate == pytest.approx(float(np.mean(np.abs(reference.counts[layer.name]))) / 8, abs=0.01)
