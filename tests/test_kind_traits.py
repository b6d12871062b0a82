"""Node-kind facts as traits: every kind is complete, a new neuron kind is one class and one kernel.

The registries keyed by kind derive from the traits declared on the kind classes (spikec.ir.traits);
``spikec.kind_check`` names every kind that lacks a kernel, a role, or an entry a pass's per-kind
algorithm needs. These tests run it on every registered kind, targets' included, and show that a
kind declared here, with nothing but its class and its kernel, is picked up everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest

from spikec.demand import layer_demands, neuron_spec
from spikec.frontends.nir_checks import transfer_of
from spikec.interp import KERNELS, kernel, run
from spikec.ir import LIF, NODE_KINDS, Dense, Graph, Input, Output, ann
from spikec.ir.node import Node
from spikec.ir.traits import EmitsSpikes, Neuron, Routing, ScalePassesThrough, Synaptic
from spikec.kind_check import IncompleteKind, check_kinds, kind_problems
from spikec.passes.flatten_tokens import flatten_tokens
from spikec.plugins import load_target, target_entry_points
from spikec.resources import resource_model
from spikec.spike_check import Role, SpikeClass, check_spikes, classify, rule_of, spike_rules


@pytest.fixture
def scratch_kinds() -> Iterator[None]:
    """Kinds and kernels a test declares are forgotten after it (the registries are process-wide)."""
    kinds, kernels = dict(NODE_KINDS), dict(KERNELS)
    yield
    NODE_KINDS.clear()
    NODE_KINDS.update(kinds)
    KERNELS.clear()
    KERNELS.update(kernels)


def test_every_kind_of_spikec_and_of_every_installed_target_is_complete() -> None:
    for name in target_entry_points():
        load_target(name)  # a target may bring kinds of its own
    assert len(NODE_KINDS) > 50
    assert kind_problems() == []


def test_a_kind_without_kernel_or_role_is_named_with_what_it_lacks(scratch_kinds: None) -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
    class Bare(Node):
        """A kind someone forgot to finish: no traits, no kernel."""

        kind = "TestBare"

    problems = kind_problems([Bare])
    assert len(problems) == 2
    assert all("'TestBare'" in p for p in problems)
    assert "no interpreter kernel" in problems[0] and "@spikec.interp.kernel(Bare)" in problems[0]
    assert "declares no role" in problems[1] and "Neuron(), Synaptic(), Routing(), NonEvent()" in problems[1]
    with pytest.raises(IncompleteKind, match="TestBare"):
        check_kinds()  # the whole registry, as a target loader would check it


def test_a_trait_without_the_passs_algorithm_is_named(scratch_kinds: None) -> None:
    """ScalePassesThrough promises threshold-balance a way to lay a scale out past the kind."""

    @dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
    class Mirror(ann.Identity):
        """y = x, reversed along no axis (a routing kind with a scale trait but no layout rule)."""

        kind = "TestMirror"
        traits = frozenset({Routing(), ScalePassesThrough()})

    kernel(Mirror)(KERNELS[ann.Identity])
    (problem,) = kind_problems([Mirror])
    assert "'TestMirror'" in problem and "threshold_balance.TRANSFER" in problem


def test_traits_are_checked_when_the_kind_is_declared() -> None:
    with pytest.raises(TypeError, match=r"'TestTwoRoles' declares 2 roles \(Neuron, Synaptic\)"):

        @dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
        class TwoRoles(Node):
            """Both a neuron and a synapse."""

            kind = "TestTwoRoles"
            traits = frozenset({Neuron(), Synaptic()})

    with pytest.raises(TypeError, match=r"'TestStrings'.*not spikec.ir.traits.Trait objects"):

        @dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
        class Strings(Node):
            """Traits given as names."""

            kind = "TestStrings"
            traits = frozenset({"neuron"})  # type: ignore[arg-type]

    assert "TestTwoRoles" not in NODE_KINDS and "TestStrings" not in NODE_KINDS


def test_the_old_tables_are_derived_from_the_traits() -> None:
    rules = spike_rules()
    assert rules["LIF"].role is Role.NEURON and rules["Dense"].role is Role.SYNAPTIC
    assert rules["Reshape"].role is Role.ROUTING and rules["Softmax"].role is Role.NON_EVENT
    assert "retrain" in rules["Softmax"].hint
    assert set(NODE_KINDS) - set(rules) == {"Input", "TokenInput", "Subgraph"}  # graph inputs, nested graphs
    assert neuron_spec(LIF) is not None and neuron_spec(Dense) is None
    assert LIF.has_trait(EmitsSpikes) and not Dense.has_trait(Neuron)


def test_a_new_neuron_kind_is_one_class_and_one_kernel(scratch_kinds: None) -> None:
    """Declared here with its traits and a kernel, nothing else: the interpreter runs it, the spike check,
    the core demand, NIR's bounds and flatten-tokens know it."""

    @dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
    class TwinLIF(LIF):
        """An LIF under another name (a vendor's neuron with the same equations)."""

        kind = "TestTwinLIF"
        traits = frozenset({Neuron(), EmitsSpikes()})

    kernel(TwinLIF)(KERNELS[LIF])
    assert kind_problems([TwinLIF]) == []

    neuron = TwinLIF(tau=np.asarray(2e-3), v_threshold=np.asarray(0.5))
    graph = Graph(
        {"x": Input(shape=(3,)), "fc": Dense(weight=np.eye(3)), "n": neuron, "fc2": Dense(weight=np.ones((2, 3))),
         "y": Output()},
        [("x", "fc"), ("fc", "n"), ("n", "fc2"), ("fc2", "y")],
    )  # fmt: skip
    twin = run(graph, {"x": np.ones((30, 1, 3))}).outputs["y"]
    reference = graph.with_node("n", LIF(tau=np.asarray(2e-3), v_threshold=np.asarray(0.5)))
    np.testing.assert_array_equal(twin, run(reference, {"x": np.ones((30, 1, 3))}).outputs["y"])
    assert 0 < np.count_nonzero(twin) < twin.size  # it spikes, and not on every step

    assert rule_of(TwinLIF) is not None and classify(graph, "binary")["n"] is SpikeClass.BINARY
    assert [o.node for o in check_spikes(graph).offenders] == ["fc"]  # fc reads the analog input; fc2 reads spikes
    layers = layer_demands(graph, resource_model("loihi2"))
    assert [layer.name for layer in layers] == ["n"]
    assert transfer_of(neuron) is not None

    tokens = Graph(
        {"x": Input(shape=(2, 3)), "n": neuron, "fc": Dense(weight=np.ones((2, 3))), "y": Output()},
        [("x", "n"), ("n", "fc"), ("fc", "y")],
    )
    flat = flatten_tokens(tokens).graph
    assert any(isinstance(node, TwinLIF) for node in flat.nodes.values())
