r"""Builders of spiking-transformer blocks as SIR graphs, from given weights.

Each block is a ``Graph`` with one ``Input`` "x" of per-sample shape (N, D) (tokens, channels) and
one ``Output`` "out" of the same shape, made of ordinary kinds (``Dense``, ``Scale``/``Bias`` for
inference BatchNorm over channels, ``LIF``, ``Add``) and the attention kinds of
``spikec.ir.attention``; ``stack`` chains blocks as ``Subgraph`` nodes. LIFs follow SpikingJelly's
``LIFNode`` (τ = 2 steps, hard reset to 0, v_th 1; 0.5 for the attention neurons):
:math:`v \leftarrow v + (I - v)/2`.

- ``spikformer_block`` (Spikformer, Zhou et al. ICLR 2023), spike addition in the residual:

  .. math:: Q, K, V = \mathrm{SN}(\mathrm{BN}(X W_{q,k,v})),\quad
            X' = X + \mathrm{SN}(\mathrm{BN}(\mathrm{SN}_{0.5}(\mathrm{SSA}(Q, K, V)) W_p)),\quad
            Y = X' + \mathrm{SN}(\mathrm{BN}(\mathrm{SN}(\mathrm{BN}(X' W_1)) W_2))

  The sum of spike trains in the residual is not binary, so the next Dense reads counts.
- ``spike_driven_block`` (Spikingformer, Zhou et al. 2023; Spike-driven Transformer, Yao et al.
  NeurIPS 2023): the neuron comes *before* each Linear/BN and the residual adds membrane
  potentials (real values that only ever reach a neuron), so every synaptic op reads 0/1 spikes:

  .. math:: S = \mathrm{SN}(X),\ Q, K, V = \mathrm{SN}(\mathrm{BN}(S W_{q,k,v})),\quad
            X' = X + \mathrm{BN}(A(Q, K, V) W_p),\quad
            Y = X' + \mathrm{BN}(\mathrm{SN}(\mathrm{BN}(\mathrm{SN}(X') W_1)) W_2)

  with :math:`A` either Spikformer's SSA followed by SN\ :sub:`0.5` (Spikingformer) or SDSA,
  :math:`Q \otimes \mathrm{SN}_{0.5}(\mathrm{SUM}_c(K \otimes V))` (Spike-driven Transformer).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from spikec.ir.ann import Add, Dense, Scale
from spikec.ir.attention import HadamardColumnSum, SpikingSelfAttention
from spikec.ir.graph import DEFAULT_DT, Graph
from spikec.ir.node import Array, Node
from spikec.ir.snn import LIF, Reset
from spikec.ir.structure import Input, Output, Subgraph
from spikec.ir.tensor import Bias, Binary

ATTENTION_THRESHOLD = 0.5  # Spikformer's attn_lif and SDT's talking_heads_lif


@dataclasses.dataclass(frozen=True)
class LinearBN:
    """A ``Linear`` (weight (out, in), optional bias) followed by an inference ``BatchNorm1d`` over channels."""

    weight: Array
    bn_weight: Array
    bn_bias: Array
    bn_mean: Array
    bn_var: Array
    bias: Array | None = None
    eps: float = 1e-5

    @classmethod
    def random(cls, rng: np.random.Generator, d_in: int, d_out: int, *, bias: bool = True) -> LinearBN:
        """Random weights whose BN output is roughly N(1.2, 1): the LIF after it fires often but not always."""
        return cls(
            weight=rng.normal(0.0, 1.0 / np.sqrt(d_in), size=(d_out, d_in)),
            bias=rng.normal(0.0, 0.1, size=d_out) if bias else None,
            bn_weight=rng.uniform(1.0, 2.0, size=d_out),
            bn_bias=rng.uniform(0.8, 1.6, size=d_out),
            bn_mean=rng.normal(0.0, 0.1, size=d_out),
            bn_var=rng.uniform(0.2, 0.5, size=d_out),
        )

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        r"""The BN as per-channel ``(s, shift)``: :math:`s = \gamma/\sqrt{\sigma^2+\epsilon}`, :math:`\beta - \mu s`."""
        scale = np.asarray(self.bn_weight, np.float64) / np.sqrt(np.asarray(self.bn_var, np.float64) + self.eps)
        return scale, np.asarray(self.bn_bias, np.float64) - np.asarray(self.bn_mean, np.float64) * scale


@dataclasses.dataclass(frozen=True)
class BlockWeights:
    """The six Linear+BN pairs of one encoder block: q, k, v, proj (D→D), fc1 (D→H), fc2 (H→D)."""

    q: LinearBN
    k: LinearBN
    v: LinearBN
    proj: LinearBN
    fc1: LinearBN
    fc2: LinearBN

    @classmethod
    def random(cls, rng: np.random.Generator, dim: int, hidden: int) -> BlockWeights:
        """Spikformer's layout: q/k/v without bias, proj/fc1/fc2 with."""
        return cls(
            q=LinearBN.random(rng, dim, dim, bias=False),
            k=LinearBN.random(rng, dim, dim, bias=False),
            v=LinearBN.random(rng, dim, dim, bias=False),
            proj=LinearBN.random(rng, dim, dim),
            fc1=LinearBN.random(rng, dim, hidden),
            fc2=LinearBN.random(rng, hidden, dim),
        )


def lif(dt: float, v_threshold: float = 1.0, origin: str = "") -> LIF:
    """SpikingJelly's default ``LIFNode``: τ = 2 steps, hard reset to 0."""
    return LIF(
        tau=np.asarray(2.0 * dt),
        v_threshold=np.asarray(v_threshold),
        reset=Reset.VALUE.value,
        origin=origin,
    )


class _Builder:
    """Nodes and edges of one block, added in order (edge order is operand order)."""

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: Node, *srcs: str) -> str:
        self.nodes[name] = node
        self.edges += [(src, name) for src in srcs]
        return name

    def linear_bn(self, name: str, weights: LinearBN, src: str) -> str:
        """Dense, then the BN as Scale and Bias on the channel (last) axis: ``name`` is the Bias."""
        self.add(f"{name}_linear", Dense(weight=weights.weight, bias=weights.bias, origin=f"{name}.Linear"), src)
        scale, shift = weights.affine()
        self.add(f"{name}_bn_scale", Scale(scale=scale, origin=f"{name}.BatchNorm1d"), f"{name}_linear")
        return self.add(f"{name}_bn", Bias(bias=shift, origin=f"{name}.BatchNorm1d"), f"{name}_bn_scale")

    def neuron(self, name: str, src: str, v_threshold: float = 1.0) -> str:
        return self.add(name, lif(self.dt, v_threshold, origin=f"{name}.LIFNode"), src)

    def graph(self) -> Graph:
        return Graph(self.nodes, self.edges, dt=self.dt)


def _check(weights: BlockWeights, tokens: int, heads: int) -> int:
    dim = int(np.shape(weights.q.weight)[1])
    if tokens < 1 or heads < 1 or dim % heads:
        raise ValueError(f"need tokens >= 1 and heads dividing dim={dim}, got tokens={tokens}, heads={heads}")
    return dim


def spikformer_block(
    weights: BlockWeights, *, tokens: int, heads: int, scale: float = 0.125, dt: float = DEFAULT_DT
) -> Graph:
    """Spikformer encoder block (SSA + MLP, spike-addition residuals) on an (N, D) input "x"."""
    dim = _check(weights, tokens, heads)
    b = _Builder(dt)
    b.add("x", Input(shape=(tokens, dim)))
    qkv = [b.neuron(f"{p}_lif", b.linear_bn(p, getattr(weights, p), "x")) for p in "qkv"]
    b.add("ssa", SpikingSelfAttention(heads=heads, scale=scale, origin="SSA"), *qkv)
    b.neuron("attn_lif", "ssa", ATTENTION_THRESHOLD)
    b.neuron("proj_lif", b.linear_bn("proj", weights.proj, "attn_lif"))
    b.add("res1", Add(origin="x + attn(x)"), "x", "proj_lif")
    b.neuron("fc1_lif", b.linear_bn("fc1", weights.fc1, "res1"))
    b.neuron("fc2_lif", b.linear_bn("fc2", weights.fc2, "fc1_lif"))
    b.add("res2", Add(origin="x + mlp(x)"), "res1", "fc2_lif")
    b.add("out", Output(), "res2")
    return b.graph()


def _ssa_then_lif(b: _Builder, q: str, k: str, v: str, heads: int, scale: float) -> str:
    b.add("ssa", SpikingSelfAttention(heads=heads, scale=scale, origin="SSA"), q, k, v)
    return b.neuron("attn_lif", "ssa", ATTENTION_THRESHOLD)


def _sdsa(b: _Builder, q: str, k: str, v: str, heads: int, scale: float) -> str:
    """Q ⊗ SN(SUM_c(K ⊗ V)): column sum, talking-heads LIF, AND mask (heads and scale play no part)."""
    b.add("kv_sum", HadamardColumnSum(origin="SDSA: SUM_c(K*V)"), k, v)
    b.neuron("kv_lif", "kv_sum", ATTENTION_THRESHOLD)
    return b.add("sdsa", Binary(op="mul", origin="SDSA: Q * SN(.)"), q, "kv_lif")


ATTENTIONS: dict[str, Callable[[_Builder, str, str, str, int, float], str]] = {
    "ssa": _ssa_then_lif,
    "sdsa": _sdsa,
}


def spike_driven_block(
    weights: BlockWeights,
    *,
    tokens: int,
    heads: int,
    attention: str = "ssa",
    scale: float = 0.125,
    dt: float = DEFAULT_DT,
) -> Graph:
    """Neuron-first block with membrane shortcuts: Spikingformer (``attention="ssa"``) or SDT (``"sdsa"``)."""
    if attention not in ATTENTIONS:
        raise ValueError(f"attention={attention!r} is not one of {sorted(ATTENTIONS)}")
    dim = _check(weights, tokens, heads)
    b = _Builder(dt)
    b.add("x", Input(shape=(tokens, dim)))
    b.neuron("shortcut_lif", "x")
    q, k, v = (b.neuron(f"{p}_lif", b.linear_bn(p, getattr(weights, p), "shortcut_lif")) for p in "qkv")
    attended = ATTENTIONS[attention](b, q, k, v, heads, scale)
    b.add("res1", Add(origin="membrane shortcut x + attn(x)"), "x", b.linear_bn("proj", weights.proj, attended))
    b.neuron("fc1_lif", "res1")
    b.neuron("fc2_lif", b.linear_bn("fc1", weights.fc1, "fc1_lif"))
    b.add("res2", Add(origin="membrane shortcut x + mlp(x)"), "res1", b.linear_bn("fc2", weights.fc2, "fc2_lif"))
    b.add("out", Output(), "res2")
    return b.graph()


def stack(blocks: Sequence[Graph], *, dt: float | None = None) -> Graph:
    """Chain blocks (each one Input, one Output) as ``Subgraph`` nodes "block0", "block1", ... ."""
    if not blocks:
        raise ValueError("stack needs at least one block")
    (first_input,) = blocks[0].inputs
    nodes: dict[str, Node] = {"x": Input(shape=tuple(blocks[0].types[first_input]))}
    names = ["x"]
    for i, block in enumerate(blocks):
        nodes[f"block{i}"] = Subgraph(graph=block)
        names.append(f"block{i}")
    nodes["out"] = Output()
    names.append("out")
    return Graph(nodes, list(itertools.pairwise(names)), dt=blocks[0].dt if dt is None else dt)
