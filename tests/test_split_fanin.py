"""``split-fanin``: a Loihi neuron too wide for one core is computed from relayed partial sums, bit for bit.

Networks in the Loihi dialect are split for a core of 64 input axons (tests/data/loihi2-small-core.toml, the
real resource file with that one figure changed), so layers of a few hundred inputs are too wide and small
enough for Lava. Every neuron of the split graph must compute exactly what it computed before, ``shift``
steps later (the relays' latency, aligned by delays where paths meet): spikes, u and v. The slow tests run
the split graphs in Lava (fixed_pt) and compile a torch MLP with the short command, verified with 0 mismatches.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from spikec.cli import main
from spikec.errors import DoesNotFit, TargetError
from spikec.interp import run
from spikec.ir import Flatten, Graph, Input, Output
from spikec.ir.node import Node
from spikec.passes.partition import partition_graph
from spikec.plugins import load_target
from spikec.resources import load_resource_model, resource_model
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, LoihiLIF
from spikec.targets.loihi2.fanin_fit import column_groups
from spikec.targets.loihi2.relay import LoihiGradedVec, LoihiPartialDense
from spikec.targets.loihi2.split_fanin import split_graph

SMALL = Path(__file__).parent / "data" / "loihi2-small-core.toml"
T = 30
Case = tuple[Graph, dict[str, np.ndarray], dict[str, int], int]  # graph, feeds (T, *shape), shift per neuron, group


def _spikes(rng: np.random.Generator, n: int, p: float = 0.3) -> np.ndarray:
    return (rng.random((T, n)) < p).astype(np.float64)


def _chain(named: dict[str, Node]) -> Graph:
    return Graph(named, list(itertools.pairwise(named)))


def wide_tree() -> Case:
    """300 binary inputs, mixed 7-bit weights, exponent -3 (floor shifts): 19 relays summed by a tree of 2."""
    rng = np.random.default_rng(1)
    graph = _chain({
        "x": Input(shape=(300,)),
        "fc": LoihiDense(weight=rng.integers(-256, 256, (10, 300)), weight_exp=-3, num_weight_bits=7),
        "lif": LoihiLIF(du=4095, dv=0, vth=np.array(40)),
        "y": Output(),
    })  # fmt: skip
    return graph, {"x": _spikes(rng, 300)}, {"lif": 2}, 16


def graded_delays() -> Case:
    """Graded 8-bit inputs, exponent +1, per-synapse delays 0..2 (a stream per delay), a flattened (4, 5, 6) source."""
    rng = np.random.default_rng(2)
    graph = _chain({
        "x": Input(shape=(4, 5, 6)),
        "flat": Flatten(),
        "fc": LoihiDense(weight=rng.integers(0, 200, (6, 120)), weight_exp=1, num_message_bits=8,
                         delay=rng.integers(0, 3, (6, 120))),
        "lif": LoihiLIF(du=3000, dv=500, vth=np.array(20000)),
        "y": Output(),
    })  # fmt: skip
    x = rng.integers(0, 128, (T, 4, 5, 6)).astype(np.float64) * (rng.random((T, 4, 5, 6)) < 0.5)
    return graph, {"x": x}, {"lif": 1}, 40


def meeting_paths(group: int) -> Callable[[], Case]:
    """A wide synapse and a narrow one into ``n``; ``m`` reads ``n`` and, skipping it, ``a``: the narrow
    synapse and the skip wait for the relays (group 40: a delay on each; group 8: the narrow one is relayed too,
    in fewer stages)."""

    def build() -> Case:
        rng = np.random.default_rng(3)
        nodes = {
            "x": Input(shape=(40,)),
            "wide": Input(shape=(200,)),
            "a_syn": LoihiDense(weight=rng.integers(-100, 200, (30, 40))),
            "a": LoihiLIF(du=4095, dv=0, vth=np.array(150)),
            "n_wide": LoihiDense(weight=rng.integers(-256, 256, (12, 200)), weight_exp=-2),
            "n_narrow": LoihiDense(weight=rng.integers(-60, 200, (12, 30)), weight_exp=-2, delay=np.asarray(1)),
            "n": LoihiLIF(du=1000, dv=200, vth=np.array(60)),
            "m_n": LoihiDense(weight=rng.integers(-50, 250, (5, 12))),
            "m_a": LoihiDense(weight=rng.integers(-120, 120, (5, 30)), delay=np.asarray(2)),
            "m": LoihiLIF(du=4095, dv=100, vth=np.array(90)),
            "y": Output(),
            "y_a": Output(),
        }
        edges = [("x", "a_syn"), ("a_syn", "a"), ("wide", "n_wide"), ("n_wide", "n"), ("a", "n_narrow"),
                 ("n_narrow", "n"), ("n", "m_n"), ("m_n", "m"), ("a", "m_a"), ("m_a", "m"), ("m", "y"),
                 ("a", "y_a")]  # fmt: skip
        feeds = {"x": _spikes(rng, 40, 0.5), "wide": _spikes(rng, 200)}
        stages = 2 if group == 8 else 1
        return Graph(nodes, edges), feeds, {"a": 0, "n": stages, "m": stages}, group

    build.__name__ = f"meeting_paths_{group}"
    return build


def fed_loop() -> Case:
    """A neuron in a recurrent loop (netx's dense_rec) fed by a wide synapse: the whole loop runs a step later."""
    rng = np.random.default_rng(6)
    nodes = {
        "x": Input(shape=(100,)),
        "ff": LoihiDense(weight=rng.integers(-50, 150, (8, 100)), weight_exp=-1),
        "n": LoihiLIF(du=3000, dv=800, vth=np.array(120)),
        "rec": LoihiDense(weight=rng.integers(-150, 100, (8, 8)), buffered=0),
        "out": LoihiDense(weight=rng.integers(-50, 200, (4, 8))),
        "r": LoihiLIF(du=4095, dv=0, vth=np.array(30)),
        "y": Output(),
    }
    edges = [("x", "ff"), ("ff", "n"), ("n", "rec"), ("rec", "n", True), ("n", "out"), ("out", "r"), ("r", "y")]
    return Graph(nodes, edges), {"x": _spikes(rng, 100)}, {"n": 1, "r": 1}, 16


CASES: dict[str, Callable[[], Case]] = {
    f.__name__: f for f in (wide_tree, graded_delays, meeting_paths(40), meeting_paths(8), fed_loop)
}


def _split(name: str) -> tuple[Graph, Graph, dict[str, np.ndarray], dict[str, int], dict]:
    graph, feeds, shifts, group = CASES[name]()
    result = split_graph(graph, load_resource_model(SMALL), group=group)
    assert result.changed
    return graph, result.graph, feeds, shifts, result.report


def _assert_shifted(before: dict[str, np.ndarray], after: dict[str, np.ndarray], shifts: dict[str, int]) -> None:
    for name, s in shifts.items():
        for key in (name, f"{name}.i", f"{name}.v"):
            old, new = before[key], after[key]
            np.testing.assert_array_equal(new[s:], old[: len(old) - s], err_msg=key)
            assert not np.any(new[:s]), key  # nothing arrives before the relays deliver
    assert any(before[n].any() for n in shifts)


@pytest.mark.parametrize("name", CASES)
def test_split_neurons_compute_what_they_computed_shifted(name: str) -> None:
    graph, split, feeds, shifts, report = _split(name)
    before = run(graph, feeds, steps=T, trace=list(shifts)).traces
    after = run(split, feeds, steps=T, trace=list(shifts)).traces
    _assert_shifted(before, after, shifts)
    assert report["latency_added"] == {o: shifts[graph.in_edges(o)[0].src] for o in graph.outputs if
                                       shifts[graph.in_edges(o)[0].src]}  # fmt: skip
    model = load_resource_model(SMALL)
    with pytest.raises(DoesNotFit, match="resource input_axons"):
        partition_graph(graph, model)
    core_map = partition_graph(split, model)  # every relay and merge fits the small core
    assert all(use[3] <= 64 for use in (c.usage for c in core_map.cores))


def test_the_split_is_relays_of_at_most_group_inputs_summed_once_with_the_exponent() -> None:
    _, split, _, _, report = _split("wide_tree")
    parts = {n: node for n, node in split.nodes.items() if isinstance(node, LoihiPartialDense)}
    assert len(parts) == 19 and all(p.weight.shape[1] <= 16 and p.weight_exp == 0 for p in parts.values())
    assert all(p.sign_mode == 1 and p.num_weight_bits == 7 for p in parts.values())  # the layer's mixed truncation
    relays = [n for n, node in split.nodes.items() if isinstance(node, LoihiGradedVec)]
    assert len(relays) == 19 + 2  # a tree stage of two sums
    merge = split.nodes["fc.merge"]
    assert isinstance(merge, LoihiDense) and merge.weight_exp == -3 and merge.num_message_bits == 24
    assert [e.src for e in split.in_edges("fc.merge")] == ["fc.relay1_0", "fc.relay1_1"]
    assert "fc" not in split.nodes and report["split"][0]["synapses"][0]["fan_in"] == 300
    assert split_graph(split, load_resource_model(SMALL)).changed is False  # nothing left too wide


def test_paths_meeting_a_split_neuron_wait_by_synaptic_delays() -> None:
    _, split, _, _, _ = _split("meeting_paths_40")
    assert np.asarray(split.nodes["n_narrow"].delay) == 2  # its own 1 + the relay's step
    assert np.asarray(split.nodes["m_a"].delay) == 3  # the skip past n waits for n
    _, split8, _, _, _ = _split("meeting_paths_8")
    # both synapses relayed: 200 inputs take 2 stages (25 relays, then 4), 30 take 1 and wait a step on their merge
    assert np.asarray(split8.nodes["n_narrow.merge"].delay) == 2  # its own 1 + that step
    assert split8.nodes["n_wide.merge"].delay is None and np.asarray(split8.nodes["m_a"].delay) == 4


def test_delays_split_into_one_stream_per_value() -> None:
    _, split, _, _, _ = _split("graded_delays")
    merges = sorted(n for n in split.nodes if n.endswith(".merge"))
    assert merges == ["fc.d0.merge", "fc.d1.merge", "fc.d2.merge"]
    assert [int(np.max(split.nodes[m].delay or 0)) for m in merges] == [0, 1, 2]
    parts = [node for node in split.nodes.values() if isinstance(node, LoihiPartialDense)]
    assert {(p.in_offset, p.weight.shape[1]) for p in parts} == {(0, 30), (30, 30), (60, 30), (90, 30)}


def test_column_groups_are_boxes_of_the_source() -> None:
    assert column_groups((512, 7, 7), 2048) == [(i * 1960, min((i + 1) * 1960, 25088)) for i in range(13)]
    assert column_groups((100,), 4) == [(i, i + 4) for i in range(0, 100, 4)]
    assert column_groups((2, 8, 8), 16) == [(i, i + 16) for i in range(0, 128, 16)]
    assert column_groups((3, 4), 100) == [(0, 12)]


def test_a_layer_just_over_the_real_core_is_split_with_the_real_resource_model() -> None:
    rng = np.random.default_rng(4)
    graph = _chain({
        "x": Input(shape=(9000,)),
        "fc": LoihiDense(weight=rng.integers(-128, 128, (16, 9000)), weight_exp=-5),
        "lif": LoihiLIF(du=4095, dv=0, vth=np.array(100)),
        "y": Output(),
    })  # fmt: skip
    model = resource_model("loihi2")
    result = split_graph(graph, model)
    assert result.report["group"] == 2048 and result.report["split"][0]["synapses"][0]["relays"] == 5
    x = _spikes(rng, 9000, 0.05)
    _assert_shifted(run(graph, {"x": x}, trace=["lif"]).traces, run(result.graph, {"x": x}, trace=["lif"]).traces,
                    {"lif": 1})  # fmt: skip
    assert partition_graph(result.graph, model).cores_used >= 1
    narrow = _chain({"x": Input(shape=(8000,)), "fc": LoihiDense(weight=np.ones((4, 8000))), "n": LoihiLIF(),
                     "y": Output()})  # fmt: skip
    assert split_graph(narrow, model).changed is False  # 8,000 inputs fit one core's 8,192


# -- what cannot fit even with splitting -------------------------------------------------------------------------
def test_a_convolution_too_wide_for_a_core_names_resource_layer_amount_and_fix() -> None:
    rng = np.random.default_rng(5)
    graph = _chain({
        "x": Input(shape=(8, 5, 5)),
        "conv": LoihiConv(weight=rng.integers(-50, 50, (4, 8, 3, 3))),
        "c": LoihiLIF(),
        "y": Output(),
    })  # fmt: skip
    with pytest.raises(DoesNotFit, match=r"resource input_axons: layer node 'c'.* reads 72 presynaptic.*fewer input"):
        split_graph(graph, load_resource_model(SMALL))


def test_partial_sums_beyond_a_graded_spike_are_refused() -> None:
    graph = _chain({
        "x": Input(shape=(100,)),
        "fc": LoihiDense(weight=np.full((2, 100), 255), num_message_bits=24),
        "n": LoihiLIF(),
        "y": Output(),
    })  # fmt: skip
    match = r"resource graded_spike_bits: .*node 'fc'.* columns \[0, 15\) reach 32,086,425,600.*group=N"
    with pytest.raises(DoesNotFit, match=match):
        split_graph(graph, load_resource_model(SMALL), group=16)


def test_a_delay_beyond_62_steps_is_refused() -> None:
    graph, *_ = meeting_paths(40)()
    nodes = dict(graph.nodes) | {"m_a": graph.nodes["m_a"].replace(delay=np.asarray(62))}
    with pytest.raises(DoesNotFit, match=r"resource max_delay_steps: node 'm_a'.* 63-step .* at most 62"):
        split_graph(Graph(nodes, graph.edges), load_resource_model(SMALL), group=40)


def test_a_split_inside_a_recurrent_loop_is_refused() -> None:
    """Relaying the loop's own synapse (``n`` -> ``r``, 100 inputs) would lengthen the loop: refused."""
    rng = np.random.default_rng(7)
    nodes = {
        "x": Input(shape=(20,)),
        "ff": LoihiDense(weight=rng.integers(-50, 50, (100, 20))),
        "n": LoihiLIF(du=3000, dv=800, vth=np.array(120)),
        "loop": LoihiDense(weight=rng.integers(-50, 50, (8, 100))),
        "r": LoihiLIF(),
        "back": LoihiDense(weight=rng.integers(-50, 50, (100, 8)), buffered=0),
        "y": Output(),
    }
    edges = [("x", "ff"), ("ff", "n"), ("n", "loop"), ("loop", "r"), ("r", "back"), ("back", "n", True),
             ("n", "y")]  # fmt: skip
    with pytest.raises(TargetError, match=r"recurrent edge .*loop's latency"):
        split_graph(Graph(nodes, edges), load_resource_model(SMALL))


def test_the_loihi2_pipeline_splits_before_partition() -> None:
    target = load_target("loihi2")
    steps = target.default_pipeline()
    assert steps.index("split-fanin") == steps.index("quantize{target=loihi2}") + 1 == steps.index(
        "partition{target=loihi2}") - 1  # fmt: skip
    assert target.passes["split-fanin"].endswith("split_fanin:split_fanin")


# -- Lava ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_split_graphs_equal_lava_fixed_pt() -> None:
    from spikec.targets.loihi2.lava_env import simulate_in_lava

    runs = []
    for name in CASES:
        _, split, feeds, _, _ = _split(name)
        runs.append((split, feeds, T))
    for (split, feeds, steps), lava in zip(runs, simulate_in_lava(runs), strict=True):
        traces = run(split, feeds, steps=steps, trace=True).traces
        fixed = {n for n, node in split.nodes.items() if node.level == "fixed"}
        assert fixed <= set(lava)
        for key, value in lava.items():
            mine = traces[key][:, 0]
            if getattr(split.nodes.get(key), "buffered", 1) == 0:  # Lava sends an unbuffered synapse's buffer
                mine = np.concatenate([np.zeros_like(mine[:1]), mine[:-1]])
            mismatches = int(np.sum(value != mine))
            assert mismatches == 0, f"{key}: {mismatches} of {value.size} values differ from Lava"


@pytest.mark.slow
def test_a_torch_mlp_too_wide_for_the_core_compiles_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The short command with the small core's resource file: split, placed, and 0 mismatches in Lava."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(300, 40), torch.nn.ReLU(), torch.nn.Linear(40, 10)).eval()
    torch.onnx.export(model, (torch.rand(1, 300),), tmp_path / "mlp.onnx", dynamo=True)
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).random((32, 300)).astype(np.float32))
    out = tmp_path / "art"
    argv = ["compile", str(tmp_path / "mlp.onnx"), "--target", "loihi2", "--calib", str(tmp_path / "calib.npy"),
            "--timesteps", "12", "-o", str(out), "--json", "--pass-option", "quantize.reset_to_zero=true",
            "--pass-option", f"split-fanin.resources={SMALL}",
            "--pass-option", f"partition.resources={SMALL}"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().out
    capsys.readouterr()
    split = json.loads((out / "report.json").read_text())["artifact"]["split_fanin"]
    assert split["split"][0]["synapses"][0]["fan_in"] == 300 and split["latency_added"]
    core_map = json.loads((out / "core_map.json").read_text())
    assert all(core["usage"]["input_axons"] <= 64 for core in core_map["cores"])
    assert main(["verify", str(out), "--layers", "--samples", "1", "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["mismatches"] == 0 and verified["compared"] > 10_000, verified
