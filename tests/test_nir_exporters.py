"""NIR files written at test time by the frameworks' own exporters, imported and run with the plain CLI.

Each network is exported with the framework's ``to_nir``/``export_to_nir``, imported with
``spikec import FILE -o F.sir`` (no flags) and run with ``spikec run F.sir --input x.npy``; its spikes are
compared with the framework's own simulation of the same network on the same input where the two
semantics agree, and the test states what differs where they do not (docs/semantics.md, "NIR
exporters"). Networks are small and exported once per module.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
import torch

from spikec.cli import main
from spikec.frontends.nir_import import import_nir

T, B = 25, 3


def import_and_run(
    path: Path, x: np.ndarray, tmp: Path, import_flags: tuple[str, ...] = ()
) -> tuple[dict[str, np.ndarray], list[str]]:
    """``spikec import PATH -o P.sir`` then ``spikec run P.sir --input x.npy --trace -o P.run.npz``.

    Returns the run's arrays and the import's warnings (``--json`` only adds the machine-readable report).
    """
    sir = tmp / f"{path.stem}.sir"
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        assert main(["import", str(path), "-o", str(sir), "--json", *import_flags]) == 0
    np.save(tmp / "x.npy", x)
    out = tmp / f"{path.stem}.run.npz"  # not P.npz: that is P.sir's sidecar
    assert main(["run", str(sir), "--input", str(tmp / "x.npy"), "--trace", "-o", str(out)]) == 0
    with np.load(out) as result:
        return {k: result[k] for k in result.files}, json.loads(report.getvalue())["warnings"]


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Exporters warn about nirtorch's deprecated API; that is theirs, not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# -- snnTorch 1.0 (export_to_nir through nirtorch, dt = 1e-4) ----------------------------------------------
def _snntorch_nets() -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    """Leaky / Synaptic / RLeaky with reset to zero right at the spike (reset_delay=False): NIR's reset."""
    import snntorch as snn

    def leaky(n: tuple[int, ...], beta: float, **kw: Any) -> Any:
        return snn.Leaky(beta=torch.full(n, beta), threshold=torch.ones(n), **kw)

    common: dict[str, Any] = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)

    class Recurrent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(6, 8)
            self.lif1 = snn.RLeaky(beta=torch.full((8,), 0.8), linear_features=8, threshold=torch.ones(8), **common)
            self.fc2 = torch.nn.Linear(8, 3)
            self.lif2 = leaky((3,), 0.9, output=True, **common)

        def forward(self, x: torch.Tensor) -> Any:
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    torch.manual_seed(0)
    nets: dict[str, tuple[torch.nn.Module, tuple[int, ...]]] = {
        "feedforward": (
            torch.nn.Sequential(
                torch.nn.Linear(6, 8),
                leaky((8,), 0.8, **common),
                torch.nn.Linear(8, 3),
                leaky((3,), 0.9, output=True, **common),
            ),
            (6,),
        ),
        "synaptic": (
            torch.nn.Sequential(
                torch.nn.Linear(6, 8),
                snn.Synaptic(
                    alpha=torch.full((8,), 0.6), beta=torch.full((8,), 0.8), threshold=torch.ones(8), **common
                ),
                torch.nn.Linear(8, 3),
                leaky((3,), 0.9, output=True, **common),
            ),
            (6,),
        ),
        "conv_pool": (
            torch.nn.Sequential(
                torch.nn.Conv2d(2, 4, 3, padding=1),
                leaky((4, 8, 8), 0.8, **common),
                torch.nn.AvgPool2d(2),
                torch.nn.Flatten(),
                torch.nn.Linear(64, 3),
                leaky((3,), 0.9, output=True, **common),
            ),
            (2, 8, 8),
        ),
        "recurrent": (Recurrent(), (6,)),
    }
    with torch.no_grad():
        for net, _ in nets.values():
            for m in net.modules():
                if isinstance(m, torch.nn.Linear | torch.nn.Conv2d):
                    m.weight.mul_(4.0)
        # snnTorch adds the recurrent Linear's bias at step 0 (W·0 + b); a NIR recurrent edge carries the previous
        # step's value, zero before step 0 (as nirtorch's own executor does), so the test uses no recurrent bias.
        nets["recurrent"][0].lif1.recurrent.bias.zero_()  # type: ignore[union-attr]
    return nets


def _record(net: torch.nn.Module, kinds: tuple[type, ...], run: Any) -> dict[str, np.ndarray]:
    """Outputs of every module of ``kinds`` over ``run()``, stacked over steps, by module name."""
    seen: dict[str, list[torch.Tensor]] = {}

    def keep(name: str) -> Any:
        return lambda module, inputs, out: seen.setdefault(name, []).append(out[0] if isinstance(out, tuple) else out)

    hooks = [m.register_forward_hook(keep(n)) for n, m in net.named_modules() if isinstance(m, kinds)]
    with torch.no_grad():
        run()
    for hook in hooks:
        hook.remove()
    return {k: torch.stack(v).numpy() if len(v) > 1 else v[0].numpy() for k, v in seen.items()}


def _snntorch_run(net: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Spikes of every snnTorch neuron layer per step, by the NIR node name nirtorch gives it."""
    import snntorch as snn
    from snntorch import utils

    utils.reset(net)
    spikes = _record(net, (snn.SpikingNeuron,), lambda: [net(x[t]) for t in range(x.shape[0])])
    recurrent = {n for n, m in net.named_modules() if isinstance(m, snn.RLeaky | snn.RSynaptic)}
    return {f"{k}.lif" if k in recurrent else k: v for k, v in spikes.items()}


@pytest.fixture(scope="module")
def snntorch_files(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, torch.nn.Module, tuple[int, ...]]]:
    from snntorch.export_nir import export_to_nir

    folder = tmp_path_factory.mktemp("snntorch")
    files = {}
    for name, (net, shape) in _snntorch_nets().items():
        graph = _quiet(export_to_nir, net, torch.zeros(1, *shape), ignore_dims=[0])
        nir.write(folder / f"{name}.nir", graph)
        files[name] = (folder / f"{name}.nir", net, shape)
    return files


@pytest.mark.parametrize("name", ["feedforward", "synaptic", "conv_pool", "recurrent"])
def test_snntorch_export_runs_spike_for_spike(name: str, snntorch_files: Any, tmp_path: Path) -> None:
    """snnTorch's β = 1 − dt/τ and r = τ/dt (w_in = τ_syn/dt) make NIR's Euler step its own update exactly."""
    path, net, shape = snntorch_files[name]
    x = (torch.rand(T, B, *shape, generator=torch.Generator().manual_seed(1)) < 0.4).float() * 2.0
    expected = _snntorch_run(net, x)
    result, notes = import_and_run(path, x.numpy(), tmp_path)
    assert notes == []
    assert len(expected) == 2 and min(s.sum() for s in expected.values()) >= 5, "both layers should spike"
    for layer, spikes in expected.items():  # the recurrent layer is nirtorch's flat 'lif1.lif' (+ 'lif1.w_rec')
        np.testing.assert_array_equal(result[f"trace/{layer}"], spikes, err_msg=layer)


def test_snntorch_rsynaptic_imports_and_agrees_until_the_first_reset(tmp_path: Path) -> None:
    """RSynaptic's reset to zero differs from NIR's, so spikes agree only until the first hidden spike.

    snnTorch 1.0 resets an RSynaptic one step late and zeroes that whole step's membrane update (the input of
    the step after a spike is lost); its reset_delay=False path raises TypeError. NIR resets at the spike and
    integrates the next input, as spikec does.
    """
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(2)
    fc = torch.nn.Linear(6, 8)
    lif = snn.RSynaptic(
        alpha=torch.full((8,), 0.6),
        beta=torch.full((8,), 0.8),
        linear_features=8,
        threshold=torch.ones(8),
        init_hidden=True,
        reset_mechanism="zero",
    )
    with torch.no_grad():
        fc.weight.mul_(2.5)
        lif.recurrent.bias.zero_()
    net = torch.nn.Sequential(fc, lif)
    nir.write(tmp_path / "rsyn.nir", _quiet(export_to_nir, net, torch.zeros(1, 6), ignore_dims=[0]))
    x = (torch.rand(T, B, 6, generator=torch.Generator().manual_seed(3)) < 0.4).float() * 2.0
    (expected,) = _snntorch_run(net, x).values()
    got = import_and_run(tmp_path / "rsyn.nir", x.numpy(), tmp_path)[0]["trace/1.lif"]  # nirtorch's flat name
    assert expected.sum() >= 5
    for b in range(B):
        first = int(np.nonzero(expected[:, b].any(axis=-1))[0][0])
        np.testing.assert_array_equal(got[: first + 1, b], expected[: first + 1, b])


# -- Norse 1.1 (norse.torch.utils.export_nir.to_nir) -----------------------------------------------------------
@pytest.fixture(scope="module")
def norse_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, torch.nn.Module]]:
    import norse.torch as norse
    from norse.torch.utils.export_nir import to_nir

    folder = tmp_path_factory.mktemp("norse")
    torch.manual_seed(4)

    def box(shape: tuple[int, ...]) -> Any:
        p = norse.LIFBoxParameters(
            tau_mem_inv=torch.full(shape, 100.0), v_th=torch.full(shape, 0.3), v_leak=torch.zeros(shape)
        )
        return norse.LIFBoxCell(p)

    nets = {
        "feedforward": norse.SequentialState(torch.nn.Linear(6, 8), box((8,)), torch.nn.Linear(8, 3), box((3,))),
        "cuba": norse.SequentialState(
            torch.nn.Linear(6, 3),
            norse.LIFCell(
                norse.LIFParameters(
                    tau_mem_inv=torch.full((3,), 100.0),
                    tau_syn_inv=torch.full((3,), 200.0),
                    v_th=torch.full((3,), 0.3),
                    v_leak=torch.zeros(3),
                    v_reset=torch.zeros(3),
                )
            ),
        ),
    }
    files = {}
    for name, net in nets.items():
        graph = _quiet(to_nir, net, torch.zeros(6))  # one unbatched sample: NIR shapes have no batch axis
        nir.write(folder / f"{name}.nir", graph)
        files[name] = (folder / f"{name}.nir", net)
    return files


def _norse_run(net: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Spikes of every Norse neuron layer per step, by module name (the NIR node name)."""
    import norse.torch as norse

    def run() -> None:
        state = None
        for t in range(x.shape[0]):
            _, state = net(x[t], state)

    return _record(net, (norse.LIFBoxCell, norse.LIFCell), run)


def test_norse_export_warns_at_the_plain_dt_and_matches_at_the_dt_its_taus_encode(
    norse_files: Any, tmp_path: Path
) -> None:
    """Norse 1.1 writes τ = dt/τ_mem_inv (dt = 1 ms): 1e-5 s for τ_mem_inv = 100/s, no dt in the file.

    At spikec's default dt = 1e-4 the Euler factor 1 − dt/τ = −9 is unstable, and the import says so naming
    the node. Norse's LIFBox step is v += dt·τ_mem_inv·(v_leak − v + x) with r = 1, which is NIR's Euler step
    at the dt where dt/τ = 0.1, i.e. dt = 1e-6: there spikec's spikes equal Norse's.
    """
    path, net = norse_files["feedforward"]
    x = (torch.rand(T, B, 6, generator=torch.Generator().manual_seed(5)) < 0.4).float() * 2.0
    _, notes = import_and_run(path, x.numpy(), tmp_path)
    assert any(
        re.search(r"NIR node '1' \(LIF\): tau = 1e-05 s is at most dt/2.*= -9 .*grows without bound", n) for n in notes
    )
    expected = _norse_run(net, x)
    result, notes = import_and_run(path, x.numpy(), tmp_path, ("--dt", "1e-6"))
    assert notes == [] and sorted(expected) == ["1", "3"] and min(v.sum() for v in expected.values()) >= 3
    for layer, spikes in expected.items():
        np.testing.assert_array_equal(result[f"trace/{layer}"], spikes, err_msg=layer)


def test_norse_cuba_export_imports_but_its_synapse_is_not_nirs(norse_files: Any, tmp_path: Path) -> None:
    """Norse's LIFCell adds the input to i after the membrane step (v sees it one step later, a jump of x);
    NIR's CubaLIF integrates (dt/τ_syn)·w_in·x into i before v reads it. Norse writes no w_in, so no dt makes the
    two equal; the import keeps NIR's meaning and the shapes and parameters Norse wrote."""
    path, net = norse_files["cuba"]
    x = (torch.rand(T, B, 6, generator=torch.Generator().manual_seed(6)) < 0.4).float()
    result, notes = import_and_run(path, x.numpy(), tmp_path)
    assert any("NIR node '1' (CubaLIF): tau_syn = 5e-06 s" in n for n in notes)
    assert result["output"].shape == (T, B, 3)
    cell = net[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lif = import_nir(path).nodes["1"]
    np.testing.assert_allclose(lif.tau_syn, 1e-3 / cell.p.tau_syn_inv.numpy(), rtol=1e-6)  # type: ignore[attr-defined]
    np.testing.assert_allclose(lif.tau_mem, 1e-3 / cell.p.tau_mem_inv.numpy(), rtol=1e-6)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(lif.v_threshold, cell.p.v_th.numpy())  # type: ignore[attr-defined]
    with torch.no_grad():
        np.testing.assert_allclose(result["trace/0"], net[0](torch.from_numpy(x.numpy())).numpy(), rtol=1e-5, atol=1e-6)


# -- Sinabs 3.1 (sinabs.to_nir) -----------------------------------------------------------------------------------
def test_sinabs_iaf_cnn_runs_spike_for_spike(tmp_path: Path) -> None:
    """IAF with one spike per step and reset to zero is NIR's IF (no dt involved); SumPool2d and a CNN."""
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    def iaf() -> Any:
        return sl.IAFSqueeze(batch_size=B, spike_fn=SingleSpike, reset_fn=MembraneReset(), min_v_mem=None)

    torch.manual_seed(7)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False),
        iaf(),
        sl.SumPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 5),
        iaf(),
    )
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[4].weight.mul_(4)
        net[4].bias.fill_(0.4)
    graph = _quiet(sinabs.to_nir, net, torch.zeros(B, 2, 8, 8))
    graph.infer_types()  # sinabs leaves the Conv2d's shapes open, which nir.write cannot store
    nir.write(tmp_path / "sinabs.nir", graph)
    x = (torch.rand(B, T, 2, 8, 8, generator=torch.Generator().manual_seed(8)) < 0.5).float()
    for layer in (net[1], net[5]):
        layer.reset_states()  # to_nir ran the sample through the net: the biased layer holds its charge
    # Squeeze layers take (batch·time, ...) batch-major
    spikes = _record(net, (sl.IAFSqueeze,), lambda: net(x.reshape(B * T, 2, 8, 8)))
    result, notes = import_and_run(tmp_path / "sinabs.nir", x.transpose(0, 1).numpy(), tmp_path)
    assert notes == [] and sorted(spikes) == ["1", "5"]
    for layer, s in spikes.items():
        expected = np.moveaxis(s.reshape(B, T, *s.shape[1:]), 1, 0)
        assert expected.sum() >= 5, layer
        np.testing.assert_array_equal(result[f"trace/{layer}"], expected, err_msg=layer)


# -- Rockpool 3.1 (rockpool.nn.modules.torch.nir.to_nir) ----------------------------------------------------------
def test_rockpool_export_imports_and_its_synapses_match(tmp_path: Path) -> None:
    """Rockpool's LIFTorch (exact exponential decay, subtractive reset, several spikes per step) has no NIR
    equivalent, and its file stores r = τ·e^(−dt/τ)/dt for its own dt = 1 ms without writing dt. What the two
    share exactly is the weights: spikec's Linear layer equals Rockpool's LinearTorch on the same input."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(9)
    net = Sequential(LinearTorch((4, 6)), LIFTorch(6), LinearTorch((6, 3)), LIFTorch(3))
    nir.write(tmp_path / "rockpool.nir", _quiet(to_nir, net))
    x = torch.rand(T, B, 1, 4, generator=torch.Generator().manual_seed(10))
    result, notes = import_and_run(tmp_path / "rockpool.nir", x.numpy(), tmp_path)
    assert any("Output 'output' declares shape (1, 1, 3)" in n for n in notes)
    linear = net[0]
    with torch.no_grad():
        expected = linear(x.reshape(T * B, 1, 4))[0].reshape(T, B, 1, 6).numpy()
    np.testing.assert_allclose(result["trace/0_LinearTorch"], expected, rtol=1e-5, atol=1e-6)
    assert result["output"].shape == (T, B, 1, 3)
