"""The template target's own tests: run them with ``pytest tests/`` where spikec-acme is installed.

The chip's simulator and the dialect's interpreter kernels are checked against numbers worked out by hand
from the specification, then against each other on random networks placed by spikec's partitioner; the
quantizer against the float SNN it lowers; bad input against the messages it must give.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from acme_sim import ConfigError, read_config, simulate, write_config
from acme_spikec import check_fixed
from acme_spikec.dialect import V_MAX, V_MIN, AcmeDense, AcmeLIF
from acme_spikec.emit import network_config

from spikec.errors import DoesNotFit, InputError, VerifyError
from spikec.interp import run
from spikec.ir import IF, LIF, Conv, Dense, Flatten, Graph, I, Input, Output
from spikec.ir.node import Node
from spikec.passes.partition import partition_graph
from spikec.passes.quantize import QuantizationError, QuantizeResult, quantize
from spikec.plugins import load_target


def chain(nodes: dict[str, Node]) -> Graph:
    return Graph(nodes, list(itertools.pairwise(nodes)))


def both(graph: Graph, x: np.ndarray, input_max: int = 255) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every group's output, by name, from the simulator (on the emitted configuration) and the interpreter."""
    config = network_config(graph, partition_graph(graph, "acme1"), input_max)
    chip = simulate(config, {"x": x}, x.shape[0])
    groups = [g.name for g in config.groups]
    mine = run(graph, x, trace=groups)
    return {g: chip.sent[g] for g in groups}, {g: mine.traces[g] for g in groups}


# -- the specification, by hand ---------------------------------------------------------------------
def test_one_neuron_step_by_step() -> None:
    """v0 = 3, k = 1, θ = 10, b = 1, W = [2, -1]: the leak floors negative v too (-1 >> 1 = -1)."""
    neuron = AcmeLIF(threshold=np.asarray(10), bias=np.asarray(1), v_init=np.asarray(3), leak_shift=1)
    graph = chain({"x": Input(shape=(2,)), "w": AcmeDense(weight=np.asarray([[2, -1]])), "n": neuron, "y": Output()})
    x = np.asarray([[3, 1], [0, 0], [5, 0], [0, 4], [0, 0]], np.float64)[:, None, :]
    # v: 3 - 1 + 5 + 1 = 8; 8 - 4 + 1 = 5; 5 - 2 + 10 + 1 = 14 fires -> 4; 4 - 2 - 4 + 1 = -1; -1 + 1 + 1 = 1
    spikes, membrane = [0, 0, 1, 0, 0], [8, 5, 4, -1, 1]
    config = network_config(graph, partition_graph(graph, "acme1"), 255)
    chip = simulate(config, {"x": x}, 5)
    np.testing.assert_array_equal(chip.sent["n"][:, 0, 0], spikes)
    np.testing.assert_array_equal(chip.membrane["n"][:, 0, 0], membrane)
    mine = run(graph, x, trace=["n"])
    np.testing.assert_array_equal(mine.traces["n"][:, 0, 0], spikes)
    np.testing.assert_array_equal(mine.traces["n.v"][:, 0, 0], membrane)


def test_membrane_saturates_at_24_bits() -> None:
    """A readout near either end of its 24-bit range stops there, on the chip and in the interpreter."""
    readout = AcmeLIF(v_init=np.asarray([V_MAX - 10, V_MIN + 10]), readout=1)
    weight = AcmeDense(weight=np.asarray([[127], [-128]]))
    graph = chain({"x": Input(shape=(1,)), "w": weight, "r": readout, "y": Output()})
    x = np.full((3, 1, 1), 255.0)
    chip, mine = both(graph, x)
    expected = np.asarray([[V_MAX, V_MIN]] * 3)
    np.testing.assert_array_equal(chip["r"][:, 0], expected)
    np.testing.assert_array_equal(mine["r"][:, 0], expected)


# -- kernels == simulator --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_interpreter_equals_simulator_on_random_networks(seed: int) -> None:
    """Random groups (one spanning three cores), leaks, biases, thresholds and graded inputs: every spike equal."""
    rng = np.random.default_rng(seed)
    sizes = [40, 600, 30, 8]
    nodes: dict[str, Node] = {"x": Input(shape=(sizes[0],))}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        nodes[f"w{i}"] = AcmeDense(weight=rng.integers(-128, 128, (n_out, n_in)))
        nodes[f"n{i}"] = AcmeLIF(
            threshold=rng.integers(1, 3000, n_out),
            bias=rng.integers(-300, 300, n_out),
            v_init=rng.integers(-1000, 1000, n_out),
            leak_shift=int(rng.integers(0, 16)),
            readout=int(last),
        )
    nodes["y"] = Output()
    graph = chain(nodes)
    x = rng.integers(0, 256, (20, 3, sizes[0])).astype(np.float64)
    chip, mine = both(graph, x)
    assert len(read_cores(graph)) >= 3
    for name in chip:
        np.testing.assert_array_equal(chip[name], mine[name], err_msg=name)
    assert chip["n0"].sum() > 0 and chip["n1"].sum() > 0  # the spiking groups do fire


def read_cores(graph: Graph) -> set[int]:
    return {p.core for placements in partition_graph(graph, "acme1").layers.values() for p in placements}


# -- the quantizer -----------------------------------------------------------------------------------------
def float_snn(neuron: Node, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    return chain(
        {
            "x": Input(shape=(1, 8, 8)),
            "flat": Flatten(),
            "fc1": Dense(weight=rng.normal(0, 0.3, (300, 64)), bias=rng.normal(0, 0.05, 300)),
            "n1": neuron,
            "fc2": Dense(weight=rng.normal(0, 0.2, (10, 300))),
            "readout": I(),
            "y": Output(),
        }
    )


NEURONS = {
    "IF": IF(v_threshold=np.asarray(1.0), reset="subtract", v_init=np.asarray(0.5)),
    "LIF": LIF(tau=np.asarray(4e-4), v_threshold=np.asarray(1.0), reset="subtract"),  # dt/tau = 1/4: k = 2
}


@pytest.mark.parametrize("kind", NEURONS)
def test_quantized_snn_tracks_the_float_one(kind: str) -> None:
    graph = float_snn(NEURONS[kind])
    result = quantize(graph, target="acme1", timesteps=32)
    assert isinstance(result, QuantizeResult)
    q = result.graph
    assert {n.kind for n in q.nodes.values()} == {"Input", "Flatten", "AcmeDense", "AcmeLIF", "Output"}
    assert [layer["leak_shift"] for layer in result.report["layers"]] == [2 if kind == "LIF" else 0, 0]
    x = (np.random.default_rng(1).random((32, 16, 1, 8, 8)) < 0.3).astype(np.float64)
    check_fixed(q, {"x": x})
    ours, theirs = run(graph, x, trace=["n1"]), run(q, x, trace=["n1"])
    assert ours.traces["n1"].sum() > 1000
    assert np.mean(ours.traces["n1"] == theirs.traces["n1"]) > 0.98  # rounding shifts a spike by a step here and there
    counts = np.abs(ours.traces["n1"].sum(axis=0) - theirs.traces["n1"].sum(axis=0))
    assert np.mean(counts <= 1) >= 0.999  # 32-step spike counts within one
    scale = result.report["output_scales"]["y"]
    float_v, chip_v = ours.outputs["y"][-1], theirs.outputs["y"][-1] / scale
    assert np.corrcoef(float_v.ravel(), chip_v.ravel())[0, 1] > 0.99
    assert np.mean(float_v.argmax(1) == chip_v.argmax(1)) >= 0.9


def test_dialect_graph_passes_through_unchanged() -> None:
    graph = quantize(float_snn(NEURONS["IF"]), target="acme1").graph
    again = quantize(graph, target="acme1")
    assert again.graph is graph and not again.changed


@pytest.mark.parametrize(
    ("neuron", "message"),
    [
        (LIF(tau=np.asarray(3e-4), reset="subtract"), r"node 'n1' \(LIF\) decays by dt/tau = 0.3333.*tau = dt \* 2\^k"),
        (IF(reset="value"), r"node 'n1' \(IF\) resets with 'value'; ACME-1 neurons reset by subtraction only"),
        (IF(reset="subtract", polarity="bipolar"), r"node 'n1' \(IF\) is bipolar"),
    ],
)
def test_neurons_the_chip_does_not_have(neuron: Node, message: str) -> None:
    with pytest.raises(QuantizationError, match=message):
        quantize(float_snn(neuron), target="acme1")


def test_a_convolution_is_refused_naming_it() -> None:
    graph = chain(
        {
            "x": Input(shape=(1, 6, 6)),
            "conv": Conv(weight=np.ones((2, 1, 3, 3))),
            "n": IF(reset="subtract"),
            "y": Output(),
        }
    )
    with pytest.raises(QuantizationError, match=r"node 'conv' \(Conv\) has no ACME-1 form"):
        quantize(graph, target="acme1")


def test_options_the_chip_cannot_honour() -> None:
    graph = float_snn(NEURONS["IF"])
    with pytest.raises(QuantizationError, match="reset by subtraction only"):
        quantize(graph, target="acme1", reset_to_zero=True)
    with pytest.raises(QuantizationError, match=r"input_max=1000; ACME-1 inputs are integers 0\.\.255"):
        quantize(graph, target="acme1", input_max=1000)


# -- placement, configuration and inputs ----------------------------------------------------------------------
def test_fan_in_beyond_a_core_does_not_fit() -> None:
    graph = chain(
        {
            "x": Input(shape=(2000,)),
            "w": AcmeDense(weight=np.ones((4, 2000), np.int64)),
            "n": AcmeLIF(threshold=np.asarray(100)),
            "y": Output(),
        }
    )
    with pytest.raises(DoesNotFit, match="resource input_axons"):
        partition_graph(graph, "acme1")


def test_configuration_reader_refuses_what_the_chip_cannot_load(tmp_path: Path) -> None:
    graph = quantize(float_snn(NEURONS["IF"]), target="acme1").graph
    config = network_config(graph, partition_graph(graph, "acme1"), 1)
    write_config(tmp_path, config)
    assert [g.size for g in read_config(tmp_path).groups] == [300, 10]
    np.save(tmp_path / "arrays" / "g0.threshold.npy", np.zeros(300, np.int32))
    with pytest.raises(ConfigError, match=r"group 'n1' field 'threshold' holds \[0, 0\], outside 1..8388607"):
        read_config(tmp_path)
    g0 = config.groups[0]
    doubled = dataclasses.replace(g0, cores=(*g0.cores, g0.cores[0]))
    write_config(tmp_path, dataclasses.replace(config, groups=(doubled, *config.groups[1:])))
    with pytest.raises(ConfigError, match="neuron 0 is placed on 2 cores"):
        read_config(tmp_path)


def test_fixed_mode_takes_dialect_graphs_and_integer_inputs() -> None:
    target = load_target("acme1")
    graph = float_snn(NEURONS["IF"])
    with pytest.raises(VerifyError, match=r"node 'fc1' \(Dense\) is not in the ACME-1 dialect"):
        target.check_fixed(graph, {})
    q = quantize(graph, target="acme1").graph
    with pytest.raises(InputError, match=r"integer inputs 0\.\.255"):
        target.check_fixed(q, {"x": np.full((2, 1, 1, 8, 8), 0.5)})
