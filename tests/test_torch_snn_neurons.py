"""Each SpikingJelly and snnTorch neuron class, each reset mode: a Linear layer feeding the neuron,
imported with from_torch and run by the interpreter for T=40 steps of random input, gives the
framework's spikes at every step and its membrane (float64). Options spikec cannot reproduce, and
stateful modules it does not know, are refused with the module's path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from spikec.errors import FrontendError
from spikec.frontends.torch_import import from_torch
from spikec.interp import run

T, BATCH, IN, OUT = 40, 3, 4, 6


def _net(neuron: torch.nn.Module, seed: int = 0) -> torch.nn.Sequential:
    return torch.nn.Sequential(_linear(seed), neuron).eval()


def _linear(seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    linear = torch.nn.Linear(IN, OUT)
    with torch.no_grad():
        linear.weight.mul_(2.0)
        linear.bias.fill_(0.6)
    return linear


class Branches(torch.nn.Module):
    """One Linear layer feeding every neuron variant side by side (one export tests them all)."""

    def __init__(self, neurons: dict[str, torch.nn.Module]) -> None:
        super().__init__()
        self.fc, self.neurons = _linear(), torch.nn.ModuleDict(neurons)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        current = self.fc(x)
        return torch.cat([n(current).to(current.dtype) for n in self.neurons.values()], dim=-1)


def _input(seed: int = 1) -> torch.Tensor:
    return 1.5 * torch.randn(T, BATCH, IN, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _interpret(net: torch.nn.Module, x: torch.Tensor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Import ``net`` (float32, as users export) and run it: spikes and membrane per branch."""
    graph = from_torch(net.float(), x[0, :1].float())
    result = run(graph, x.numpy(), trace=True)
    out = {}
    for name, node in graph.nodes.items():
        if node.origin.startswith("torch:neurons."):
            branch = node.origin.removeprefix("torch:neurons.").split(" ")[0]
            out[branch] = (result.traces[name], result.traces[f"{name}.v"])
    return out


SPIKINGJELLY: dict[str, Callable[[Any], torch.nn.Module]] = {
    "if_hard": lambda n: n.IFNode(v_reset=0.2),
    "if_soft": lambda n: n.IFNode(v_reset=None, v_threshold=0.8),
    "lif_decay_input_hard": lambda n: n.LIFNode(tau=2.0, v_reset=-0.1),
    "lif_decay_input_soft": lambda n: n.LIFNode(tau=3.0, v_reset=None),
    "lif_hard": lambda n: n.LIFNode(tau=4.0, decay_input=False),
    "lif_soft": lambda n: n.LIFNode(tau=1.5, decay_input=False, v_reset=None),
    "plif_hard": lambda n: n.ParametricLIFNode(init_tau=2.5),
    "plif_soft": lambda n: n.ParametricLIFNode(init_tau=5.0, decay_input=False, v_reset=None, v_threshold=2.0),
}


@pytest.mark.slow
def test_every_spikingjelly_neuron() -> None:
    from spikingjelly.activation_based import functional, neuron

    net = Branches({case: make(neuron) for case, make in SPIKINGJELLY.items()})
    functional.set_step_mode(net, "m")
    x = _input()
    ref = copy.deepcopy(net).double()
    functional.reset_net(ref)
    with torch.no_grad():
        want = ref(x).numpy().reshape(T, BATCH, len(SPIKINGJELLY), OUT)  # multi-step over the whole sequence
    got = _interpret(net, x)
    assert sorted(got) == sorted(SPIKINGJELLY)
    for k, case in enumerate(SPIKINGJELLY):
        spikes, v = got[case]
        assert 0.05 < want[:, :, k].mean() < 0.95, f"{case}: spike rate {want[:, :, k].mean()}: input too weak/strong"
        np.testing.assert_array_equal(spikes, want[:, :, k], err_msg=case)
        v_final = ref.neurons[case].v.detach().numpy()
        np.testing.assert_allclose(v[-1], v_final, rtol=1e-12, atol=1e-12, err_msg=case)


SNNTORCH: dict[str, tuple[str, dict[str, Any]]] = {
    "leaky_subtract": ("Leaky", {"beta": 0.8}),
    "leaky_zero": ("Leaky", {"beta": 0.6, "reset_mechanism": "zero"}),
    "leaky_zero_no_delay": ("Leaky", {"beta": 0.6, "reset_mechanism": "zero", "reset_delay": False}),
    "leaky_none": ("Leaky", {"beta": 0.5, "threshold": 4.0, "reset_mechanism": "none"}),
    "leaky_beta_per_neuron": ("Leaky", {"beta": torch.linspace(0.0, 0.95, OUT), "threshold": 0.7}),
    "leaky_beta_1_is_if": ("Leaky", {"beta": 1.0, "threshold": 1.5}),
    "synaptic_subtract": ("Synaptic", {"alpha": 0.7, "beta": 0.8, "threshold": 3.0}),
    "synaptic_none": ("Synaptic", {"alpha": 0.5, "beta": 0.4, "threshold": 6.0, "reset_mechanism": "none"}),
}


@pytest.mark.slow
def test_every_snntorch_neuron() -> None:
    import snntorch
    import snntorch.utils

    net = Branches({case: getattr(snntorch, cls)(init_hidden=True, **kw) for case, (cls, kw) in SNNTORCH.items()})
    x = _input()
    ref = copy.deepcopy(net).double()
    snntorch.utils.reset(ref)
    want, mem = [], []
    with torch.no_grad():
        for t in range(T):
            want.append(ref(x[t]).numpy().reshape(BATCH, len(SNNTORCH), OUT))
            mem.append(np.stack([ref.neurons[case].mem.detach().double().numpy() for case in SNNTORCH], axis=1))
    spikes_want, mem_want = np.stack(want), np.stack(mem)
    got = _interpret(net, x)
    for k, (case, (_, kwargs)) in enumerate(SNNTORCH.items()):
        spikes, v = got[case]
        assert 0.05 < spikes_want[:, :, k].mean() < 0.95, f"{case}: spike rate {spikes_want[:, :, k].mean()}"
        np.testing.assert_array_equal(spikes, spikes_want[:, :, k], err_msg=case)
        # the stored membrane: snnTorch keeps it before the reset; spikec too, except for a value reset
        kept = (spikes == 0) if kwargs.get("reset_mechanism") == "zero" else np.ones_like(spikes, bool)
        np.testing.assert_allclose(v[kept], mem_want[:, :, k][kept], rtol=1e-12, atol=1e-12, err_msg=case)


@pytest.mark.slow
def test_sir_parameters_of_each_mapping() -> None:
    """The mapping table of docs/torch-frontend.md, in steps times the graph's dt."""
    import snntorch
    from spikingjelly.activation_based import neuron

    graph = from_torch(_net(neuron.LIFNode(tau=4.0, decay_input=False, v_reset=None)), torch.zeros(1, IN))
    (lif,) = [n for n in graph.nodes.values() if n.kind == "LIF"]
    assert (lif.reset, lif.firing, float(lif.tau / graph.dt), float(lif.r)) == ("subtract", "at_or_above", 4.0, 4.0)
    graph = from_torch(_net(snntorch.Leaky(beta=0.75, init_hidden=True)), torch.zeros(1, IN))
    (lif,) = [n for n in graph.nodes.values() if n.kind == "LIF"]
    assert (lif.reset, lif.firing, float(lif.tau / graph.dt), float(lif.r)) == ("subtract_next", "above", 4.0, 4.0)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        ("Leaky", {"beta": 0.5, "reset_delay": False}, r"module '1' \(Leaky\): .*reset_delay=False is not supported"),
        ("Synaptic", {"alpha": 0.5, "beta": 0.5, "reset_mechanism": "zero"}, r"module '1' \(Synaptic\): .*'zero'"),
        ("Leaky", {"beta": 0.5, "graded_spikes_factor": 2.0}, r"graded_spikes_factor"),
        ("Synaptic", {"alpha": 1.0, "beta": 0.5}, r"alpha = 1"),
    ],
)
def test_unreproducible_options_are_refused(cls: str, kwargs: dict[str, Any], message: str) -> None:
    import snntorch

    with pytest.raises(FrontendError, match=message):
        from_torch(_net(getattr(snntorch, cls)(init_hidden=True, **kwargs)), torch.zeros(1, IN))


class CountingNeuron(torch.nn.Module):
    """A user's own stateful neuron: spikec cannot know its dynamics."""

    def __init__(self) -> None:
        super().__init__()
        self.v: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.v = x if self.v is None else self.v + x
        return (self.v > 1).float()


def test_unknown_stateful_module_is_refused_with_its_path() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(IN, OUT), torch.nn.Sequential(torch.nn.Identity(), CountingNeuron()))
    message = r"module '1\.1' \(.*CountingNeuron\) keeps state between time steps"
    with pytest.raises(FrontendError, match=message) as err:
        from_torch(net, torch.zeros(1, IN))
    assert "its 'v' changed" in str(err.value) and "neuron_mapper" in str(err.value)
    assert "snntorch._neurons.leaky.Leaky" in str(err.value)  # lists what is supported


def test_framework_subclass_is_not_taken_for_its_base() -> None:
    """A subclass may change the dynamics; it is refused rather than mapped as its base class."""
    from spikingjelly.activation_based import neuron

    class MyLIF(neuron.LIFNode):
        pass

    with pytest.raises(FrontendError, match=r"module '1' \(.*MyLIF\) keeps state .*MemoryModule"):
        from_torch(_net(MyLIF()), torch.zeros(1, IN))


class ReturnsState(torch.nn.Module):
    """snnTorch without init_hidden returns (spk, mem): the spikes import, a use of mem does not."""

    def __init__(self, use_membrane: bool) -> None:
        import snntorch

        super().__init__()
        self.fc, self.lif, self.use_membrane = torch.nn.Linear(IN, OUT), snntorch.Leaky(beta=0.5), use_membrane

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spk, mem = self.lif(self.fc(x))
        return spk + mem if self.use_membrane else spk


@pytest.mark.slow
def test_snntorch_state_outputs_import_only_unused() -> None:
    graph = from_torch(ReturnsState(use_membrane=False), torch.zeros(1, IN))
    assert [n.kind for n in graph.nodes.values()].count("LIF") == 1
    with pytest.raises(FrontendError, match=r"module 'lif' \(Leaky\): the model uses its membrane"):
        from_torch(ReturnsState(use_membrane=True), torch.zeros(1, IN))


class HalfDecayNeuron(torch.nn.Module):
    """A user's neuron, v ← v/2 + x, spike at v > 1, reset to 0: registered with a mapper below."""

    def __init__(self) -> None:
        super().__init__()
        self.v = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.v = self.v / 2 + x
        spikes = (self.v > 1).to(x.dtype)
        self.v = self.v * (1 - spikes)
        return spikes


@pytest.mark.slow
def test_a_registered_mapper_imports_a_users_neuron() -> None:
    from spikec.frontends.torch_snn import NEURON_MAPPERS, neuron_mapper
    from spikec.frontends.torch_snn.registry import class_name
    from spikec.ir import LIF

    key = class_name(HalfDecayNeuron)
    neuron_mapper(key)(lambda m: LIF(tau=np.array(2.0), r=np.array(2.0)))  # β = 1/2: τ = r = 1/(1 − β) steps
    try:
        net = _net(HalfDecayNeuron())
        x = _input()
        graph = from_torch(net, x[0, :1].float())
    finally:
        del NEURON_MAPPERS[key]
    ref = net.double()
    with torch.no_grad():
        want = np.stack([ref(x[t]).numpy() for t in range(T)])
    assert 0.05 < want.mean() < 0.95
    np.testing.assert_array_equal(run(graph, x.numpy()).outputs[graph.outputs[0]], want)
