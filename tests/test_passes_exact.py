"""The exact conversion passes: the interpreter's output before and after each must agree to rounding.

fold-batchnorm, fuse, avgpool-to-sumpool, maxpool-before-relu (and rate-maxpool, exact in count, in
test_passes_spiking.py). Every check runs the graph through spikec.interp before and after.
"""

from __future__ import annotations

import numpy as np
import pytest
from conversion_models import chain, residual_net

from spikec.errors import PassError, SpikecError
from spikec.interp import evaluate, run
from spikec.ir import (
    IF,
    Add,
    AvgPool,
    BatchNorm,
    Clip,
    Concat,
    Conv,
    Dense,
    Flatten,
    Graph,
    I,
    Identity,
    Input,
    MaxPool,
    Output,
    ReLU,
    Reshape,
    Scale,
    SumPool,
    Transpose,
)
from spikec.ir.node import node_kind
from spikec.pipeline import PassManager

RTOL = 1e-12


def ann_out(graph: Graph, x: np.ndarray) -> np.ndarray:
    (out,) = evaluate(graph, x).outputs.values()
    return out


def assert_same_ann(before: Graph, after: Graph, x: np.ndarray) -> None:
    a, b = ann_out(before, x), ann_out(after, x)
    np.testing.assert_allclose(b, a, rtol=RTOL, atol=RTOL * float(np.abs(a).max()))


def kinds(graph: Graph) -> list[str]:
    return [node.kind for node in graph.nodes.values()]


def bn(rng: np.random.Generator, c: int) -> BatchNorm:
    return BatchNorm(
        mean=rng.normal(size=c),
        var=rng.uniform(0.1, 2, c),
        weight=rng.normal(size=c),
        bias=rng.normal(size=c),
        eps=1e-3,
    )


# -- fold-batchnorm -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_into_conv_and_dense_is_exact(bias: bool) -> None:
    rng = np.random.default_rng(0)
    conv = Conv(weight=rng.normal(size=(4, 3, 3, 3)), bias=rng.normal(size=4) if bias else None, padding=(1, 1))
    dense = Dense(weight=rng.normal(size=(5, 4 * 6 * 6)), bias=rng.normal(size=5) if bias else None)
    g = chain(
        ("conv", conv), ("bn1", bn(rng, 4)), ("relu", ReLU()), ("flat", Flatten()), ("fc", dense), ("bn2", bn(rng, 5)),
        input_shape=(3, 6, 6),
    )  # fmt: skip
    folded = PassManager(["fold-batchnorm"]).run(g)
    assert kinds(folded) == ["Input", "Conv", "ReLU", "Flatten", "Dense", "Output"]
    assert_same_ann(g, folded, rng.normal(size=(7, 3, 6, 6)))


def test_fold_batchnorm_without_a_layer_before_becomes_a_depthwise_layer() -> None:
    rng = np.random.default_rng(1)
    conv = Conv(weight=rng.normal(size=(4, 2, 3, 3)))
    # BN right after the input, and after a conv that also feeds something else: neither can be folded.
    nodes = {
        "x": Input(shape=(2, 5, 5)),
        "bn0": bn(rng, 2),
        "conv": conv,
        "bn1": bn(rng, 4),
        "add": Add(),
        "y": Output(),
    }
    edges = [("x", "bn0"), ("bn0", "conv"), ("conv", "bn1"), ("conv", "add"), ("bn1", "add"), ("add", "y")]
    g = Graph(nodes, edges)
    folded = PassManager(["fold-batchnorm"]).run(g)
    assert "BatchNorm" not in kinds(folded)
    assert folded.nodes["bn0"].groups == 2 and folded.nodes["bn1"].groups == 4  # type: ignore[attr-defined]
    assert_same_ann(g, folded, rng.normal(size=(6, 2, 5, 5)))
    flat = chain(("bn", bn(rng, 6)), input_shape=(6,))
    dense = PassManager(["fold-batchnorm"]).run(flat)
    assert kinds(dense) == ["Input", "Dense", "Output"]
    assert_same_ann(flat, dense, rng.normal(size=(4, 6)))


# -- fuse ----------------------------------------------------------------------------------------------
def test_fuse_removes_identities_and_folds_scales_exactly() -> None:
    rng = np.random.default_rng(2)
    g = chain(
        ("id", Identity()),
        ("s0", Scale(scale=np.ones(()))),
        ("conv", Conv(weight=rng.normal(size=(3, 2, 3, 3)), bias=rng.normal(size=3))),
        ("s1", Scale(scale=rng.uniform(0.5, 2, (3, 1, 1)))),  # per output channel -> conv rows
        ("s2", Scale(scale=np.asarray(0.5))),  # Scale∘Scale
        ("clip", Clip(min=0.0, max=np.inf)),  # a ReLU
        ("relu", ReLU()),  # ReLU∘ReLU
        ("same", Reshape(shape=(3, 4, 4))),
        ("t", Transpose(perm=(0, 1, 2))),
        ("s3", Scale(scale=rng.uniform(0.5, 2, (3, 1, 1)))),  # moves past the pool and Flatten into fc columns
        ("pool", SumPool(kernel_size=(2, 2))),
        ("flat", Flatten()),
        ("fc", Dense(weight=rng.normal(size=(4, 12)), bias=rng.normal(size=4))),
        ("s4", Scale(scale=rng.uniform(0.5, 2, 4))),  # Dense followed by Scale
        input_shape=(2, 6, 6),
    )
    fused = PassManager(["fuse"]).run(g)
    assert kinds(fused) == ["Input", "Conv", "ReLU", "SumPool", "Flatten", "Dense", "Output"]
    assert_same_ann(g, fused, rng.normal(size=(5, 2, 6, 6)))


def test_fuse_folds_scales_into_neurons_and_keeps_what_cannot_fold() -> None:
    rng = np.random.default_rng(3)
    spiking = chain(
        ("s", Scale(scale=rng.uniform(0.5, 2, 4))),  # before an IF: into its r
        ("n", IF(reset="subtract")),
        ("keep", Scale(scale=rng.normal(size=(4,)))),  # after spikes, before the output: stays
        input_shape=(4,),
    )
    integrating = chain(
        ("s1", Scale(scale=rng.uniform(0.5, 2, 4))),  # before an integrator: into its r
        ("acc", I()),
        ("s2", Scale(scale=np.asarray(3.0))),  # after it: into its r too
        input_shape=(4,),
    )
    x = rng.uniform(0, 1, size=(20, 3, 4))
    for g, expected in ((spiking, ["Input", "IF", "Scale", "Output"]), (integrating, ["Input", "I", "Output"])):
        fused = PassManager(["fuse"]).run(g)
        assert kinds(fused) == expected
        np.testing.assert_allclose(run(fused, x).outputs["output"], run(g, x).outputs["output"], rtol=RTOL)


def test_fuse_folds_the_onnx_bias_into_the_layer_before() -> None:
    bias_kind = node_kind("Bias")  # the ONNX front end's y = x + b (Conv -> Add of a constant)
    rng = np.random.default_rng(9)
    g = chain(
        ("conv", Conv(weight=rng.normal(size=(3, 2, 3, 3)))),
        ("b1", bias_kind(bias=rng.normal(size=(3, 1, 1)))),
        ("relu", ReLU()),
        ("flat", Flatten()),
        ("fc", Dense(weight=rng.normal(size=(4, 48)), bias=rng.normal(size=4))),
        ("b2", bias_kind(bias=rng.normal(size=4))),
        input_shape=(2, 6, 6),
    )
    fused = PassManager(["fuse"]).run(g)
    assert kinds(fused) == ["Input", "Conv", "ReLU", "Flatten", "Dense", "Output"]
    assert_same_ann(g, fused, rng.normal(size=(5, 2, 6, 6)))


def test_fuse_leaves_summing_and_concat_inputs_alone() -> None:
    rng = np.random.default_rng(4)
    nodes = {
        "x": Input(shape=(3,)),
        "a": Dense(weight=rng.normal(size=(3, 3))),
        "s": Scale(scale=np.asarray(2.0)),
        "id": Identity(),
        "cat": Concat(axis=0),
        "y": Output(),
    }
    edges = [("x", "a"), ("a", "s"), ("x", "id"), ("s", "cat"), ("id", "cat"), ("cat", "y")]
    g = Graph(nodes, edges)
    fused = PassManager(["fuse"]).run(g)
    assert [e.src for e in fused.in_edges("cat")] == ["a", "x"]  # order kept: Concat joins in edge order
    assert_same_ann(g, fused, rng.normal(size=(4, 3)))


# -- avgpool-to-sumpool ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fold", [True, False])
def test_avgpool_to_sumpool_is_exact(fold: bool) -> None:
    rng = np.random.default_rng(5)
    g = chain(
        ("conv", Conv(weight=rng.normal(size=(3, 1, 3, 3)))),
        ("relu", ReLU()),
        ("pool", AvgPool(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))),
        ("flat", Flatten()),
        ("fc", Dense(weight=rng.normal(size=(2, 3 * 4 * 4)))),
        input_shape=(1, 9, 9),
    )
    summed = PassManager([f"avgpool-to-sumpool{{fold={str(fold).lower()}}}"]).run(g)
    expected = ["Input", "Conv", "ReLU", "SumPool", "Flatten", "Dense", "Output"]
    if not fold:
        expected.insert(4, "Scale")
    assert kinds(summed) == expected
    assert_same_ann(g, summed, rng.normal(size=(4, 1, 9, 9)))


def test_avgpool_before_an_output_keeps_its_scale() -> None:
    g = chain(("pool", AvgPool(kernel_size=(2, 2))), input_shape=(2, 4, 4))
    summed = PassManager(["avgpool-to-sumpool"]).run(g)
    assert kinds(summed) == ["Input", "SumPool", "Scale", "Output"]
    assert_same_ann(g, summed, np.random.default_rng(6).normal(size=(3, 2, 4, 4)))


# -- maxpool-before-relu --------------------------------------------------------------------------------
def test_maxpool_before_relu_is_bit_exact() -> None:
    rng = np.random.default_rng(7)
    g = chain(
        ("conv", Conv(weight=rng.normal(size=(3, 1, 3, 3)))),
        ("relu", ReLU()),
        ("pool", MaxPool(kernel_size=(2, 2), padding=(1, 1))),
        input_shape=(1, 7, 7),
    )
    moved = PassManager(["maxpool-before-relu"]).run(g)
    assert [e.dst for e in moved.out_edges("conv")] == ["pool"] and [e.dst for e in moved.out_edges("pool")] == ["relu"]
    x = rng.normal(size=(4, 1, 7, 7))
    np.testing.assert_array_equal(ann_out(moved, x), ann_out(g, x))


# -- all of them on a net with BN, residual Add, Concat, MaxPool and AvgPool -----------------------------
def test_exact_preparation_of_a_residual_net() -> None:
    from spikec.convert import EXACT_PREPARATION

    g = residual_net()
    prepared = PassManager([*EXACT_PREPARATION, "maxpool-before-relu"]).run(g)
    assert not {"BatchNorm", "AvgPool"} & set(kinds(prepared))
    assert_same_ann(g, prepared, np.random.default_rng(8).normal(size=(16, 2, 8, 8)))


def test_pass_steps_from_python_are_checked() -> None:
    with pytest.raises(SpikecError, match=r"pass 'fuse' has no option \['bogus'\]"):
        PassManager([("fuse", {"bogus": 1})])
    with pytest.raises(SpikecError, match=r"option 'calib' takes a np\.ndarray \| None and cannot be given in a spec"):
        PassManager(["threshold-balance{calib=x.npy}"])
    with pytest.raises(SpikecError, match="unknown pass 'nope'"):
        PassManager([("nope", {})])


def test_pass_failure_names_the_pass_and_history() -> None:
    g = chain(
        ("bn", BatchNorm(mean=np.zeros(2), var=np.ones(2), weight=np.ones(2), bias=np.zeros(2))), input_shape=(2,)
    )
    with pytest.raises(PassError, match=r"while running 'threshold-balance' after \['fuse'\].*fold-batchnorm first"):
        PassManager(["fuse", ("threshold-balance", {"calib": np.ones((3, 2))})]).run(g)
