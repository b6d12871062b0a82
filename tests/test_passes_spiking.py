"""The rate-coding passes and kinds, against stated bounds: relu-to-if (θ/T), init-membrane (θ/(2T)),
rate-maxpool (exact in count), decode-output, encode-input; and the IF extensions (v_init, bipolar)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conversion_models import chain

from spikec.coding import decode, encode
from spikec.errors import PassError
from spikec.interp import run
from spikec.ir import IF, Dense, Graph, MaxPool, RateMaxPool, ReLU, Scale
from spikec.pipeline import PassManager

BACKENDS = ["numpy", "torch"]


def neuron_graph(node: IF | RateMaxPool | None = None, shape: tuple[int, ...] = (6,)) -> Graph:
    return chain(("n", node if node is not None else IF()), input_shape=shape)


# -- IF extensions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_if_starts_at_v_init(backend: str) -> None:
    g = neuron_graph(IF(v_init=np.array([0.0, 0.5, 0.9]), reset="subtract"), (3,))
    out = run(g, np.full((1, 1, 3), 0.2), backend=backend, trace=True)
    np.testing.assert_allclose(out.traces["n.v"][0, 0], [0.2, 0.7, 0.1])
    np.testing.assert_array_equal(out.outputs["output"][0, 0], [0.0, 0.0, 1.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("reset", "v_after"), [("subtract", [0.25, -0.25]), ("value", [0.0, 0.0]), ("none", [1.25, -1.25])]
)
def test_bipolar_if_fires_both_ways(backend: str, reset: str, v_after: list[float]) -> None:
    g = neuron_graph(IF(polarity="bipolar", reset=reset), (2,))
    out = run(g, np.array([[[1.25, -1.25]]]), backend=backend, trace=True)
    np.testing.assert_array_equal(out.outputs["output"][0, 0], [1.0, -1.0])
    np.testing.assert_allclose(out.traces["n.v"][0, 0], v_after)


@pytest.mark.parametrize("node", [IF(polarity="bipolar"), IF(v_init=np.array(0.5))])
def test_nir_export_refuses_the_if_extensions(node: IF, tmp_path: Path) -> None:
    from spikec.errors import SpikecError
    from spikec.models import save_model

    with pytest.raises(SpikecError, match=r"no NIR equivalent; keep the model in \.sir"):
        save_model(neuron_graph(node), tmp_path / "n.nir")
    assert not (tmp_path / "n.nir").exists()


def test_bipolar_needs_a_positive_threshold_and_polarity_is_checked() -> None:
    from spikec.errors import VerifyError

    with pytest.raises(VerifyError, match="bipolar IF needs v_threshold > 0"):
        neuron_graph(IF(polarity="bipolar", v_threshold=np.array(0.0)))
    with pytest.raises(VerifyError, match="polarity 'tripolar' must be one of"):
        neuron_graph(IF(polarity="tripolar"))


# -- relu-to-if and init-membrane: rate bounds for constant input --------------------------------------
def _rates(graph: Graph, c: np.ndarray, steps: int) -> np.ndarray:
    return run(graph, np.broadcast_to(c, (steps, *c.shape))).outputs["output"].sum(axis=0) / steps


@pytest.mark.parametrize("steps", [1, 5, 16, 64])
@pytest.mark.parametrize(("init", "bound"), [(None, 1.0), (0.5, 0.5)])
def test_if_rate_approximates_clipped_relu_within_the_stated_bound(
    steps: int, init: float | None, bound: float
) -> None:
    theta = 0.7
    rng = np.random.default_rng(0)
    w = rng.normal(size=(40, 3))
    ann = chain(("fc", Dense(weight=w)), ("relu", ReLU()), input_shape=(3,))
    passes = [f"relu-to-if{{threshold={theta}}}"] + ([f"init-membrane{{fraction={init}}}"] if init else [])
    snn = PassManager(passes).run(ann)
    x = rng.normal(size=(50, 3)) * 0.3
    c = x @ w.T  # the constant current of every neuron
    rate = _rates(snn, x, steps)
    error = np.abs(rate * theta - np.clip(c, 0.0, theta))
    assert error.max() <= bound * theta / steps + 1e-12
    assert (error > 0).any() or steps == 1 or init is None  # the bound is reached, not vacuous


def test_init_membrane_options() -> None:
    g = chain(("a", IF(v_threshold=np.array([1.0, 2.0]))), ("b", IF(polarity="bipolar")), input_shape=(2,))
    done = PassManager(["init-membrane{fraction=0.25}"]).run(g)
    np.testing.assert_allclose(done.nodes["a"].v_init, [0.25, 0.5])  # type: ignore[attr-defined]
    assert float(done.nodes["b"].v_init) == 0.0  # type: ignore[attr-defined]
    both = PassManager(["init-membrane{bipolar=true}"]).run(g)
    assert float(both.nodes["b"].v_init) == 0.5  # type: ignore[attr-defined]
    with pytest.raises(PassError, match=r"fraction=1.0 must be in \[0, 1\)"):
        PassManager(["init-membrane{fraction=1.0}"]).run(g)
    with pytest.raises(PassError, match="reset='soft' is not one of"):
        PassManager(["relu-to-if{reset=soft}"]).run(g)


# -- rate-maxpool ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("kernel", "stride", "padding"), [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))])
def test_rate_maxpool_count_is_the_max_count_of_each_window(
    backend: str, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> None:
    rng = np.random.default_rng(1)
    rates = rng.uniform(0, 1, size=(1, 4, 2, 7, 7))
    spikes = (rng.uniform(size=(40, 4, 2, 7, 7)) < rates).astype(np.float64)
    ann = chain(("pool", MaxPool(kernel_size=kernel, stride=stride, padding=padding)), input_shape=(2, 7, 7))
    snn = PassManager(["rate-maxpool"]).run(ann)
    assert snn.nodes["pool"].kind == "RateMaxPool"
    out = run(snn, spikes, backend=backend).outputs["output"]
    assert set(np.unique(out)) <= {0.0, 1.0}
    counts = np.cumsum(spikes, axis=0)
    expected = run(ann, counts).outputs["output"]  # max-pool of the running counts, step by step
    np.testing.assert_array_equal(np.cumsum(out, axis=0), expected)


def test_max_pooling_spikes_directly_overcounts() -> None:
    """Why rate-maxpool exists: max-pooling spikes counts a spike when *any* neuron fires."""
    rng = np.random.default_rng(2)
    spikes = (rng.uniform(size=(200, 1, 1, 2, 2)) < 0.3).astype(np.float64)
    ann = chain(("pool", MaxPool(kernel_size=(2, 2))), input_shape=(1, 2, 2))
    direct = run(ann, spikes).outputs["output"].sum()
    rate = run(PassManager(["rate-maxpool"]).run(ann), spikes).outputs["output"].sum()
    assert rate == spikes.sum(axis=0).max()
    assert direct > 1.5 * rate  # 1 − 0.7⁴ ≈ 0.76 against 0.3


# -- decode-output and encode-input ----------------------------------------------------------------------
def test_membrane_readout_is_the_mean_input_of_the_last_layer() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 3))
    g = PassManager(["decode-output"]).run(chain(("fc", Dense(weight=w)), input_shape=(3,)))
    assert [n.kind for n in g.nodes.values()] == ["Input", "Dense", "I", "Output"]
    x = rng.normal(size=(10, 5, 3))
    answers = decode(run(g, x).outputs["output"], "membrane")
    np.testing.assert_allclose(answers[-1], x.mean(axis=0) @ w.T, rtol=1e-12)
    np.testing.assert_allclose(answers[2], x[:3].mean(axis=0) @ w.T, rtol=1e-12)


def test_spiking_readout_is_signed_and_within_theta_over_t() -> None:
    rng = np.random.default_rng(4)
    base = chain(("fc", Dense(weight=np.eye(8))), ("restore", Scale(scale=np.asarray(2.0))), input_shape=(8,))
    g = PassManager(["decode-output{mode=spikes}"]).run(base)
    readout = g.nodes["output.readout"]
    assert readout.kind == "IF" and readout.polarity == "bipolar"  # type: ignore[attr-defined]
    assert [e.dst for e in g.out_edges("output.readout")] == ["restore"]  # in front of the trailing Scale
    c = rng.uniform(-1, 1, size=(6, 8))
    steps = 32
    answers = decode(run(g, np.broadcast_to(c, (steps, *c.shape))).outputs["output"], "spikes")
    assert np.abs(answers[-1] - 2.0 * c).max() <= 2.0 / steps + 1e-12
    assert (answers[-1] < 0).any()
    again = PassManager(["decode-output{mode=spikes}"]).run(g)
    assert again == g  # an output already fed by a neuron is left alone


def test_poisson_encoding_is_seeded_signed_and_unbiased() -> None:
    g = PassManager(["encode-input{mode=poisson,scale=4.0}"]).run(
        chain(("fc", Dense(weight=np.eye(3))), input_shape=(3,))
    )
    assert g.nodes["input.encode"].kind == "Scale"
    x = np.array([[2.0, -1.0, 0.0]])
    train = encode(x, 4000, "poisson", scale=4.0, seed=7)
    np.testing.assert_array_equal(train, encode(x, 4000, "poisson", scale=4.0, seed=7))
    assert set(np.unique(train)) <= {-1.0, 0.0, 1.0}
    mean = run(g, train).outputs["output"].mean(axis=0)[0]
    p = np.abs(x[0]) / 4.0
    assert np.all(np.abs(mean - x[0]) <= 4.0 * 5 * np.sqrt(p * (1 - p) / 4000) + 1e-12)  # 5 standard errors
    assert np.array_equal(encode(x, 3, "direct"), np.repeat(x[None], 3, axis=0))
    with pytest.raises(PassError, match=r"scale=0\.0 must be finite and > 0"):
        PassManager(["encode-input{mode=poisson,scale=0}"]).run(g)
