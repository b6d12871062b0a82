"""The ONNX front end: the batch-axis rule, constant folding, errors, the CLI, and the ops that the
conformance cases do not exercise (each checked against onnxruntime)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from spikec.cli import main
from spikec.errors import FrontendError, SpikecWarning, VerifyError
from spikec.frontends.onnx import ONNX_HANDLERS, handler, import_onnx, supported_ops
from spikec.interp import evaluate
from spikec.ir import Graph

Dims = list[int | str | None]


def model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, Dims],
    outputs: dict[str, Dims],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in inputs.items()],
        [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in outputs.items()],
        [onnx.numpy_helper.from_array(v, n) for n, v in (inits or {}).items()],
    )
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)  # fills in the output shapes given as None


def ort_run(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(a) for a in session.run(None, {k: v.astype(np.float32) for k, v in feeds.items()})]


def spikec_run(g: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [evaluate(g, feeds).outputs[name] for name in g.outputs]


def i64(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# -- ops without conformance cases, against onnxruntime -------------------------------------------------
X = (1, 3, 1, 5)  # a batch of one: the batch axis is stripped
UNARY = ["Abs", "Ceil", "Cos", "Exp", "Floor", "Neg", "Round", "Sign", "Sin", "Softplus", "Softsign"]
ATTRS: dict[str, dict[str, Any]] = {
    "Celu": {"alpha": 0.7},
    "Elu": {"alpha": 0.6},
    "Selu": {"alpha": 1.5, "gamma": 1.1},
    "ThresholdedRelu": {"alpha": 0.3},
    "Mish": {},
}
REDUCE = ["ReduceL1", "ReduceL2", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare"]
Spec = tuple[list[onnx.NodeProto], dict[str, np.ndarray], int]
SPECS: dict[str, Spec] = {op: ([h.make_node(op, ["x"], ["y"])], {}, 17) for op in UNARY}
SPECS |= {op: ([h.make_node(op, ["x"], ["y"], **a)], {}, 18) for op, a in ATTRS.items()}
SPECS |= {op: ([h.make_node(op, ["x", "axes"], ["y"], keepdims=0)], {"axes": i64(1, -1)}, 18) for op in REDUCE}
SPECS |= {
    "Log": ([h.make_node("Abs", ["x"], ["a"]), h.make_node("Log", ["a"], ["y"])], {}, 17),
    "Reciprocal": ([h.make_node("Reciprocal", ["x"], ["y"])], {}, 17),
    "Cast": ([h.make_node("Cast", ["x"], ["y"], to=T.FLOAT)], {}, 17),
    "Expand": ([h.make_node("Expand", ["x", "shape"], ["y"])], {"shape": i64(3, 4, 1)}, 17),
    "GlobalMaxPool": ([h.make_node("GlobalMaxPool", ["x"], ["y"])], {}, 17),
    "LogSoftmax": ([h.make_node("LogSoftmax", ["x"], ["y"], axis=2)], {}, 11),
    "LogSoftmax-13": ([h.make_node("LogSoftmax", ["x"], ["y"], axis=1)], {}, 13),
    "Softmax-11": ([h.make_node("Softmax", ["x"], ["y"], axis=2)], {}, 11),
    "Tile": ([h.make_node("Tile", ["x", "reps"], ["y"])], {"reps": i64(1, 2, 1, 3)}, 17),
}
SPECS["Equal"] = (
    [
        h.make_node("Round", ["x"], ["r"]),
        h.make_node("Equal", ["r", "x"], ["b"]),
        h.make_node("Cast", ["b"], ["y"], to=T.FLOAT),
    ],
    {},
    17,
)
SPECS["IsNaN+IsInf+Not+Cast"] = (  # masks as exported models build them: bool ops, cast back to float
    [
        h.make_node("Log", ["x"], ["l"]),  # NaN below 0, -inf at 0
        h.make_node("IsNaN", ["l"], ["nan"]),
        h.make_node("Div", ["x", "zero"], ["q"]),  # ±inf
        h.make_node("IsInf", ["q"], ["inf"]),
        h.make_node("Not", ["nan"], ["notnan"]),
        h.make_node("Cast", ["x"], ["i"], to=T.INT64),  # truncates toward zero
        h.make_node("Cast", ["i"], ["bits"], to=T.BOOL),
        h.make_node("Cast", ["notnan"], ["a"], to=T.FLOAT),
        h.make_node("Cast", ["inf"], ["b"], to=T.FLOAT),
        h.make_node("Cast", ["i"], ["c"], to=T.FLOAT),
        h.make_node("Cast", ["bits"], ["d"], to=T.FLOAT),
        h.make_node("Sum", ["a", "b", "c", "d"], ["y"]),
    ],
    {"zero": np.zeros(1, np.float32)},
    17,
)
SPECS["Pad"] = (
    [h.make_node("Pad", ["x", "pads", "v"], ["y"])],
    {"pads": i64(0, 0, 1, 2, 0, 1, 0, 3), "v": np.asarray(0.5, np.float32)},
    17,
)
SPECS["Shape+Size"] = (
    [
        h.make_node("Shape", ["x"], ["s"], start=1, end=2),
        h.make_node("Size", ["x"], ["n"]),
        h.make_node("Div", ["n", "fifteen"], ["lead"]),  # the batch size, 1
        h.make_node("Concat", ["lead", "s", "tail"], ["shape"], axis=0),
        h.make_node("Reshape", ["x", "shape"], ["y"]),
    ],
    {"fifteen": i64(15), "tail": i64(5)},
    17,
)
SPECS["InstanceNormalization"] = (
    [h.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)],
    {"s": np.arange(3, dtype=np.float32), "b": np.ones(3, np.float32)},
    17,
)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_op_matches_onnxruntime(name: str) -> None:
    nodes, inits, opset = SPECS[name]
    m = model(nodes, {"x": list(X)}, {"y": None}, inits, opset)
    x = np.random.default_rng(0).normal(0, 2, size=X).astype(np.float32)
    (want,) = ort_run(m, {"x": x})
    (got,) = spikec_run(import_onnx(m), {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_constant_ops_fold_and_must_be_constant() -> None:
    value = h.make_tensor("v", T.INT64, [1], [5])
    nodes = [
        h.make_node("Constant", [], ["n"], value=value),
        h.make_node("Range", ["zero", "n", "one"], ["r"]),  # 0..4
        h.make_node("Cast", ["r"], ["rf"], to=T.FLOAT),
        h.make_node("ConstantOfShape", ["n"], ["ones"], value=h.make_tensor("c", T.FLOAT, [1], [2.0])),
        h.make_node("EyeLike", ["square"], ["eye"]),
        h.make_node("ReduceSum", ["eye", "axis"], ["diag"], keepdims=0),  # ones (5,)
        h.make_node("Mul", ["rf", "ones"], ["k"]),
        h.make_node("Add", ["k", "diag"], ["k1"]),
        h.make_node("Mul", ["x", "k1"], ["y"]),
    ]
    inits = {"zero": i64(0).reshape(()), "one": i64(1).reshape(()), "square": np.zeros((5, 5), np.float32)}
    m = model(nodes, {"x": [1, 5]}, {"y": [1, 5]}, inits | {"axis": i64(1)})
    g = import_onnx(m)
    assert [n.kind for n in g.nodes.values()] == ["Input", "Scale", "Output"]
    (scale,) = [n for n in g.nodes.values() if n.kind == "Scale"]
    np.testing.assert_array_equal(scale.scale, [1, 3, 5, 7, 9])  # type: ignore[attr-defined]
    zero, one = np.zeros((), np.float32), np.ones((), np.float32)
    live = model([h.make_node("Range", ["zero", "x", "one"], ["y"], name="rng")], {"x": []}, {"y": [None]})
    live.graph.initializer.extend(
        [onnx.numpy_helper.from_array(zero, "zero"), onnx.numpy_helper.from_array(one, "one")]
    )
    with pytest.raises(FrontendError, match=r"'rng' \(Range\): Range must evaluate to a constant"):
        import_onnx(live)


def test_every_op_has_one_handler_and_duplicates_are_refused() -> None:
    assert supported_ops() == sorted(ONNX_HANDLERS) and len(supported_ops()) >= 80
    with pytest.raises(TypeError, match="registered twice"):
        handler("Relu")(lambda n, ctx: [])


# -- the batch axis ----------------------------------------------------------------------------------------
def _relu_model(shape: Dims) -> onnx.ModelProto:
    return model([h.make_node("Relu", ["x"], ["y"])], {"x": shape}, {"y": shape})


@pytest.mark.parametrize(
    ("shape", "batch_axis", "per_sample"),
    [
        ([1, 3, 4], None, (3, 4)),  # leading 1: the batch axis
        (["N", 3, 4], None, (3, 4)),  # symbolic: the batch axis
        ([3, 4], None, (4,)),  # a static leading 3: a batch of 3 as long as no op mixes the samples
        ([1, 3, 4], False, (1, 3, 4)),
        ([1, 3, 4], "none", (1, 3, 4)),
        ([3, 4], True, (4,)),
        ([5, 3, 4], 1, (5, 4)),
        ([5, "N", 4], None, (5, 4)),  # the symbolic axis is the batch axis, wherever it is
    ],
)
def test_batch_axis_rule(shape: Dims, batch_axis: bool | str | int | None, per_sample: tuple[int, ...]) -> None:
    g = import_onnx(_relu_model(shape), batch_axis=batch_axis)
    assert g.types[g.inputs[0]] == per_sample


def _shape_chain(tail: list[int], merge: bool = False) -> onnx.ModelProto:
    """y = relu(reshape(x, concat(shape(x)[0:1], tail))): the dynamo exporter's pattern."""
    nodes = [
        h.make_node("Shape", ["x"], ["s"]),
        h.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        h.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        h.make_node("Mul" if merge else "Concat", ["b1", "tail"], ["shape"], **({} if merge else {"axis": 0})),
        h.make_node("Reshape", ["x", "shape"], ["r"], name="flatten"),
        h.make_node("Relu", ["r"], ["y"]),
    ]
    inits = {"zero": i64(0).reshape(()), "ax0": i64(0), "tail": np.asarray(tail, np.int64)}
    return model(nodes, {"x": ["N", 2, 3, 4]}, {"y": ["N", None]}, inits)


def test_shape_chains_fold_with_a_symbolic_batch() -> None:
    g = import_onnx(_shape_chain([-1]))
    assert [n.kind for n in g.nodes.values()] == ["Input", "Reshape", "ReLU", "Output"]
    x = np.random.default_rng(1).normal(size=(5, 2, 3, 4))
    (y,) = spikec_run(g, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x.reshape(5, 24), 0))
    assert g.types["flatten"] == (24,)
    assert import_onnx(_shape_chain([6, 4])).types["flatten"] == (6, 4)


def test_a_reshape_that_interleaves_samples_is_refused() -> None:
    target = {"t": np.asarray([3, -1], np.int64)}
    m = model([h.make_node("Reshape", ["x", "t"], ["y"], name="mix")], {"x": ["N", 3, 4]}, {"y": None}, target)
    with pytest.raises(FrontendError, match=r"'mix' \(Reshape\).*does not keep the samples apart.*mixes samples"):
        import_onnx(m)  # (N, 3, 4) -> (3, 4N): each row holds entries of every sample


def test_the_batch_merged_with_other_axes_is_tracked() -> None:
    g = import_onnx(_shape_chain([24], merge=True))  # target [24·N]: samples one after another in one row
    x = np.random.default_rng(2).normal(size=(3, 2, 3, 4))
    (y,) = spikec_run(g, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x.reshape(3, 24), 0))


@pytest.mark.parametrize(
    ("node", "match"),
    [
        (h.make_node("Softmax", ["x"], ["y"], axis=0, name="sm"), r"'sm' \(Softmax\).*batch axis.*mixes samples"),
        (h.make_node("ReduceMean", ["x"], ["y"], axes=[0], name="rm"), r"'rm' \(ReduceMean\).*batch axis.*--batch"),
        (h.make_node("Concat", ["x", "x"], ["y"], axis=0, name="cat"), r"'cat' \(Concat\).*batch axis"),
    ],
)
def test_ops_on_the_batch_axis_are_refused(node: onnx.NodeProto, match: str) -> None:
    with pytest.raises(FrontendError, match=match):
        import_onnx(model([node], {"x": ["N", 3, 4]}, {"y": None}))


def test_the_batch_axis_moves_with_a_transpose() -> None:
    nodes = [
        h.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),  # (L, N, E), as nn.MultiheadAttention works
        h.make_node("Softmax", ["t"], ["s"], axis=0),  # over L: now axis 0, still one sample's
        h.make_node("Transpose", ["s"], ["y"], perm=[1, 0, 2]),
    ]
    g = import_onnx(model(nodes, {"x": ["N", 3, 4]}, {"y": None}))
    x = np.random.default_rng(3).normal(size=(2, 3, 4))
    (y,) = spikec_run(g, {"x": x})
    want = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, want, rtol=1e-12)


def test_a_static_batch_that_mixes_samples_is_one_sample() -> None:
    g = import_onnx(model([h.make_node("Softmax", ["x"], ["y"], axis=0)], {"x": [2, 3]}, {"y": [2, 3]}))
    assert g.types[g.inputs[0]] == (2, 3)  # a batch of 2 would mix: the whole tensor is one sample


def test_unresolvable_dynamic_dimension_names_input_and_fix() -> None:
    m = _relu_model(["N", "seq", 8])
    with pytest.raises(
        FrontendError, match=r"input 'x' has a dynamic dimension 1 \('seq'\).*static shape.*input_shapes"
    ):
        import_onnx(m)
    g = import_onnx(m, input_shapes={"x": [-1, 5, 8]})
    assert g.types[g.inputs[0]] == (5, 8)


# -- errors --------------------------------------------------------------------------------------------------
def test_checker_failure_names_file_and_message(tmp_path: Path) -> None:
    m = _relu_model([1, 4])
    m.graph.node[0].input[0] = "missing"
    path = tmp_path / "broken.onnx"
    onnx.save(m, path)
    with pytest.raises(FrontendError, match=r"broken\.onnx: the ONNX checker rejects the model: .*missing"):
        import_onnx(path)
    (tmp_path / "junk.onnx").write_bytes(b"\x00not protobuf\xff" * 3)
    with pytest.raises(FrontendError, match=r"junk\.onnx"):
        import_onnx(tmp_path / "junk.onnx")


def test_unsupported_op_names_op_node_and_supported_ops() -> None:
    m = model([h.make_node("Hardmax", ["x"], ["y"], name="pick")], {"x": [1, 4]}, {"y": [1, 4]})
    with pytest.raises(FrontendError) as err:
        import_onnx(m)
    text = str(err.value)
    assert "'Hardmax'" in text and "'pick'" in text and "supported ops: Abs, Add," in text and "Relu" in text


def test_nan_weights_are_a_verify_error_naming_the_onnx_node() -> None:
    w = np.ones((2, 1, 3, 3), np.float32)
    w[1, 0, 1, 1] = np.nan
    m = model([h.make_node("Conv", ["x", "w"], ["y"], name="conv_bad")], {"x": [1, 1, 5, 5]}, {"y": None}, {"w": w})
    with pytest.raises(VerifyError, match=r"\(Conv\) from onnx:conv_bad: field 'weight' holds 1 NaN"):
        import_onnx(m)


def test_unused_input_is_dropped_with_a_warning() -> None:
    m = model([h.make_node("Relu", ["x"], ["y"])], {"x": [1, 3], "unused": [1, 3]}, {"y": [1, 3]})
    with pytest.warns(SpikecWarning, match="'unused' does not reach any output"):
        g = import_onnx(m)
    assert g.inputs == ("x",)


# -- lowerings ------------------------------------------------------------------------------------------------
def test_conv_asymmetric_pads_and_gemm_match_onnxruntime() -> None:
    rng = np.random.default_rng(2)
    inits = {
        "w": rng.normal(size=(4, 2, 3, 3)).astype(np.float32),
        "b": rng.normal(size=4).astype(np.float32),
        "fc": rng.normal(size=(5, 4 * 4 * 3)).astype(np.float32),
        "c": rng.normal(size=(1, 5)).astype(np.float32),
    }
    nodes = [
        h.make_node("Conv", ["x", "w", "b"], ["c1"], pads=[0, 1, 2, 0], strides=[2, 2], name="conv"),
        h.make_node("Relu", ["c1"], ["r"]),
        h.make_node("Flatten", ["r"], ["f"]),
        h.make_node("Gemm", ["f", "fc", "c"], ["y"], transB=1, alpha=0.5, beta=2.0, name="fc"),
    ]
    m = model(nodes, {"x": ["N", 2, 7, 6]}, {"y": ["N", 5]}, inits)
    g = import_onnx(m)
    kinds = [n.kind for n in g.nodes.values()]
    assert kinds == ["Input", "Pad", "Conv", "ReLU", "Flatten", "Dense", "Output"]
    assert g.nodes["fc"].bias is not None and all(n.origin.startswith("onnx:") for n in g.nodes.values())
    x = rng.normal(size=(3, 2, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(spikec_run(g, {"x": x})[0], ort_run(m, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_constants_bind_graph_inputs() -> None:
    m = model([h.make_node("Mul", ["x", "k"], ["y"])], {"x": [1, 3], "k": [3]}, {"y": [1, 3]})
    g = import_onnx(m, constants={"k": np.array([1.0, 2.0, 3.0])})
    assert [n.kind for n in g.nodes.values()] == ["Input", "Scale", "Output"]
    with pytest.raises(FrontendError, match="not graph inputs"):
        import_onnx(m, constants={"nope": 1.0})


@pytest.mark.slow
def test_torch_dynamo_export_with_a_dynamic_batch() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.fc, self.ln = nn.Linear(64, 6), nn.LayerNorm(6)

        def forward(self, x: Any) -> Any:
            y = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            y = self.ln(self.fc(y.reshape(y.shape[0], -1)))
            return torch.softmax(nn.functional.gelu(y), dim=-1)

    net = Net().eval()
    x = torch.randn(3, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = torch.export.Dim("batch")
        program = torch.onnx.export(net, (x,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
    g = import_onnx(program.model_proto)
    assert g.types[g.inputs[0]] == (1, 8, 8)
    with torch.no_grad():
        want = net(x).numpy()
    np.testing.assert_allclose(spikec_run(g, {g.inputs[0]: x.numpy()})[0], want, rtol=1e-5, atol=1e-6)


# -- the CLI -----------------------------------------------------------------------------------------------------
def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_imports_and_runs_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "net.onnx"
    w = np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32)
    onnx.save(model([h.make_node("MatMul", ["x", "w"], ["y"])], {"x": ["N", 4]}, {"y": ["N", 3]}, {"w": w}), path)
    code, report = _cli(capsys, "import", str(path), "-o", str(tmp_path / "net.sir"))
    assert code == 0 and report["kinds"] == {"Input": 1, "Dense": 1, "Output": 1}
    x = np.random.default_rng(4).normal(size=(5, 4))
    np.save(tmp_path / "x.npy", x)
    code, report = _cli(capsys, "run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npz"))
    assert code == 0 and report["mode"] == "ann" and report["outputs"]["y"]["shape"] == [5, 3]
    np.testing.assert_allclose(np.load(tmp_path / "y.npz")["y"], x @ w, rtol=1e-6)


def test_cli_reports_bad_models_as_json_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = _relu_model([1, 4])
    broken.graph.node[0].input[0] = "missing"
    nan = model(
        [h.make_node("Mul", ["x", "w"], ["y"], name="scale")],
        {"x": [1, 2]},
        {"y": None},
        {"w": np.array([1.0, np.nan], np.float32)},
    )
    unsupported = model([h.make_node("Hardmax", ["x"], ["y"])], {"x": [1, 4]}, {"y": None})
    cases = {
        "checker.onnx": (broken, "FrontendError", "ONNX checker rejects"),
        "unsupported.onnx": (unsupported, "FrontendError", "supported ops"),
        "dynamic.onnx": (_relu_model(["N", "seq"]), "FrontendError", "input_shapes"),
        "nan.onnx": (nan, "VerifyError", "onnx:scale"),
    }
    for name, (m, error_type, text) in cases.items():
        onnx.save(m, tmp_path / name)
        code, report = _cli(capsys, "import", str(tmp_path / name), "-o", str(tmp_path / "out.sir"))
        assert code == 1 and not report["ok"], name
        assert report["error_type"] == error_type and text in report["error"], report
