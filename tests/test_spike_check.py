"""The binary-spike analysis (spikec.spike_check), its pass, its CLI command and the target helper."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conversion_models import residual_net

from spikec.blocks import BlockWeights, spike_driven_block, spikformer_block
from spikec.cli import main
from spikec.convert import convert
from spikec.errors import PassError, SpikecError, SpikecWarning, TargetError
from spikec.ir import (
    IF,
    LIF,
    Add,
    BatchNorm,
    Conv,
    Dense,
    Edge,
    Flatten,
    Graph,
    Input,
    MatMul,
    MaxPool,
    Node,
    Output,
    ReLU,
    Softmax,
    Transpose,
)
from spikec.models import save_model
from spikec.pipeline import PassManager
from spikec.spike_check import NotBinarySpikes, SpikeClass, SpikeReport, check_spikes, classify, require_binary_spikes
from spikec.target import Capabilities, Target

BINARY, TERNARY, INTEGER, REAL = SpikeClass.BINARY, SpikeClass.TERNARY, SpikeClass.INTEGER, SpikeClass.REAL


def _weights(seed: int = 0) -> BlockWeights:
    return BlockWeights.random(np.random.default_rng(seed), 8, 16)


def _offenders(report: SpikeReport) -> dict[str, str]:
    """offending node -> the upstream node blamed for it."""
    return {o.node: o.source for o in report.offenders}


def test_spikformer_block_reads_spikes_except_the_input_and_the_spike_sum() -> None:
    """Q/K/V, SSA and proj read LIF spikes; the block input is analog, and Spikformer's residual adds
    spike trains, so the MLP's first Linear reads counts (what Spikingformer and SDT fixed)."""
    block = spikformer_block(_weights(), tokens=4, heads=2)
    report = check_spikes(block)
    assert _offenders(report) == {"q_linear": "x", "k_linear": "x", "v_linear": "x", "fc1_linear": "res1"}
    c = report.classes
    assert {c[n] for n in ("q_lif", "k_lif", "v_lif", "attn_lif", "proj_lif", "fc1_lif", "fc2_lif")} == {BINARY}
    assert c["ssa"] is REAL and c["res1"] is REAL and c["x"] is REAL
    fc1 = next(o for o in report.offenders if o.node == "fc1_linear")
    assert fc1.kind == "Dense" and fc1.origin == "fc1.Linear" and "spike addition" in fc1.hint
    assert "encode-input{mode=poisson}" in report.offenders[0].hint

    spiking_input = check_spikes(block, inputs="binary")
    assert _offenders(spiking_input) == {"fc1_linear": "res1"}
    assert spiking_input.classes["res1"] is INTEGER  # x + proj spikes: counts 0..2


@pytest.mark.parametrize("attention", ["ssa", "sdsa"])
def test_spike_driven_blocks_pass_with_analog_input(attention: str) -> None:
    """Neuron first and membrane shortcuts: every synaptic op reads spikes even from an analog input."""
    block = spike_driven_block(_weights(), tokens=4, heads=2, attention=attention)
    report = check_spikes(block)
    assert report.ok, report.summary()
    c = report.classes
    assert c["x"] is REAL and c["shortcut_lif"] is BINARY
    assert c["res1"] is REAL and c["res2"] is REAL  # the membrane stream reaches only neurons and outputs
    if attention == "sdsa":
        assert (c["kv_sum"], c["kv_lif"], c["sdsa"]) == (INTEGER, BINARY, BINARY)  # AND mask of spikes


def test_ann_graph_every_layer_is_flagged() -> None:
    report = check_spikes(residual_net())
    assert set(report.classes.values()) == {REAL}
    relus = {o.node for o in report.offenders if o.kind == "ReLU"}
    assert relus == {"r1", "r2", "r3", "rb1", "rb2", "r4"}
    assert all("relu-to-if" in o.hint for o in report.offenders if o.kind == "ReLU")
    synaptic = {o.node: o.source for o in report.offenders if o.kind != "ReLU"}
    expected = {"c1": "x", "c2": "r1", "c3": "r2", "b1": "r3", "b2": "r3", "ap": "rb1", "fc1": "ap", "fc2": "r4"}
    assert synaptic == expected


def test_softmax_attention_is_not_event_driven() -> None:
    nodes: dict[str, Node] = {
        "q": Input(shape=(4, 8)),
        "k": Input(shape=(4, 8)),
        "kt": Transpose(perm=(1, 0)),
        "scores": MatMul(),
        "attn": Softmax(axis=-1),
        "out": Output(),
    }
    graph = Graph(nodes, [("k", "kt"), ("q", "scores"), ("kt", "scores"), ("scores", "attn"), ("attn", "out")])
    report = check_spikes(graph, inputs="binary")
    assert [(o.node, o.kind) for o in report.offenders] == [("attn", "Softmax")]
    assert "SpikingSelfAttention" in report.offenders[0].hint
    # analog operands make the MatMul an offender too, blamed on the input it reads
    assert _offenders(check_spikes(graph, inputs={"q": "binary"})) == {"scores": "k", "attn": ""}


def _small_cnn(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    layers: list[tuple[str, Node]] = [
        ("c1", Conv(weight=rng.normal(0, 0.5, (4, 1, 3, 3)), bias=rng.normal(0, 0.05, 4), padding=(1, 1))),
        ("bn1", BatchNorm(mean=np.zeros(4), var=np.ones(4), weight=rng.uniform(0.5, 1.5, 4), bias=np.zeros(4))),
        ("r1", ReLU()),
        ("mp", MaxPool(kernel_size=(2, 2))),
        ("c2", Conv(weight=rng.normal(0, 0.3, (6, 4, 3, 3)), padding=(1, 1))),
        ("r2", ReLU()),
        ("flat", Flatten()),
        ("fc", Dense(weight=rng.normal(0, 0.2, (5, 6 * 4 * 4)), bias=rng.normal(0, 0.05, 5))),
    ]
    nodes: dict[str, Node] = {"x": Input(shape=(1, 8, 8)), **dict(layers), "y": Output()}
    return Graph(nodes, list(itertools.pairwise(nodes)))


def test_converted_cnn_with_poisson_input_reads_only_spikes() -> None:
    images = np.random.default_rng(1).uniform(0.0, 1.0, size=(16, 1, 8, 8))  # non-negative: binary Poisson spikes
    snn, _ = convert(_small_cnn(), images, timesteps=8, encoding="poisson")
    report = check_spikes(snn, inputs="binary")
    assert report.ok, report.summary()
    kinds = {node.kind: report.classes[name] for name, node in snn.nodes.items()}
    assert kinds["IF"] is BINARY and kinds["RateMaxPool"] is BINARY and kinds["Flatten"] is BINARY
    # fed analog values (direct coding) only the first layer offends
    assert _offenders(check_spikes(snn)) == {"c1": "x"}


def test_converted_residual_net_flags_the_dense_that_reads_sumpool_counts() -> None:
    """AvgPool becomes SumPool of spikes: the Dense after it reads counts 0..4, which the check reports."""
    rng = np.random.default_rng(0)
    snn, _ = convert(residual_net(), np.abs(rng.normal(size=(16, 2, 8, 8))), timesteps=8, encoding="poisson")
    report = check_spikes(snn, inputs="binary")
    assert _offenders(report) == {"fc1": "ap"}
    assert report.classes["ap"] is INTEGER and "SumPool is linear" in report.offenders[0].hint


def test_bipolar_spikes_are_ternary_and_allowed_on_request() -> None:
    nodes: dict[str, Node] = {
        "x": Input(shape=(3,)),
        "fc1": Dense(weight=np.ones((4, 3))),
        "sign": IF(polarity="bipolar"),
        "fc2": Dense(weight=np.ones((2, 4))),
        "y": Output(),
    }
    graph = Graph(nodes, list(itertools.pairwise(nodes)))
    report = check_spikes(graph, inputs="binary")
    assert report.classes["sign"] is TERNARY
    assert _offenders(report) == {"fc2": "sign"} and "bipolar" in report.offenders[0].hint
    assert check_spikes(graph, inputs="binary", allow_ternary=True).ok


def test_recurrent_edges_reach_a_fixpoint() -> None:
    """x -> add -> LIF -> out, with LIF -> Dense ~> add: the Dense reads the LIF's spikes."""
    nodes: dict[str, Node] = {
        "x": Input(shape=(3,)),
        "add": Add(),
        "lif": LIF(tau=np.asarray(2e-3)),
        "rec": Dense(weight=np.eye(3)),
        "y": Output(),
    }
    edges = [Edge("x", "add"), Edge("add", "lif"), Edge("lif", "y"), Edge("lif", "rec"), Edge("rec", "add", True)]
    classes = classify(Graph(nodes, edges), inputs="binary")
    assert classes == {"x": BINARY, "lif": BINARY, "rec": REAL, "add": REAL, "y": BINARY}


def test_bad_input_declarations_are_errors() -> None:
    graph = _small_cnn()
    with pytest.raises(SpikecError, match="'spiky' is not one of"):
        check_spikes(graph, inputs="spiky")
    with pytest.raises(SpikecError, match=r"inputs \['z'\] are not graph inputs"):
        check_spikes(graph, inputs={"z": "binary"})


def test_check_spikes_pass_strict_fails_and_lenient_warns() -> None:
    block = spikformer_block(_weights(), tokens=4, heads=2)
    with pytest.raises(PassError, match=r"(?s)check-spikes.*fc1_linear.*spike addition"):
        PassManager(["check-spikes{strict=true,inputs=binary}"]).run(block)
    seen: list[SpikeReport] = []
    with pytest.warns(SpikecWarning, match="fc1_linear"):
        out = PassManager([("check-spikes", {"inputs": "binary", "on_report": seen.append})]).run(block)
    assert out is block or out == block
    assert _offenders(seen[0]) == {"fc1_linear": "res1"}
    PassManager(["check-spikes{strict=true}"]).run(spike_driven_block(_weights(), tokens=4, heads=2))


class _EventChip(Target):
    name = "event-chip"

    def capabilities(self) -> Capabilities:
        return Capabilities(binary_spikes_only=True)

    def legalize(self, graph: Graph) -> Graph:
        if self.capabilities().binary_spikes_only:
            require_binary_spikes(graph, self.name)
        return super().legalize(graph)


def test_a_binary_spike_target_names_the_node_and_the_fix() -> None:
    chip = _EventChip()
    good = spike_driven_block(_weights(), tokens=4, heads=2, attention="sdsa")
    assert chip.legalize(good) is good
    with pytest.raises(TargetError) as err:
        chip.legalize(spikformer_block(_weights(), tokens=4, heads=2))
    message = str(err.value)
    assert "target 'event-chip' takes only binary spike events" in message
    assert "node 'fc1_linear' (Dense) from fc1.Linear" in message and "membrane shortcuts" in message
    assert isinstance(err.value, NotBinarySpikes) and not err.value.report.ok
    assert Capabilities().binary_spikes_only is False


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_check_binary_spikes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "sdt.sir", tmp_path / "spikformer.sir"
    save_model(spike_driven_block(_weights(), tokens=4, heads=2, attention="sdsa"), good)
    save_model(spikformer_block(_weights(), tokens=4, heads=2), bad)

    code, out = _cli(capsys, "check", str(good), "--binary-spikes")
    assert code == 0 and out["ok"] and out["binary_spikes"] is True and out["offenders"] == []
    assert out["classes"]["kv_sum"] == "integer" and out["classes"]["sdsa"] == "binary"

    code, out = _cli(capsys, "check", str(bad), "--binary-spikes", "--inputs", "binary")
    assert code == 1 and not out["ok"] and out["error_type"] == "NotBinarySpikes"
    assert out["binary_spikes"] is False and len(out["classes"]) == len(
        spikformer_block(_weights(), tokens=4, heads=2).nodes
    )
    assert [(o["node"], o["kind"], o["source"]) for o in out["offenders"]] == [("fc1_linear", "Dense", "res1")]
    assert out["offenders"][0]["origin"] == "fc1.Linear" and "spike addition" in out["offenders"][0]["hint"]

    assert main(["check", str(bad), "--binary-spikes"]) == 1
    captured = capsys.readouterr()
    assert "node 'q_linear' (Dense)" in captured.err and "encode-input" in captured.err
    assert main(["check", str(good)]) == 0 and "verified" in capsys.readouterr().out


def test_every_node_kind_has_a_spike_rule() -> None:
    """A new kind needs a role trait (until then the check reports it as an offender)."""
    from spikec.ir import NODE_KINDS
    from spikec.spike_check import spike_rules

    ours = {k for k, cls in NODE_KINDS.items() if cls.__module__.startswith("spikec.") and not cls.graph_input}
    missing = ours - set(spike_rules())  # graph inputs are classified by what the user declares them to be
    assert missing == {"Subgraph"}, f"kinds without a binary-spike rule: {sorted(missing)}"


def test_a_kind_without_a_rule_is_an_offender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Softmax, "traits", frozenset())
    graph = Graph({"x": Input(shape=(3,)), "s": Softmax(), "y": Output()}, [("x", "s"), ("s", "y")])
    (offender,) = check_spikes(graph, inputs="binary").offenders
    assert offender.node == "s" and "no binary-spike rule" in offender.reason
    assert "role of Softmax in its traits" in offender.hint and "NonEvent()" in offender.hint


def test_spike_edges_summed_into_a_layer_are_counts() -> None:
    nodes: dict[str, Node] = {
        "x": Input(shape=(3,)),
        "a": LIF(tau=np.asarray(2e-3)),
        "b": LIF(tau=np.asarray(2e-3)),
        "fc": Dense(weight=np.ones((2, 3))),
        "y": Output(),
    }
    graph = Graph(nodes, [("x", "a"), ("x", "b"), ("a", "fc"), ("b", "fc"), ("fc", "y")])
    (offender,) = check_spikes(graph).offenders
    assert (offender.node, offender.source) == ("fc", "fc") and "summed into counts" in offender.reason
    assert "membrane shortcuts" in offender.hint
