"""Transformer inputs at the ONNX front end: a sequence length left dynamic at export (a clear error,
then fixed with ``input_shapes=`` / ``--input-shape``), KV-cache attention (named as unsupported when
the cache length is dynamic), and causal masks without a cache (static masks, supported).

Every "it works" case is compared with onnxruntime on the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from spikec.cli import main
from spikec.errors import FrontendError
from spikec.frontends.onnx import import_onnx
from spikec.interp import evaluate

D, HEADS = 16, 2
RNG = np.random.default_rng(0)


def _weights(*names: str) -> list[onnx.TensorProto]:
    return [numpy_helper.from_array(RNG.standard_normal((D, D)).astype(np.float32) * 0.3, n) for n in names]


def _model(nodes: list[onnx.NodeProto], seq: int | str, inits: list[onnx.TensorProto],
           opset: int = 23) -> onnx.ModelProto:  # fmt: skip
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", seq, D])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", seq, D])
    graph = helper.make_graph(nodes, "attention", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def attention_op_model(seq: int | str, *, causal: int = 0) -> onnx.ModelProto:
    """x (batch, seq, D) → q/k/v projections → ONNX Attention (opset 23, 3-d, 2 heads)."""
    nodes = [helper.make_node("MatMul", ["x", w], [o]) for w, o in (("wq", "q"), ("wk", "k"), ("wv", "v"))]
    nodes.append(helper.make_node("Attention", ["q", "k", "v"], ["y"], name="attn", q_num_heads=HEADS,
                                  kv_num_heads=HEADS, is_causal=causal))  # fmt: skip
    return _model(nodes, seq, _weights("wq", "wk", "wv"))


def matmul_attention_model(seq: int | str, *, causal_mask: bool = False) -> onnx.ModelProto:
    """The exporter's form: heads split by a Reshape whose shape is computed from Shape(x), explicit
    MatMul/Softmax, and optionally an additive causal mask (0 on and below the diagonal, -inf above)."""
    hd = D // HEADS
    inits = _weights("wq", "wk", "wv")
    inits += [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
        numpy_helper.from_array(np.array([HEADS, hd], np.int64), "head_dims"),
        numpy_helper.from_array(np.array([D], np.int64), "width"),
        numpy_helper.from_array(np.array(1 / np.sqrt(hd), np.float32), "scale"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Slice", ["x_shape", "zero", "two"], ["bs"]),  # (batch, seq) from the input's shape
        helper.make_node("Concat", ["bs", "head_dims"], ["split_shape"], axis=0),
        helper.make_node("Concat", ["bs", "width"], ["merge_shape"], axis=0),
    ]
    for w, t in (("wq", "q"), ("wk", "k"), ("wv", "v")):
        nodes += [
            helper.make_node("MatMul", ["x", w], [f"{t}_proj"]),
            helper.make_node("Reshape", [f"{t}_proj", "split_shape"], [f"{t}_split"]),
            helper.make_node("Transpose", [f"{t}_split"], [t], perm=[0, 2, 3, 1] if t == "k" else [0, 2, 1, 3]),
        ]
    nodes += [helper.make_node("MatMul", ["q", "k"], ["qk"]), helper.make_node("Mul", ["qk", "scale"], ["scores"])]
    if causal_mask:
        assert isinstance(seq, int)
        mask = np.triu(np.full((seq, seq), -np.inf, np.float32), k=1)
        inits.append(numpy_helper.from_array(mask, "causal_mask"))
        nodes.append(helper.make_node("Add", ["scores", "causal_mask"], ["masked"]))
    nodes += [
        helper.make_node("Softmax", ["masked" if causal_mask else "scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["heads"]),
        helper.make_node("Transpose", ["heads"], ["merged"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["merged", "merge_shape"], ["y"]),
    ]
    return _model(nodes, seq, inits, opset=18)


def kv_cache_model(past: int | str, *, causal: int) -> onnx.ModelProto:
    """A decoder step: Attention (4-d) with past_key/past_value graph inputs of length ``past``."""
    hd = D // HEADS
    total = past + 1 if isinstance(past, int) else "total_len"
    nodes = [helper.make_node("Attention", ["q", "k", "v", "", "past_key", "past_value"], ["y", "present_key",
                              "present_value"], name="attn", is_causal=causal)]  # fmt: skip
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, HEADS, 1, hd]) for n in "qkv"]
    inputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, HEADS, past, hd]) for n in ("past_key", "past_value")
    ]
    graph = helper.make_graph(
        nodes, "decoder_step", inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, HEADS, 1, hd])]
        + [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, HEADS, total, hd]) for n in ("present_key",
                                                                                               "present_value")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)  # type: ignore[no-any-return]


def _assert_matches(graph_out: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(graph_out, want, rtol=1e-5, atol=1e-5)


# -- a dynamic sequence length ------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [attention_op_model, matmul_attention_model])
def test_dynamic_sequence_length_names_the_input_the_axis_and_the_fix(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FrontendError) as err:
        import_onnx(build("seq"))
    message = str(err.value)
    assert "input 'x' has a dynamic dimension 1 ('seq')" in message
    assert "input_shapes={'x': (...)}" in message and "--input-shape" in message


def test_the_attention_op_error_says_it_is_the_sequence_length() -> None:
    with pytest.raises(
        FrontendError,
        match=r"feeds the query, key and value of ONNX node 'attn' \(Attention\), whose sequence length must be fixed",
    ):
        import_onnx(attention_op_model("seq"))


@pytest.mark.parametrize("build", [attention_op_model, matmul_attention_model])
def test_fixing_the_sequence_length_at_import_works(build) -> None:  # type: ignore[no-untyped-def]
    model = build("seq")
    graph = import_onnx(model, input_shapes={"x": (-1, 5, D)})
    assert graph.types[graph.inputs[0]] == (5, D)
    x = RNG.standard_normal((3, 5, D)).astype(np.float32)
    (want,) = _onnxruntime(model, {"x": x})
    _assert_matches(evaluate(graph, x).outputs[graph.outputs[0]], want)


def test_the_cli_fixes_it_with_input_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = matmul_attention_model("seq")
    onnx.save(model, tmp_path / "attn.onnx")
    x = RNG.standard_normal((2, 7, D)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "attn.onnx"), "--input", str(tmp_path / "x.npy"), "--json"]) == 1
    assert "--input-shape" in json.loads(capsys.readouterr().out)["error"]
    code = main(["run", str(tmp_path / "attn.onnx"), "--input-shape", f"7,{D}", "--input", str(tmp_path / "x.npy"),
                 "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    (out,) = report["outputs"].values()
    assert out["shape"] == [2, 7, D]


def test_input_shape_needs_a_one_input_model() -> None:
    with pytest.raises(FrontendError, match=r"--input-shape gives one input's shape.*input_shapes="):
        import_onnx(kv_cache_model(4, causal=0), sample_shape=(2, 1, 8))


# -- KV caches ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("causal", "variant"),
    [(1, "Causal attention with a past key/value cache"), (0, "Attention with a past key/value cache")],
)
def test_a_growing_kv_cache_is_named_as_unsupported(causal: int, variant: str) -> None:
    with pytest.raises(FrontendError) as err:
        import_onnx(kv_cache_model("past_len", causal=causal))
    message = str(err.value)
    assert "input 'past_key' has a dynamic dimension 2 ('past_len')" in message
    assert "feeds the past_key of ONNX node 'attn' (Attention)" in message
    assert f"{variant} (KV-cache decoding) is not supported" in message
    assert "without past_key/past_value" in message and "input_shapes=" in message


def test_a_fixed_length_kv_cache_computes_what_onnxruntime_does() -> None:
    model = kv_cache_model(4, causal=1)
    feeds = {n: RNG.standard_normal((1, HEADS, 1, D // HEADS)).astype(np.float32) for n in "qkv"}
    feeds |= {n: RNG.standard_normal((1, HEADS, 4, D // HEADS)).astype(np.float32) for n in ("past_key", "past_value")}
    graph = import_onnx(model)
    want = _onnxruntime(model, feeds)
    got = evaluate(graph, {n: feeds[n] for n in graph.inputs}).outputs
    for name, expected in zip(("y", "present_key", "present_value"), want, strict=True):
        _assert_matches(got[name], expected)


# -- causal masks without a cache ----------------------------------------------------------------------------
def test_is_causal_without_a_cache_matches_onnxruntime() -> None:
    model = attention_op_model(6, causal=1)
    graph = import_onnx(model)
    x = RNG.standard_normal((2, 6, D)).astype(np.float32)
    (want,) = _onnxruntime(model, {"x": x})
    _assert_matches(evaluate(graph, x).outputs[graph.outputs[0]], want)
    # causal: the first token attends only to itself, so changing later tokens leaves it alone
    later = x.copy()
    later[:, 1:] += 1.0
    (moved,) = _onnxruntime(model, {"x": later})
    _assert_matches(evaluate(graph, later).outputs[graph.outputs[0]][:, 0], moved[:, 0])
    np.testing.assert_allclose(moved[:, 0], want[:, 0], rtol=1e-5, atol=1e-6)


def test_an_additive_causal_mask_matches_onnxruntime() -> None:
    model = matmul_attention_model(6, causal_mask=True)
    graph = import_onnx(model)
    x = RNG.standard_normal((2, 6, D)).astype(np.float32)
    (want,) = _onnxruntime(model, {"x": x})
    _assert_matches(evaluate(graph, x).outputs[graph.outputs[0]], want)
