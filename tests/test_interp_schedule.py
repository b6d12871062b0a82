"""The multi-step schedule (the default) gives the stepwise schedule's results, on models other tools made.

Stateless nodes run on all steps at once, stateful ones scan over time, feedback loops keep stepping
(spikec/interp/schedule.py). Spikes must be identical and other values within 1e-6 relative; every node
kind is checked the same way in tests/test_interp_backends.py. Here: a CNN written in torch and converted
by spikec, the Sinabs N-MNIST CNN (NIR), an snnTorch RLeaky network exported to NIR (a loop that must keep
stepping), a recurrent edge outside any loop read across chunk boundaries, and the plans themselves.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from spikec import from_torch
from spikec.convert import convert
from spikec.frontends.nir_import import import_nir
from spikec.interp import RunResult, run
from spikec.interp import schedule as schedule_module
from spikec.interp.schedule import plan
from spikec.ir import (
    IF,
    LI,
    LIF,
    Add,
    Conv,
    CubaLI,
    CubaLIF,
    Dense,
    Edge,
    Flatten,
    Graph,
    I,
    Input,
    Output,
    RateMaxPool,
)
from spikec.models import load_model

SINABS_CNN = Path(__file__).resolve().parents[1] / "examples" / "models" / "cnn_sinabs.nir"
BACKENDS = ["numpy", "torch"]


def assert_same(graph: Graph, stepwise: RunResult, multistep: RunResult) -> None:
    """Identical spikes (0/1 outputs of spiking nodes), every other value within 1e-6 relative."""
    assert stepwise.traces.keys() == multistep.traces.keys() and stepwise.traces
    for key, expected in stepwise.traces.items():
        got = multistep.traces[key]
        assert got.shape == expected.shape, key
        node = graph.nodes.get(key)
        if node is not None and node.stateful and set(np.unique(expected)) <= {0.0, 1.0}:
            np.testing.assert_array_equal(got, expected, err_msg=f"spikes of {key} differ")
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9, err_msg=key)
    for key, expected in stepwise.outputs.items():
        np.testing.assert_allclose(multistep.outputs[key], expected, rtol=1e-6, atol=1e-9, err_msg=key)


def both_schedules(graph: Graph, x: np.ndarray, backend: str) -> tuple[RunResult, RunResult]:
    device = "cpu" if backend == "torch" else None
    step = run(graph, x, backend=backend, device=device, trace=True, schedule="step")
    multi = run(graph, x, backend=backend, device=device, trace=True)
    return step, multi


def spiking_nodes(graph: Graph) -> list[str]:
    return [name for name, node in graph.nodes.items() if isinstance(node, IF | LIF)]


# -- a CNN written in torch, converted by spikec -----------------------------------------------------------------
@pytest.fixture(scope="module")
def converted_cnn() -> Graph:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(6, 8, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 2 * 2, 5),
    )
    ann = from_torch(net, torch.zeros(1, 1, 8, 8))
    calib = np.random.default_rng(0).random((16, 1, 8, 8))
    snn, _ = convert(ann, calib, timesteps=12, measure_rates=False)
    return snn


@pytest.mark.parametrize("backend", BACKENDS)
def test_converted_torch_cnn_direct_input(converted_cnn: Graph, backend: str) -> None:
    """A direct input (the same sample every step): the multi-step schedule computes the first conv once."""
    sample = np.random.default_rng(1).random((3, 1, 8, 8))
    x = np.broadcast_to(sample, (12, *sample.shape))
    step, multi = both_schedules(converted_cnn, x, backend)
    assert_same(converted_cnn, step, multi)
    assert all(step.traces[n].any() for n in spiking_nodes(converted_cnn)), "every IF layer should spike"


@pytest.mark.parametrize("backend", BACKENDS)
def test_converted_torch_cnn_spike_input(converted_cnn: Graph, backend: str) -> None:
    x = (np.random.default_rng(2).random((12, 3, 1, 8, 8)) < 0.5).astype(np.float64)
    assert_same(converted_cnn, *both_schedules(converted_cnn, x, backend))


# -- the Sinabs N-MNIST CNN (NIR) -----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_sinabs_nir_cnn(backend: str) -> None:
    graph = load_model(SINABS_CNN)
    x = (np.random.default_rng(3).random((10, 2, 2, 34, 34)) < 0.3).astype(np.float64)
    step, multi = both_schedules(graph, x, backend)
    assert_same(graph, step, multi)
    assert sum(step.traces[n].sum() for n in spiking_nodes(graph)) > 0


# -- snnTorch RLeaky exported to NIR: a loop that keeps stepping -------------------------------------------------
@pytest.fixture(scope="module")
def rleaky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Graph, torch.nn.Module]:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    class Recurrent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            common = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
            self.fc1 = torch.nn.Linear(6, 8)
            self.lif1 = snn.RLeaky(beta=torch.full((8,), 0.8), linear_features=8, threshold=torch.ones(8), **common)
            self.fc2 = torch.nn.Linear(8, 3)
            self.lif2 = snn.Leaky(beta=torch.full((3,), 0.9), threshold=torch.ones(3), output=True, **common)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))[0]

    torch.manual_seed(0)
    net = Recurrent()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(4.0)
        net.lif1.recurrent.bias.zero_()  # NIR's recurrent edge carries no bias at step 0 (tests/test_nir_exporters.py)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch's deprecation notices
        exported = export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0])
    path = tmp_path_factory.mktemp("rleaky") / "rleaky.nir"
    nir.write(path, exported)
    return import_nir(path), net


def test_rleaky_loop_is_one_stepped_block(rleaky: tuple[Graph, torch.nn.Module]) -> None:
    graph = rleaky[0].inline_subgraphs()
    blocks = plan(graph)
    stepped = [b for b in blocks if b.stepped]
    assert len(stepped) == 1
    loop = set(stepped[0].names)
    assert {e.src for e in graph.edges if e.recurrent} <= loop and len(loop) >= 2
    assert sorted(n for b in blocks for n in b.names) == sorted(graph.order)
    assert all(len(b.names) == 1 for b in blocks if not b.stepped)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rleaky_schedules_agree_with_each_other_and_snntorch(
    rleaky: tuple[Graph, torch.nn.Module], backend: str
) -> None:
    from snntorch import utils

    graph, net = rleaky
    x = (torch.rand(30, 2, 6, generator=torch.Generator().manual_seed(1)) < 0.4).float() * 2.0
    step, multi = both_schedules(graph, x.numpy().astype(np.float64), backend)
    assert_same(graph.inline_subgraphs(), step, multi)
    utils.reset(net)
    with torch.no_grad():
        expected = torch.stack([net(x[t]) for t in range(x.shape[0])]).numpy()
    (out,) = multi.outputs.values()
    assert expected.sum() >= 5
    np.testing.assert_array_equal(out, expected)


# -- a recurrent edge outside any loop, across chunks ------------------------------------------------------------
def delayed_feedback() -> Graph:
    """x → fc1 → lif1 → out1; x → fcb → join ← lif1's spikes of the last step (a recurrent edge, no loop);
    join → fc2 → lif2 → out2."""
    rng = np.random.default_rng(5)
    nodes = {
        "x": Input(shape=(5,)),
        "fc1": Dense(weight=rng.normal(0.5, 1.0, (4, 5))),
        "lif1": LIF(tau=np.array(2e-3), v_threshold=np.array(0.5)),
        "fcb": Dense(weight=rng.normal(0.0, 0.3, (4, 5))),
        "join": Add(),
        "fc2": Dense(weight=rng.normal(0.5, 1.0, (3, 4))),
        "lif2": LIF(tau=np.array(3e-3), v_threshold=np.array(0.3)),
        "out1": Output(),
        "out2": Output(),
    }
    edges = [
        *itertools.pairwise(["x", "fc1", "lif1", "out1"]),
        *itertools.pairwise(["x", "fcb", "join", "fc2", "lif2", "out2"]),
        Edge("lif1", "join", recurrent=True),
    ]
    return Graph(nodes, edges, dt=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_recurrent_edge_without_a_loop_across_chunks(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = delayed_feedback()
    assert not any(b.stepped for b in plan(graph))
    x = (np.random.default_rng(6).random((23, 2, 5)) < 0.5).astype(np.float64)
    step, whole = both_schedules(graph, x, backend)
    monkeypatch.setattr(schedule_module, "CHUNK_BYTES", 7 * 2 * 8 * 5)
    assert schedule_module.chunk_steps(graph, 23, 2, 8) == 7  # chunks of 7, 7, 7 and 2 steps
    chunked = run(graph, x, backend=backend, trace=True)
    assert_same(graph, step, whole)
    assert_same(graph, step, chunked)
    assert step.traces["lif2"].any() and step.traces["lif1"].any()


def test_unknown_schedule_is_refused() -> None:
    from spikec.errors import InputError

    with pytest.raises(InputError, match="unknown schedule 'fast'"):
        run(delayed_feedback(), np.zeros((2, 1, 5)), schedule="fast")


# -- neuron scans -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_neurons_scan_instead_of_a_kernel_call_per_step(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the multi-step schedule IF, LIF and CubaLIF run as one scan per chunk (spikec/interp/scans.py), each
    Dense as one kernel call; the stepwise schedule calls each kernel once per step. Same spikes either way."""
    from spikec.interp.kernels import KERNELS

    calls: dict[str, int] = {}

    def counted(kind: type) -> None:
        kernel = KERNELS[kind]

        def call(node: object, *args: object) -> object:
            calls[kind.kind] = calls.get(kind.kind, 0) + 1
            return kernel(node, *args)

        monkeypatch.setitem(KERNELS, kind, call)

    for kind in (Dense, LIF, IF, CubaLIF):
        counted(kind)
    rng = np.random.default_rng(7)
    nodes = {
        "x": Input(shape=(6,)),
        "fc1": Dense(weight=rng.normal(0.4, 1.0, (5, 6))),
        "lif": LIF(tau=np.array(3e-3), v_threshold=np.array(0.4), reset="subtract"),
        "fc2": Dense(weight=rng.normal(0.4, 1.0, (4, 5))),
        "if": IF(v_threshold=np.array(0.7), reset="subtract_next", firing="at_or_above"),
        "fc3": Dense(weight=rng.normal(0.6, 1.0, (3, 4))),
        "cuba": CubaLIF(tau_syn=np.array(2e-3), tau_mem=np.array(4e-3), r=np.array(3.0), v_threshold=np.array(0.3)),
        "out": Output(),
    }
    graph = Graph(nodes, list(itertools.pairwise(nodes)), dt=1e-3)
    x = (rng.random((40, 3, 6)) < 0.5).astype(np.float64)
    multi = run(graph, x, backend=backend, trace=True)
    assert calls == {"Dense": 3}
    calls.clear()
    step = run(graph, x, backend=backend, trace=True, schedule="step")
    assert calls == {"Dense": 120, "LIF": 40, "IF": 40, "CubaLIF": 40}
    assert_same(graph, step, multi)
    assert step.traces["lif"].any() and step.traces["if"].any() and step.traces["cuba"].any()
    assert multi.traces.keys() >= {"lif.v", "if.v", "cuba.v", "cuba.i"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_readouts_and_rate_max_pool_scan_across_chunks(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A converted CNN's tail: IF → RateMaxPool (running sums, window maxima) and the readouts LI, CubaLI and I
    scan in the multi-step schedule (no kernel call per step), whole and in chunks of 3 steps, with the stepwise
    schedule's values."""
    from spikec.interp.kernels import KERNELS

    calls: dict[str, int] = {}
    for kind in (RateMaxPool, LI, CubaLI, I):
        kernel = KERNELS[kind]

        def counted(node: object, *args: object, kernel: object = kernel, kind: type = kind) -> object:
            calls[kind.kind] = calls.get(kind.kind, 0) + 1
            return kernel(node, *args)  # type: ignore[operator]

        monkeypatch.setitem(KERNELS, kind, counted)
    rng = np.random.default_rng(12)
    nodes = {
        "x": Input(shape=(2, 6, 6)),
        "conv": Conv(weight=rng.normal(0.3, 1.0, (3, 2, 3, 3)), padding=(1, 1)),
        "if": IF(v_threshold=np.array(1.0), reset="subtract"),
        "pool": RateMaxPool(kernel_size=(2, 2), stride=(2, 2)),
        "flat": Flatten(),
        "fc": Dense(weight=rng.normal(0.2, 1.0, (4, 27))),
        "li": LI(tau=np.array(4e-3), v_leak=np.array(0.1)),
        "cuba": CubaLI(tau_syn=np.array(2e-3), tau_mem=np.array(5e-3), r=np.array(2.0)),
        "i": I(r=np.array(0.5)),
        "out_li": Output(),
        "out_cuba": Output(),
        "out_i": Output(),
    }
    edges = [*itertools.pairwise(["x", "conv", "if", "pool", "flat", "fc", "li", "out_li"]),
             ("fc", "cuba"), ("cuba", "out_cuba"), ("fc", "i"), ("i", "out_i")]  # fmt: skip
    graph = Graph(nodes, edges, dt=1e-3)
    x = (rng.random((20, 3, 2, 6, 6)) < 0.5).astype(np.float64)
    whole = run(graph, x, backend=backend, device="cpu" if backend == "torch" else None, trace=True)
    assert calls == {}
    step = run(graph, x, backend=backend, device="cpu" if backend == "torch" else None, trace=True, schedule="step")
    assert calls == {"RateMaxPool": 20, "LI": 20, "CubaLI": 20, "I": 20}
    monkeypatch.setattr(schedule_module, "CHUNK_BYTES", 3 * 3 * 8 * 3 * 6 * 6)  # the conv's 3 steps: 7 chunks
    chunked = run(graph, x, backend=backend, device="cpu" if backend == "torch" else None, trace=True)
    assert_same(graph, step, whole)
    assert_same(graph, step, chunked)
    assert set(np.unique(step.traces["pool"])) == {0.0, 1.0} and whole.traces.keys() >= {"li.v", "cuba.i", "i.v"}


@pytest.mark.parametrize("magnitude", [2**6, 2**22])
@pytest.mark.parametrize("backend", BACKENDS)
def test_loihi_dense_scan_is_exact_for_small_and_large_graded_inputs(backend: str, magnitude: int) -> None:
    """Graded inputs to a Loihi Dense: small ones take the float32 product (exact below 2**24), large ones the
    float64 one (a float32 sum would round); both bit for bit the stepwise schedule's."""
    from spikec.targets.loihi2.dialect import LoihiDense

    rng = np.random.default_rng(9)
    nodes = {
        "x": Input(shape=(64,)),
        "fc": LoihiDense(weight=rng.integers(-256, 256, (16, 64)), num_message_bits=24, weight_exp=-2),
        "out": Output(),
    }
    graph = Graph(nodes, list(itertools.pairwise(nodes)), dt=1e-3)
    x = rng.integers(-magnitude, magnitude, (30, 2, 64)).astype(np.float64)
    step, multi = both_schedules(graph, x, backend)
    np.testing.assert_array_equal(multi.outputs["out"], step.outputs["out"])
    assert np.abs(step.outputs["out"]).max() > (2**24 if magnitude > 2**20 else 0)


def test_numpy_convolution_of_a_large_batch_gathers_windows_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """All steps of a chunk make one large batch: the numpy conv bounds its im2col columns (IM2COL_BYTES) by
    convolving the batch in parts, with the same sums as torch's conv on the whole batch."""
    import torch.nn.functional as F

    from spikec.interp import backend as numpy_backend

    rng = np.random.default_rng(11)
    x, w, b = rng.normal(size=(7, 3, 9, 9)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    monkeypatch.setattr(numpy_backend, "IM2COL_BYTES", 2 * 3 * 9 * 49 * 8)  # two samples' columns: four parts
    got = numpy_backend.NumpyBackend().conv(x, w, b, (1, 1), (0, 0), (1, 1), 1)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
