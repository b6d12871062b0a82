"""The interpreter's Loihi fixed point equals Lava 0.10's own bit-accurate CPU models.

Each network of tests/loihi_networks.py (every Loihi kind, sign mode, exponent sign, bit width,
graded and binary messages, reset, bias input, a recurrent dense layer) and lava-dl's tinynet run in Lava
(``Loihi2SimCfg(select_tag='fixed_pt')``, .venv-lava, one subprocess) with Monitors on every layer;
every output and every u/v (sigma/act) state must equal the interpreter's, with zero mismatches.
Needs ``make lava-env`` (``make test`` builds it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from loihi_networks import NETWORKS

from spikec.interp import run
from spikec.targets.loihi2.lava_env import simulate_in_lava
from spikec.targets.loihi2.netx import import_netx, spike_events_to_raster

pytestmark = pytest.mark.slow


def _assert_equal(lava: dict[str, np.ndarray], traces: dict[str, np.ndarray], what: str, unbuffered: set[str]) -> None:
    assert lava, f"{what}: Lava recorded nothing"
    for key, value in lava.items():
        mine = traces[key][:, 0]
        if key in unbuffered:  # Lava's Dense sends its buffer; spikec's recurrent edge delays instead
            mine = np.concatenate([np.zeros_like(mine[:1]), mine[:-1]])
        assert value.shape == mine.shape, (what, key)
        mismatches = int(np.sum(value != mine))
        assert mismatches == 0, f"{what}: {key} differs from Lava in {mismatches} of {value.size} values"


def test_every_loihi_kind_equals_lava_fixed_pt(data_dir: Path) -> None:
    nets = {name: build() for name, build in NETWORKS.items()}
    tiny = import_netx(data_dir / "netx/tiny/tiny.net", reset_interval=17)
    bias = np.load(data_dir / "netx/tiny/tinynet/input_bias.npy").transpose(2, 1, 0)
    nets["tinynet"] = (tiny, {"input": np.broadcast_to(bias, (20, *bias.shape))}, 20)
    results = simulate_in_lava(list(nets.values()))
    recorded = 0
    for (name, (graph, feeds, steps)), lava in zip(nets.items(), results, strict=True):
        traces = run(graph, feeds, steps=steps, trace=True).traces
        expected = {n for n, node in graph.nodes.items() if node.level == "fixed"}
        assert expected <= set(lava), f"{name}: Lava did not record {expected - set(lava)}"
        unbuffered = {n for n, node in graph.nodes.items() if getattr(node, "buffered", 1) == 0}
        _assert_equal(lava, traces, name, unbuffered)
        recorded += sum(v.size for v in lava.values())
    assert recorded > 50_000


def test_oxford_equals_lava_fixed_pt(data_dir: Path) -> None:
    """The first 300 of the tutorial's 2,000 steps (all 2,000 agree too: 9,632 output spikes each)."""
    steps = 300
    graph = import_netx(data_dir / "netx/oxford/network.net")
    x = spike_events_to_raster(np.load(data_dir / "netx/oxford/input.npy"), steps, 200)
    (lava,) = simulate_in_lava([(graph, {"input": x}, steps)], record=["layer0", "layer1"])
    traces = run(graph, {"input": x}, trace=True).traces
    assert lava["layer1"].sum() > 100
    _assert_equal(lava, traces, "oxford", set())
