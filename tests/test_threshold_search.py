"""``threshold="auto"`` with reset to zero (spikec/threshold_search.py): the four usual fractions of each layer's
activation scale, and lower ones while the best is still the lowest tried (a deep network at few steps loses a
residue per spike in every layer, and only a lower threshold brings its first spikes through in time)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spikec.convert import convert
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
        (6, 8, THRESHOLD_CANDIDATES, 1.0),  # the best is inside the usual four: nothing more is tried
        (8, 8, (*THRESHOLD_CANDIDATES, 0.6), 0.7),  # 0.7 the best of the four, 0.6 worse: bracketed
        (10, 12, (*THRESHOLD_CANDIDATES, 0.6, 0.5), 0.5),  # better down to 0.5, which agrees on every sample
        (10, 8, (*THRESHOLD_CANDIDATES, *LOWER_CANDIDATES), 0.3),  # better and better down to the last fraction
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
    for k in range(len(THRESHOLD_CANDIDATES), len(tried)):  # each lower one: the best so far was the lowest
        before = [search[f"{f:g}"] for f in tried[:k]]
        assert before[-1] == max(before) < 1.0
