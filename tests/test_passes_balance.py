"""threshold-balance: exact on the ANN, scales equal to independently computed statistics, shared scales
where inputs meet (Add, Concat), clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from conversion_models import chain, residual_net
from test_passes_exact import assert_same_ann

from spikec.errors import PassError
from spikec.interp import evaluate
from spikec.ir import LIF, Add, Concat, Dense, Graph, Input, Output, ReLU
from spikec.passes.threshold_balance import BalanceResult, threshold_balance
from spikec.pipeline import PassManager

PREPARE = ["fold-batchnorm", "fuse", "avgpool-to-sumpool"]


def balance(graph: Graph, calib: np.ndarray, **options: object) -> BalanceResult:
    result = threshold_balance(graph, calib=calib, **options)  # type: ignore[arg-type]
    result.graph.verify()
    return result


def mlp(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    return chain(
        ("fc1", Dense(weight=rng.normal(size=(6, 4)), bias=rng.normal(size=6))),
        ("relu1", ReLU()),
        ("fc2", Dense(weight=rng.normal(size=(5, 6)), bias=rng.normal(size=5))),
        ("relu2", ReLU()),
        ("fc3", Dense(weight=rng.normal(size=(3, 5)))),
        input_shape=(4,),
    )


@pytest.mark.parametrize("granularity", ["layer", "channel"])
@pytest.mark.parametrize("method", ["percentile", "max"])
@pytest.mark.parametrize("outputs", [False, True])
def test_balanced_residual_net_computes_the_same_ann(granularity: str, method: str, outputs: bool) -> None:
    g = PassManager(PREPARE).run(residual_net())
    rng = np.random.default_rng(1)
    result = balance(g, rng.normal(size=(64, 2, 8, 8)), method=method, granularity=granularity, outputs=outputs)
    assert_same_ann(g, result.graph, rng.normal(size=(32, 2, 8, 8)))


@pytest.mark.parametrize("granularity", ["layer", "channel"])
def test_scales_are_the_percentile_of_positive_activations(granularity: str) -> None:
    g = mlp()
    calib = np.random.default_rng(2).normal(size=(500, 4))
    result = balance(g, calib, percentile=99.0, granularity=granularity)
    acts = evaluate(g, calib, trace=["relu1", "relu2"]).traces
    by_name = {layer.name: layer for layer in result.layers}
    for name in ("relu1", "relu2"):
        a = acts[name]
        if granularity == "layer":
            expected = np.percentile(a[a > 0], 99.0)
        else:
            expected = np.array([np.percentile(col[col > 0], 99.0) for col in a.T])
        np.testing.assert_allclose(by_name[name].activation_scale, expected, rtol=1e-6)
        np.testing.assert_allclose(by_name[name].scale, expected, rtol=1e-6)
        # after balancing, the layer's own statistic is 1: an IF with threshold 1 fits it
        balanced = evaluate(result.graph, calib, trace=[name]).traces[name]
        if granularity == "layer":
            assert np.percentile(balanced[balanced > 0], 99.0) == pytest.approx(1.0, rel=1e-5)
        else:
            cols = [np.percentile(col[col > 0], 99.0) for col in balanced.T]
            np.testing.assert_allclose(cols, 1.0, rtol=1e-5)


def test_method_max_scales_to_the_largest_activation() -> None:
    g = mlp(3)
    calib = np.random.default_rng(3).normal(size=(200, 4))
    result = balance(g, calib, method="max")
    balanced = evaluate(result.graph, calib, trace=["relu1", "relu2"]).traces
    for name in ("relu1", "relu2"):
        assert balanced[name].max() == pytest.approx(1.0, rel=1e-9)


def test_relus_meeting_at_an_add_or_concat_share_one_scale() -> None:
    rng = np.random.default_rng(4)
    nodes = {
        "x": Input(shape=(3,)),
        "a": Dense(weight=rng.normal(size=(4, 3))),
        "ra": ReLU(),
        "b": Dense(weight=3 * rng.normal(size=(4, 3))),  # a much larger scale than branch a
        "rb": ReLU(),
        "sum": Add(),
        "c": Dense(weight=rng.normal(size=(2, 3))),
        "rc": ReLU(),
        "cat": Concat(axis=0),
        "head": Dense(weight=rng.normal(size=(2, 6))),
        "y": Output(),
    }
    edges = [
        ("x", "a"), ("a", "ra"), ("x", "b"), ("b", "rb"), ("ra", "sum"), ("rb", "sum"), ("x", "c"), ("c", "rc"),
        ("sum", "cat"), ("rc", "cat"), ("cat", "head"), ("head", "y"),
    ]  # fmt: skip
    g = Graph(nodes, edges)
    calib = rng.normal(size=(300, 3))
    result = balance(g, calib, granularity="layer")
    layers = {layer.name: layer for layer in result.layers}
    lam = {n: float(layers[n].activation_scale) for n in ("ra", "rb", "rc")}
    common = max(lam.values())
    for name in ("ra", "rb", "rc"):
        assert float(layers[name].scale) == pytest.approx(common)
        assert set(layers[name].shared_with) == {"ra", "rb", "rc"} - {name}
    # both inputs of the Add arrive at one scale, so no Scale is needed in front of it
    assert not [e for e in result.graph.in_edges("sum") if result.graph.nodes[e.src].kind == "Scale"]
    assert_same_ann(g, result.graph, rng.normal(size=(50, 3)))


def test_residual_relu_gets_a_rescale_in_front() -> None:
    g = PassManager(PREPARE).run(residual_net())
    result = balance(g, np.random.default_rng(5).normal(size=(64, 2, 8, 8)))
    # r3 = relu(c3(...) + r1): its input arrives at r1's scale, its output at its own
    (edge,) = result.graph.in_edges("r3")
    assert result.graph.nodes[edge.src].kind == "Scale"
    layers = {layer.name: layer for layer in result.layers}
    np.testing.assert_allclose(result.graph.nodes[edge.src].scale, layers["r1"].scale / layers["r3"].scale)  # type: ignore[attr-defined]


def test_a_channel_never_active_takes_its_layer_scale() -> None:
    g = chain(
        ("fc", Dense(weight=np.eye(3), bias=np.array([0.0, 0.0, -100.0]))),
        ("relu", ReLU()),
        ("head", Dense(weight=np.ones((1, 3)))),
        input_shape=(3,),
    )
    calib = np.random.default_rng(6).uniform(0, 1, size=(100, 3))
    (layer,) = balance(g, calib, method="max", granularity="channel").layers
    top = calib[:, :2].max(axis=0)
    np.testing.assert_allclose(layer.activation_scale, [top[0], top[1], top.max()])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "median"}, r"method='median' is not one of \['max', 'percentile'\]"),
        ({"granularity": "neuron"}, r"granularity='neuron' is not one of \['layer', 'channel'\]"),
        ({"percentile": 0.0}, r"percentile=0.0 must be in \(0, 100\]"),
        ({"calib": None}, "threshold-balance needs a calibration set"),
        ({"calib": np.zeros((0, 4))}, "the calibration set is empty"),
    ],
)
def test_bad_options_are_pass_errors(options: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {"calib": np.ones((4, 4)), **options}
    with pytest.raises(PassError, match=message):
        threshold_balance(mlp(), **kwargs)  # type: ignore[arg-type]


def test_unsupported_graphs_are_named() -> None:
    spiking = chain(("fc", Dense(weight=np.eye(2))), ("n", LIF(tau=np.array(1e-3))), input_shape=(2,))
    with pytest.raises(PassError, match=r"node 'n' \(LIF\).*threshold-balance takes ANN graphs"):
        threshold_balance(spiking, calib=np.ones((2, 2)))
    nodes = {"x": Input(shape=(2,)), "fc": Dense(weight=np.eye(2)), "r": ReLU(), "add": Add(), "y": Output()}
    g = Graph(nodes, [("x", "fc"), ("fc", "r"), ("r", "add"), ("x", "add"), ("add", "y")])
    with pytest.raises(PassError, match="graph input 'x' meets the output of ReLU 'r'"):
        threshold_balance(g, calib=np.ones((2, 2)))
