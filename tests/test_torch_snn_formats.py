"""Imported SNN-framework models outside from_torch: the CLI with --arch, the .sir round trip of
the framework fields, the ONNX spikec domain and the refusal of other custom domains, NIR export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from spikec.cli import main
from spikec.errors import FrontendError
from spikec.frontends.nir_export import ExportError, to_nir_dict
from spikec.frontends.onnx import import_onnx
from spikec.frontends.torch_import import from_torch
from spikec.frontends.torch_snn.export import neuron_attributes
from spikec.interp import run
from spikec.ir import LIF, Dense, Graph, Input, Output
from spikec.ir.graph import DEFAULT_DT, Edge
from spikec.text import load_sir, save_sir

REPO = Path(__file__).resolve().parents[1]


def _framework_graph() -> Graph:
    lif = LIF(
        tau=np.array([2.0, 3.0]) * DEFAULT_DT,
        v_threshold=np.array(0.5),
        v_reset=np.array(-0.1),
        v_init=np.array(-0.1),
        firing="at_or_above",
        reset="subtract_next",
    )
    nodes = {"x": Input(shape=(3,)), "fc": Dense(weight=np.arange(6.0).reshape(2, 3) / 8), "lif": lif, "y": Output()}
    return Graph(nodes, [Edge("x", "fc"), Edge("fc", "lif"), Edge("lif", "y")])


def test_sir_round_trip_keeps_the_framework_fields(tmp_path: Path) -> None:
    graph = _framework_graph()
    save_sir(graph, tmp_path / "g.sir")
    assert load_sir(tmp_path / "g.sir") == graph


def test_nir_export_refuses_what_nir_cannot_say() -> None:
    graph = _framework_graph()
    with pytest.raises(ExportError, match="reset='subtract_next'"):
        to_nir_dict(graph)
    lif = graph.nodes["lif"]
    with pytest.raises(ExportError, match="firing='at_or_above'"):
        to_nir_dict(graph.replace(nodes={**graph.nodes, "lif": lif.replace(reset="value")}))


def _one_node_model(domain: str, op_type: str, attributes: list[onnx.AttributeProto]) -> onnx.ModelProto:
    node = helper.make_node(op_type, ["x"], ["y"], domain=domain, name="neuron0")
    node.attribute.extend(attributes)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid(domain, 1)])


def test_spikec_domain_node_is_a_sir_neuron_with_time_constants_in_steps() -> None:
    lif = LIF(tau=np.array([2.0, 4.0]), v_threshold=np.array(0.5), firing="at_or_above")
    graph = import_onnx(_one_node_model("spikec", "LIF", neuron_attributes(lif)))
    (imported,) = [n for n in graph.nodes.values() if n.kind == "LIF"]
    assert imported == lif.replace(tau=lif.tau * graph.dt, origin=imported.origin)
    spikes = run(graph, np.full((3, 1, 2), 0.6)).outputs[graph.outputs[0]]
    # tau = 2 steps: v = 0.3, 0.45, 0.525 → fires at step 2; tau = 4: 0.15, 0.2625, 0.346875
    np.testing.assert_array_equal(spikes[:, 0], [[0, 0], [0, 0], [1, 0]])


def test_other_custom_domains_are_refused_clearly() -> None:
    with pytest.raises(FrontendError, match=r"neuron0.*op 'Leaky' of custom domain 'acme\.snn' is not supported"):
        import_onnx(_one_node_model("acme.snn", "Leaky", []))
    with pytest.raises(FrontendError, match=r"op 'Izhikevich' of custom domain 'spikec'.*spikec\.LIF"):
        import_onnx(_one_node_model("spikec", "Izhikevich", []))


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["build_spikingjelly", "build_snntorch"])
def test_cli_imports_a_framework_block_from_a_state_dict(
    builder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("spikformer_block", REPO / "examples" / "spikformer_block.py")
    assert spec is not None and spec.loader is not None
    blocks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(blocks)
    block = getattr(blocks, builder)(seed=7)  # other weights than the builder's default seed 0
    torch.save(block.state_dict(), tmp_path / "block.pt")
    out = tmp_path / "block.sir"
    arch = f"{REPO / 'examples' / 'spikformer_block.py'}:{builder}"
    weights = str(tmp_path / "block.pt")
    code = main(["import", weights, "--arch", arch, "--input-shape", "6,16", "-o", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    x = torch.randn(4, 1, 6, 16, generator=torch.Generator().manual_seed(3))
    want = run(from_torch(block, x[0]), x.double().numpy()).outputs
    got = run(load_sir(out), x.double().numpy()).outputs
    assert next(iter(got.values())).tolist() == next(iter(want.values())).tolist()
