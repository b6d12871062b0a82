r"""Spiking-transformer attention kinds: products of spike tensors with no softmax.

All three take ordered inputs of per-sample shape ``(N, D)`` (N tokens, D channels), usually the
spikes of the Q/K/V LIF neurons of a spiking transformer block; the neurons, projections and
residuals around them are ordinary kinds (``spikec.blocks`` builds whole blocks).

- ``SpikingSelfAttention`` (Spikformer SSA, Zhou et al. ICLR 2023): per head
  :math:`Y_h = Q_h K_h^\top V_h \cdot s`, O(N²D), no softmax (Q, K, V are non-negative spikes).
- ``HadamardColumnSum`` (the accumulate of Spike-driven Transformer SDSA, Yao et al. NeurIPS 2023):
  :math:`y = \mathrm{SUM}_c(A \otimes B)`, the per-channel count over tokens, O(ND). The SN of
  SDSA is a stateful LIF, so it stays a separate ``LIF`` node and the mask a ``Binary(mul)``;
  docs/semantics.md says why.
- ``StochasticSpikingAttention`` (Xpikeformer's SSA engine, Song et al. 2024): Bernoulli streams
  whose products are ANDs and whose sums are re-encoded as Bernoulli spikes; binary output whose
  expectation is :math:`Q_h K_h^\top V_h / (N d_h)`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

from spikec.errors import ShapeError
from spikec.ir.node import Inputs, Level, Node, Shape
from spikec.ir.traits import EmitsSpikes, Product, Synaptic


def _tokens_by_channels(inputs: Sequence[Shape], names: str) -> tuple[Shape, ...]:
    """Check there are ``len(names)`` inputs, each ``(N, D)``; return them."""
    if len(inputs) != len(names):
        raise ShapeError(f"takes exactly {len(names)} inputs ({', '.join(names)}) in edge order, got {len(inputs)}")
    shapes = tuple(tuple(s) for s in inputs)
    for name, shape in zip(names, shapes, strict=True):
        if len(shape) != 2:
            raise ShapeError(f"input {name} must have per-sample shape (tokens, channels), got {shape}")
    return shapes


def _check_heads(heads: int, channels: int) -> None:
    if channels % heads:
        raise ShapeError(f"heads={heads} does not divide the {channels} channels; choose a divisor of {channels}")


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SpikingSelfAttention(Node):
    r"""Spikformer's spiking self-attention (SSA) on the spike tensors Q, K, V (edges in that order).

    With Q, K, V of per-sample shape (N, D) split into ``heads`` blocks of :math:`d_h = D / h`
    channels, :math:`Q_h = Q[:, h d_h:(h+1) d_h]` (likewise K, V):

    .. math:: Y = \mathrm{Concat}_h\big(Q_h K_h^\top V_h\big) \cdot s

    No softmax: Q, K, V are 0/1 spikes, so the scores :math:`Q_h K_h^\top` are non-negative
    counts and every product is an accumulate of spikes. ``scale`` s is Spikformer's 0.125 by
    default. The output is real (a scaled count); Spikformer feeds it to an LIF ("attn_lif",
    threshold 0.5), which stays its own node.
    """

    kind = "SpikingSelfAttention"
    traits = frozenset({Synaptic(), Product()})
    level = Level.SNN
    inputs = Inputs.ORDERED
    heads: int = 1
    scale: float = 0.125

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.heads < 1:
            yield f"heads={self.heads} must be >= 1"
        if not math.isfinite(self.scale):
            yield f"scale={self.scale} must be finite"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        q, k, v = _tokens_by_channels(inputs, "QKV")
        if not (q[1] == k[1] == v[1]):
            raise ShapeError(f"Q, K, V must have the same channels, got {q}, {k}, {v}")
        if k[0] != v[0]:
            raise ShapeError(f"K and V must have the same tokens, got {k} and {v}")
        _check_heads(self.heads, q[1])
        return q


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class HadamardColumnSum(Node):
    r"""The accumulate of spike-driven self-attention (SDSA, Spike-driven Transformer v1).

    For A, B of per-sample shape (N, D) (edges in order):

    .. math:: y_{0,d} = \mathrm{SUM}_c(A \otimes B)_d = \sum_{n=1}^{N} A_{n,d}\, B_{n,d}

    output shape (1, D). On spikes, :math:`A \otimes B` is an AND (a mask) and the column sum an
    accumulate of spikes: linear in N and D, no multiplication. The full SDSA is
    :math:`Q \otimes \mathrm{SN}(\mathrm{SUM}_c(K \otimes V))` (the order of the official code;
    the paper's :math:`\mathrm{SN}(\mathrm{SUM}_c(Q \otimes K)) \otimes V` is the same form with
    operands renamed): this node, then an ``LIF`` (v_th 0.5, the SN, stateful), then a
    ``Binary(op="mul")`` that masks the third operand with the (1, D) spikes (broadcast over N).
    ``spikec.blocks.spike_driven_self_attention`` builds the three.
    """

    kind = "HadamardColumnSum"
    traits = frozenset({Synaptic(), Product()})
    level = Level.SNN
    inputs = Inputs.ORDERED

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        a, b = _tokens_by_channels(inputs, "AB")
        if a != b:
            raise ShapeError(f"A and B must have the same shape, got {a} and {b}")
        return (1, a[1])


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class StochasticSpikingAttention(Node):
    r"""Xpikeformer's stochastic spiking attention: Bernoulli streams, AND products, binary output.

    Q, K, V (edges in order, per-sample (N, D)) hold rates in [0, 1] (or 0/1 spikes, which pass
    unchanged; a value above 1 acts as 1, below 0 as 0). At step t, with fresh uniforms
    u ~ U[0, 1) for every draw, per head h of :math:`d_h = D / heads` channels:

    .. math::
        \hat q = [u < Q],\quad \hat k = [u < K],\quad \hat v = [u < V]

        s_{ij} = \Big[u < \tfrac{1}{d_h} \textstyle\sum_{c} \hat q_{ic} \wedge \hat k_{jc}\Big]
        \qquad y_{ic} = \Big[u < \tfrac{1}{N} \textstyle\sum_j s_{ij} \wedge \hat v_{jc}\Big]

    Products are ANDs of bits, sums are counters re-encoded as Bernoulli bits (stochastic
    computing's scaled addition), so the output is 0/1 spikes with, the draws being independent,

    .. math:: \mathbb{E}[y] = \mathrm{Concat}_h\big(Q_h K_h^\top V_h\big) / (N\, d_h)

    The uniforms come from numpy's generator seeded by ``(seed, step)``; both interpreter
    backends use the same bits, so their spikes agree exactly. Give each such node its own seed.
    """

    kind = "StochasticSpikingAttention"
    traits = frozenset({Synaptic(), EmitsSpikes()})
    level = Level.SNN
    inputs = Inputs.ORDERED
    stateful = True  # the step counter that seeds each step's draws
    heads: int = 1
    seed: int = 0

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.heads < 1:
            yield f"heads={self.heads} must be >= 1"
        if self.seed < 0:
            yield f"seed={self.seed} must be >= 0"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        q, k, v = _tokens_by_channels(inputs, "QKV")
        if not (q == k == v):
            raise ShapeError(f"Q, K, V must have the same shape, got {q}, {k}, {v}")
        _check_heads(self.heads, q[1])
        return q
