"""NIR node names and edges: opaque names, dotted paths into nested graphs, SIR renames, bad edges.

Files are written with the nir library itself (``nir.write``), as exporters do.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from spikec.cli import main
from spikec.errors import FrontendError
from spikec.frontends.nir_export import export_nir
from spikec.frontends.nir_import import import_nir
from spikec.interp import run

RNG = np.random.default_rng(3)


def _lin(n_out: int, n_in: int) -> nir.Linear:
    return nir.Linear(weight=RNG.uniform(-1, 1, (n_out, n_in)).astype(np.float32))


def _li(n: int) -> nir.LI:
    return nir.LI(tau=np.full(n, 1e-3), r=np.ones(n), v_leak=np.zeros(n))


def _run(graph, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    (out,) = graph.outputs
    return run(graph, x).outputs[out]


def test_a_flat_name_with_a_dot_wins_over_a_path_into_a_nested_graph(tmp_path: Path) -> None:
    """nirtorch writes snnTorch's recurrent layer as flat 'lif1.lif'; a nested 'lif1' beside it is another node."""
    flat = _lin(3, 3)
    decoy = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3])), "lif": _lin(3, 3), "output": nir.Output(np.array([3]))},
        edges=[("input", "lif"), ("lif", "output")],
    )
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3])), "lif1.lif": flat, "lif1": decoy, "output": nir.Output(np.array([3]))},
        edges=[("input", "lif1.lif"), ("input", "lif1"), ("lif1.lif", "output"), ("lif1", "output")],
        type_check=False,
    )
    nir.write(tmp_path / "f.nir", graph)
    g = import_nir(tmp_path / "f.nir")
    # inlining the Subgraph 'lif1' yields 'lif1.lif': the flat node gets another SIR name, keeping its NIR name
    assert {n: k.kind for n, k in g.nodes.items()} == {
        "input": "Input",
        "lif1.lif_1": "Dense",
        "lif1": "Subgraph",
        "output": "Output",
    }
    np.testing.assert_array_equal(g.nodes["lif1.lif_1"].weight, flat.weight)  # type: ignore[attr-defined]
    assert g.nodes["lif1.lif_1"].origin == "nir:f.nir#lif1.lif"
    x = RNG.uniform(size=(3, 1, 3))
    expected = x @ flat.weight.T + x @ decoy.nodes["lif"].weight.T  # type: ignore[attr-defined]
    np.testing.assert_allclose(_run(g, x), expected, rtol=1e-6)


def test_a_dotted_path_reaches_into_a_nested_graph(tmp_path: Path) -> None:
    """Edges 'in' -> 'sub.lin' and 'sub.li' -> 'out' name nodes inside the nested graph 'sub'."""
    lin, li = _lin(4, 4), _li(4)
    sub = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([4])), "lin": lin, "li": li, "output": nir.Output(np.array([4]))},
        edges=[("input", "lin"), ("lin", "li"), ("li", "output")],
    )
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([4])), "sub": sub, "out": nir.Output(np.array([4]))},
        edges=[("in", "sub.lin"), ("sub.li", "out")],
        type_check=False,
    )
    nir.write(tmp_path / "p.nir", graph)
    g = import_nir(tmp_path / "p.nir")
    assert [(e.src, e.dst) for e in g.edges] == [("sub.lin", "sub.li"), ("in", "sub.lin"), ("sub.li", "out")]
    assert g.nodes["sub.li"].origin == "nir:p.nir#sub/li"
    # the same network with the nested graph entered through its Input: same numbers
    whole = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([4])), "sub": sub, "out": nir.Output(np.array([4]))},
        edges=[("in", "sub"), ("sub", "out")],
    )
    nir.write(tmp_path / "w.nir", whole)
    w = import_nir(tmp_path / "w.nir")
    assert w.nodes["sub"].kind == "Subgraph"
    x = RNG.uniform(0, 1, (5, 2, 4))
    np.testing.assert_allclose(_run(g, x), _run(w, x), rtol=0, atol=1e-12)


def test_nested_graph_with_two_inputs_is_spliced_and_fed_by_name(tmp_path: Path) -> None:
    a, b = _lin(2, 2), _lin(2, 2)
    sub = nir.NIRGraph(
        nodes={
            "in_a": nir.Input(np.array([2])),
            "in_b": nir.Input(np.array([2])),
            "a": a,
            "b": b,
            "output": nir.Output(np.array([2])),
        },
        edges=[("in_a", "a"), ("in_b", "b"), ("a", "output"), ("b", "output")],
        type_check=False,
    )
    graph = nir.NIRGraph(
        nodes={"x": nir.Input(np.array([2])), "y": nir.Input(np.array([2])), "s": sub, "o": nir.Output(np.array([2]))},
        edges=[("x", "s.in_a"), ("y", "s.in_b"), ("s", "o")],
        type_check=False,
    )
    nir.write(tmp_path / "two.nir", graph)
    g = import_nir(tmp_path / "two.nir")
    assert g.nodes["s.in_a"].kind == "Identity" and g.nodes["s.output"].kind == "Identity"
    x, y = RNG.uniform(size=(1, 1, 2)), RNG.uniform(size=(1, 1, 2))
    out = run(g, {"x": x, "y": y}).outputs["o"]
    np.testing.assert_allclose(out, x @ a.weight.T + y @ b.weight.T, rtol=1e-6)
    # naming the nested graph as a whole is ambiguous: which Input?
    graph.edges = [("x", "s"), ("s", "o")]
    graph.nodes.pop("y")
    nir.write(tmp_path / "amb.nir", graph)
    with pytest.raises(FrontendError, match=r"edge 'x' -> 's' goes into nested graph 's', which has 2 Input nodes"):
        import_nir(tmp_path / "amb.nir")


def test_names_sir_cannot_hold_are_renamed_and_keep_their_nir_name(tmp_path: Path) -> None:
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([3])),
            "conv/0": _lin(3, 3),
            "conv_0": _lin(3, 3),
            "fc 1": _lin(3, 3),
            "-neg": _li(3),
            "output": nir.Output(np.array([3])),
        },
        edges=[("input", "conv/0"), ("conv/0", "conv_0"), ("conv_0", "fc 1"), ("fc 1", "-neg"), ("-neg", "output")],
    )
    nir.write(tmp_path / "n.nir", graph)
    g = import_nir(tmp_path / "n.nir")
    origins = {name: node.origin.partition("#")[2] for name, node in g.nodes.items()}
    assert origins == {
        "input": "input",
        "conv_0_1": "conv/0",  # 'conv_0' is a NIR name already
        "conv_0": "conv_0",
        "fc_1": "fc 1",
        "n-neg": "-neg",
        "output": "output",
    }
    export_nir(g, tmp_path / "back.nir")  # spikec writes its own (valid, unique) names
    back = nir.read(tmp_path / "back.nir")
    assert sorted(back.nodes) == sorted(g.nodes)
    x = RNG.uniform(size=(4, 1, 3))
    np.testing.assert_array_equal(_run(import_nir(tmp_path / "back.nir"), x), _run(g, x))


def test_an_edge_naming_a_missing_node_is_refused_naming_the_edge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ghost.nir"
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0.8", dtype=h5py.string_dtype())
        root = f.create_group("node")
        root.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
        edges = np.array([("input", "fc"), ("fc", "lif1.w_rec"), ("fc", "output")], dtype=object)
        root.create_dataset("edges", data=edges, dtype=h5py.string_dtype())
        nodes = root.create_group("nodes")
        for name, fields in {
            "input": {"type": "Input", "shape": np.array([2])},
            "fc": {"type": "Linear", "weight": np.eye(2)},
            "output": {"type": "Output", "shape": np.array([2])},
        }.items():
            group = nodes.create_group(name)
            for key, value in fields.items():
                group.create_dataset(key, data=value, dtype=h5py.string_dtype() if isinstance(value, str) else None)
    code = main(["import", str(path), "-o", str(tmp_path / "ghost.sir"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not (tmp_path / "ghost.sir").exists()
    assert "edge 'fc' -> 'lif1.w_rec' in the top-level graph names no node 'lif1.w_rec'" in report["error"]
    assert "'fc', 'input', 'output'" in report["error"]
