"""Spikformer-style encoder blocks written with SpikingJelly and with snnTorch neurons, for --arch.

    spikec import block.pt --arch examples/spikformer_block.py:build_spikingjelly --input-shape 4,16 -o b.sir
    spikec import block.pt --arch examples/spikformer_block.py:build_snntorch --input-shape 4,16 -o b.sir
    spikec import block.pt --arch examples/spikformer_block.py:build_spikformer --input-shape 4,8 -o b.sir
    spikec compile b.sir --target loihi2 --timesteps 16 --pass-option quantize.reset_to_zero=true -o art/
    spikec verify art/

One block on tokens ``x`` of shape (N, C) per sample (Zhou et al., "Spikformer", ICLR 2023), with
"Linear+BN" standing for ``BN(Linear(·))`` over the channel axis:

    q, k, v = LIF(Linear+BN(x)) for each           (spikes, split into ``heads`` heads of C/heads)
    a       = LIF_attn(q · kᵀ · v · scale)          per head, no softmax; threshold 0.5, scale 1/4
    x       = x + Linear+BN(a)                      (projection, residual)
    x       = x + Linear+BN(LIF(Linear+BN(x)))      (MLP, residual)

Spikformer's own code puts an LIF after the projection and after fc2, so its residuals add spike trains
(``neurons`` with "proj" and "fc2" entries; ``build_spikformer``): the form Loihi 2 runs
(targets/loihi2/docs/loihi2-target.md). The SpikingJelly block takes a time axis in multi-step mode,
(T, B, N, C); spikec sets it to single step for export. The snnTorch block is called once per step on
(B, N, C) and keeps its state (``init_hidden=True``). The neurons vary (hard and soft resets, a learned time constant, a
synaptic neuron) so that one block exercises every mapping.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn


class LinearBN(nn.Module):
    """``BN(Linear(x))`` with BatchNorm1d over the channel axis of (..., N, C) tokens."""

    def __init__(self, dim_in: int, dim_out: int, bn: nn.Module) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(x).transpose(-1, -2)).transpose(-1, -2)


class SpikformerBlock(nn.Module):
    """Spiking self-attention (SSA) and MLP with residuals; neurons come from the factories."""

    def __init__(
        self,
        dim: int,
        heads: int,
        hidden: int,
        neurons: dict[str, Callable[[], nn.Module]],
        bn: Callable[[int], nn.Module],
        scale: float = 0.25,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads, self.scale = heads, scale
        self.q, self.k, self.v = (LinearBN(dim, dim, bn(dim)) for _ in range(3))
        self.q_lif, self.k_lif, self.v_lif = neurons["q"](), neurons["k"](), neurons["v"]()
        self.attn_lif = neurons["attn"]()
        self.proj = LinearBN(dim, dim, bn(dim))
        self.fc1 = LinearBN(dim, hidden, bn(hidden))
        self.fc1_lif = neurons["mlp"]()
        self.fc2 = LinearBN(hidden, dim, bn(dim))
        identity: Callable[[], nn.Module] = nn.Identity
        self.proj_lif, self.fc2_lif = neurons.get("proj", identity)(), neurons.get("fc2", identity)()

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, C) → (..., heads, N, C/heads)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(-3, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._split(self.q_lif(self.q(x)))
        k = self._split(self.k_lif(self.k(x)))
        v = self._split(self.v_lif(self.v(x)))
        attn = (q @ k.transpose(-2, -1)) @ v * self.scale
        attn = self.attn_lif(attn.transpose(-3, -2).flatten(-2))
        x = x + self.proj_lif(self.proj(attn))
        return x + self.fc2_lif(self.fc2(self.fc1_lif(self.fc1(x))))


def randomize(block: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded random weights, and BatchNorm statistics that are not the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / m.in_features**0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.6 + 0.2 * torch.randn(m.bias.shape, generator=gen))
    return block.eval()


def build_spikingjelly(
    dim: int = 16, heads: int = 2, hidden: int = 32, seed: int = 0, scale: float = 0.25
) -> nn.Module:
    """The block with SpikingJelly neurons, multi-step (input (T, B, N, C))."""
    from spikingjelly.activation_based import layer, neuron

    m = "m"
    neurons: dict[str, Callable[[], nn.Module]] = {
        "q": lambda: neuron.LIFNode(tau=2.0, detach_reset=True, step_mode=m),
        "k": lambda: neuron.LIFNode(tau=2.0, v_reset=None, step_mode=m),  # soft reset
        "v": lambda: neuron.ParametricLIFNode(init_tau=2.0, step_mode=m),
        "attn": lambda: neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode=m),
        "mlp": lambda: neuron.LIFNode(tau=3.0, decay_input=False, step_mode=m),
    }
    block = SpikformerBlock(dim, heads, hidden, neurons, lambda c: layer.BatchNorm1d(c, step_mode=m), scale)
    with torch.no_grad():
        block.v_lif.w.fill_(0.3)  # a learned 1/τ = sigmoid(w) other than the initial 1/2
    return randomize(block, seed)


def build_spikformer(dim: int = 8, heads: int = 2, hidden: int = 16, seed: int = 0, scale: float = 0.5) -> nn.Module:
    """Spikformer's own layout with SpikingJelly neurons (LIF after proj and fc2: spike residuals), multi-step."""
    from spikingjelly.activation_based import layer, neuron

    def lif(threshold: float = 1.0) -> Callable[[], nn.Module]:
        return lambda: neuron.LIFNode(tau=2.0, v_threshold=threshold, detach_reset=True, step_mode="m")

    neurons = {"q": lif(), "k": lif(), "v": lif(), "attn": lif(0.5), "proj": lif(), "mlp": lif(), "fc2": lif()}
    block = randomize(
        SpikformerBlock(dim, heads, hidden, neurons, lambda c: layer.BatchNorm1d(c, step_mode="m"), scale), seed
    )
    with torch.no_grad():  # BN shifts that make every neuron fire on sparse 0/1 inputs (rates 0.05-0.5)
        for m in block.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.bias.add_(0.5)
    return block


def build_snntorch(dim: int = 16, heads: int = 2, hidden: int = 32, seed: int = 0, scale: float = 0.25) -> nn.Module:
    """The block with snnTorch neurons, one step per call (input (B, N, C)), state kept inside."""
    import snntorch as snn

    neurons: dict[str, Callable[[], nn.Module]] = {
        "q": lambda: snn.Leaky(beta=0.5, init_hidden=True),  # reset by subtraction, delayed
        "k": lambda: snn.Leaky(beta=0.7, init_hidden=True, reset_mechanism="zero"),
        "v": lambda: snn.Leaky(beta=torch.linspace(0.3, 0.9, dim), init_hidden=True),  # one β per channel
        "attn": lambda: snn.Leaky(beta=0.5, threshold=0.5, init_hidden=True),
        "mlp": lambda: snn.Synaptic(alpha=0.6, beta=0.8, init_hidden=True),
    }
    return randomize(SpikformerBlock(dim, heads, hidden, neurons, nn.BatchNorm1d, scale), seed)
