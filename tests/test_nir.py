"""NIR in and out: every nir 1.0.8 node kind, the Sinabs N-MNIST CNN, off-spec and broken files."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np
import pytest

from spikec.errors import FileError, FrontendError, SpikecError, VerifyError
from spikec.frontends.nir_export import export_nir
from spikec.frontends.nir_import import import_nir
from spikec.interp import run
from spikec.ir import Graph

RNG = np.random.default_rng(0)


def _r(*shape: int) -> np.ndarray:
    return RNG.uniform(0.5, 1.5, shape).astype(np.float32)


def every_kind_graph() -> nir.NIRGraph:
    """A NIR graph holding every node kind of nir 1.0.8, built with the nir package itself."""
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([4])),
            "lin": nir.Linear(weight=_r(4, 4)),
            "li": nir.LI(tau=_r(4) * 1e-2, r=_r(4), v_leak=np.zeros(4, np.float32)),
            "output": nir.Output(output_type=np.array([4])),
        },
        edges=[("input", "lin"), ("lin", "li"), ("li", "output")],
    )
    nodes: dict[str, Any] = {
        "input": nir.Input(input_type=np.array([2, 8, 8])),
        "conv": nir.Conv2d(
            input_shape=(8, 8), weight=_r(3, 2, 3, 3), stride=1, padding=1, dilation=1, groups=1, bias=_r(3)
        ),
        "if": nir.IF(r=_r(3, 8, 8), v_threshold=_r(3, 8, 8), v_reset=np.zeros((3, 8, 8), np.float32)),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 2, 2])}, start_dim=0, end_dim=-1),
        "aff": nir.Affine(weight=_r(12, 12), bias=_r(12)),
        "scale": nir.Scale(scale=_r(12)),
        "lif": nir.LIF(
            tau=_r(12) * 1e-2,
            r=_r(12),
            v_leak=np.zeros(12, np.float32),
            v_threshold=_r(12),
            v_reset=np.zeros(12, np.float32),
        ),
        "cuba": nir.CubaLIF(
            tau_syn=_r(12) * 1e-2,
            tau_mem=_r(12) * 1e-2,
            r=_r(12),
            v_leak=np.zeros(12, np.float32),
            v_threshold=_r(12),
            v_reset=np.zeros(12, np.float32),
            w_in=_r(12),
        ),
        "delay": nir.Delay(delay=np.full(12, 2e-4, np.float32)),
        "thr": nir.Threshold(threshold=_r(12)),
        "integ": nir.I(r=_r(12)),
        "proj": nir.Linear(weight=_r(4, 12)),
        "cubali": nir.CubaLI(
            tau_syn=_r(4) * 1e-2, tau_mem=_r(4) * 1e-2, r=_r(4), v_leak=np.zeros(4, np.float32), w_in=_r(4)
        ),
        "conv1": nir.Conv1d(input_shape=4, weight=_r(1, 1, 3), stride=1, padding=1, dilation=1, groups=1, bias=_r(1)),
        "sub": sub,
        "output": nir.Output(output_type=np.array([4])),
    }
    chain = [
        "input",
        "conv",
        "if",
        "sum",
        "avg",
        "flat",
        "aff",
        "scale",
        "lif",
        "cuba",
        "delay",
        "thr",
        "integ",
        "proj",
        "cubali",
        "sub",
        "output",
    ]
    edges = list(itertools.pairwise(chain))
    edges.append(("lif", "aff"))  # a recurrent loop
    nodes.pop("conv1")
    return nir.NIRGraph(nodes=nodes, edges=edges)


def assert_same_nir(a: nir.NIRGraph, b: nir.NIRGraph) -> None:
    assert sorted(a.nodes) == sorted(b.nodes)
    assert sorted(map(tuple, a.edges)) == sorted(map(tuple, b.edges))
    for name, na in a.nodes.items():
        nb = b.nodes[name]
        assert type(na) is type(nb), name
        if isinstance(na, nir.NIRGraph):
            assert_same_nir(na, nb)
            continue
        for field in na.__dataclass_fields__:
            if field in ("metadata", "input_type", "output_type"):
                continue
            va, vb = getattr(na, field), getattr(nb, field)
            assert np.array_equal(np.asarray(va), np.asarray(vb)), (name, field, va, vb)


def test_every_nir_kind_round_trips(tmp_path: Path) -> None:
    source = every_kind_graph()
    nir.write(tmp_path / "all.nir", source)
    graph = import_nir(tmp_path / "all.nir", dt=1e-4)
    kinds = {n.kind for n in graph.nodes.values()}
    assert {
        "Conv",
        "IF",
        "SumPool",
        "AvgPool",
        "Flatten",
        "Dense",
        "Scale",
        "LIF",
        "CubaLIF",
        "Delay",
        "Threshold",
        "I",
        "CubaLI",
        "Subgraph",
    } <= kinds
    assert [e.recurrent for e in graph.edges].count(True) == 1
    export_nir(graph, tmp_path / "back.nir")
    assert_same_nir(nir.read(tmp_path / "all.nir"), nir.read(tmp_path / "back.nir"))
    again = import_nir(tmp_path / "back.nir")
    assert again.dt == graph.dt
    out = run(graph, RNG.uniform(0, 1, (6, 2, 2, 8, 8)))
    out2 = run(again, RNG.uniform(0, 1, (6, 2, 2, 8, 8)))
    assert out.outputs["output"].shape == out2.outputs["output"].shape == (6, 2, 4)


def test_identity_and_add_round_trip(tmp_path: Path) -> None:
    """nir 1.0.8 cannot serialise Identity itself; spikec writes nir's intended layout and reads it."""
    from spikec.ir import Add, Identity, Input, Output

    g = Graph(
        {"i": Input(shape=(3,)), "id": Identity(), "add": Add(), "o": Output()},
        [("i", "id"), ("i", "add"), ("id", "add"), ("add", "o")],
    )
    export_nir(g, tmp_path / "id.nir")
    back = import_nir(tmp_path / "id.nir")
    assert {k: n.kind for k, n in back.nodes.items()} == {
        "i": "Input",
        "id": "Identity",
        "add": "Identity",
        "o": "Output",
    }
    assert back.edges == g.edges
    x = np.arange(6.0).reshape(2, 1, 3)
    np.testing.assert_array_equal(run(back, x).outputs["o"], run(g, x).outputs["o"])


def test_conv1d_round_trips(tmp_path: Path) -> None:
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1, 4])),
            "c": nir.Conv1d(input_shape=4, weight=_r(2, 1, 3), stride=1, padding=1, dilation=1, groups=1, bias=_r(2)),
            "output": nir.Output(output_type=np.array([2, 4])),
        },
        edges=[("input", "c"), ("c", "output")],
    )
    nir.write(tmp_path / "c.nir", g)
    export_nir(import_nir(tmp_path / "c.nir"), tmp_path / "back.nir")
    assert_same_nir(nir.read(tmp_path / "c.nir"), nir.read(tmp_path / "back.nir"))


def test_sinabs_cnn_imports_runs_and_round_trips(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "nir" / "cnn" / "cnn_sinabs.nir"
    graph = import_nir(path)
    graph.verify()
    assert graph.types["input"] == (2, 34, 34) and graph.types["output"] == (10,)
    x = (np.random.default_rng(1).uniform(size=(20, 2, 2, 34, 34)) < 0.2).astype(np.float32)
    result = run(graph, x, trace=True)
    assert result.outputs["output"].shape == (20, 2, 10)
    assert result.traces["1"].sum() > 0, "the first IF layer should spike on dense random input"
    assert set(np.unique(result.outputs["output"])) <= {0.0, 1.0}
    export_nir(graph, tmp_path / "cnn.nir")
    assert_same_nir(nir.read(path), nir.read(tmp_path / "cnn.nir"))
    back = import_nir(tmp_path / "cnn.nir")
    np.testing.assert_array_equal(run(back, x).outputs["output"], result.outputs["output"])


def _write_raw(path: Path, version: str, nodes: dict[str, dict[str, Any]], edges: list[tuple[str, str]]) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data=version, dtype=h5py.string_dtype())
        g = f.create_group("node")
        g.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
        g.create_dataset("edges", data=np.array(edges, dtype=object), dtype=h5py.string_dtype())
        ng = g.create_group("nodes")
        for name, fields in nodes.items():
            n = ng.create_group(name)
            for k, v in fields.items():
                if isinstance(v, str):
                    n.create_dataset(k, data=v, dtype=h5py.string_dtype())
                else:
                    n.create_dataset(k, data=v)


def test_transposed_affine_weight_is_repaired_with_warning(tmp_path: Path) -> None:
    w = _r(3, 5)  # (out, in) is (3, 5); stored as (in, out) by a buggy exporter
    _write_raw(
        tmp_path / "t.nir",
        "0.2.0",
        {
            "input": {"type": "Input", "shape": np.array([5])},
            "fc": {"type": "Affine", "weight": w.T, "bias": _r(3)},
            "output": {"type": "Output", "shape": np.array([3])},
        },
        [("input", "fc"), ("fc", "output")],
    )
    with pytest.warns(UserWarning, match=r"node 'fc' \(Dense\).*transpose"):
        graph = import_nir(tmp_path / "t.nir")
    np.testing.assert_array_equal(graph.nodes["fc"].weight, w)  # type: ignore[attr-defined]


def test_old_version_without_v_reset_defaults_to_zero(tmp_path: Path) -> None:
    _write_raw(
        tmp_path / "o.nir",
        "0.1.1",
        {
            "input": {"type": "Input", "shape": np.array([2])},
            "n": {"type": "IF", "r": np.ones(2), "v_threshold": np.ones(2)},
            "output": {"type": "Output", "shape": np.array([2])},
        },
        [("input", "n"), ("n", "output")],
    )
    graph = import_nir(tmp_path / "o.nir")
    assert np.all(graph.nodes["n"].v_reset == 0)  # type: ignore[attr-defined]


def test_unknown_nir_type_lists_supported(tmp_path: Path) -> None:
    _write_raw(
        tmp_path / "u.nir",
        "1.0.8",
        {
            "input": {"type": "Input", "shape": np.array([2])},
            "rf": {"type": "ResonateFire", "omega": np.ones(2)},
            "output": {"type": "Output", "shape": np.array([2])},
        },
        [("input", "rf"), ("rf", "output")],
    )
    with pytest.raises(FrontendError, match=r"'rf' has type 'ResonateFire'.*supported: .*CubaLIF"):
        import_nir(tmp_path / "u.nir")


def test_missing_field_names_node_and_field(tmp_path: Path) -> None:
    _write_raw(
        tmp_path / "m.nir",
        "1.0.8",
        {
            "input": {"type": "Input", "shape": np.array([2])},
            "lif": {"type": "LIF", "tau": np.ones(2)},
            "output": {"type": "Output", "shape": np.array([2])},
        },
        [("input", "lif"), ("lif", "output")],
    )
    with pytest.raises(FrontendError, match=r"m\.nir: NIR node 'lif' \(LIF\): required field 'r' is missing"):
        import_nir(tmp_path / "m.nir")


def test_nan_weights_are_rejected_naming_node(tmp_path: Path) -> None:
    w = _r(2, 2)
    w[0, 1] = np.nan
    _write_raw(
        tmp_path / "n.nir",
        "1.0.8",
        {
            "input": {"type": "Input", "shape": np.array([2])},
            "fc": {"type": "Linear", "weight": w},
            "output": {"type": "Output", "shape": np.array([2])},
        },
        [("input", "fc"), ("fc", "output")],
    )
    with pytest.raises(VerifyError, match=r"node 'fc' \(Dense\).*'weight' holds 1 NaN"):
        import_nir(tmp_path / "n.nir")


def test_shape_mismatch_names_both_ends(tmp_path: Path) -> None:
    _write_raw(
        tmp_path / "s.nir",
        "1.0.8",
        {
            "input": {"type": "Input", "shape": np.array([4])},
            "fc": {"type": "Linear", "weight": _r(3, 5)},
            "output": {"type": "Output", "shape": np.array([3])},
        },
        [("input", "fc"), ("fc", "output")],
    )
    with pytest.raises(VerifyError, match=r"node 'fc' \(Dense\).*input \[\(4,\)\].*last axis is 5"):
        import_nir(tmp_path / "s.nir")


@pytest.mark.parametrize("content", [b"", b"this is not hdf5 at all", b"\x89HDF\r\n\x1a\n" + b"\0" * 20])
def test_broken_files_fail_cleanly(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.nir"
    path.write_bytes(content)
    with pytest.raises(FileError, match=r"broken\.nir"):
        import_nir(path)


def test_truncated_real_file(data_dir: Path, tmp_path: Path) -> None:
    data = (data_dir / "nir" / "cnn" / "cnn_sinabs.nir").read_bytes()
    path = tmp_path / "trunc.nir"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileError, match=r"trunc\.nir.*truncated"):
        import_nir(path)


def test_export_refuses_what_nir_cannot_express(tmp_path: Path) -> None:
    from spikec.ir import IF, Input, MaxPool, Output

    g = Graph({"i": Input(shape=(1, 4, 4)), "m": MaxPool(kernel_size=(2, 2)), "o": Output()}, [("i", "m"), ("m", "o")])
    with pytest.raises(SpikecError, match=r"node 'm' \(MaxPool\) has no NIR equivalent"):
        export_nir(g, tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()
    g = Graph({"i": Input(shape=(2,)), "n": IF(reset="subtract"), "o": Output()}, [("i", "n"), ("n", "o")])
    with pytest.raises(SpikecError, match=r"node 'n' \(IF\).*subtract"):
        export_nir(g, tmp_path / "n.nir")
    assert list(tmp_path.iterdir()) == []
