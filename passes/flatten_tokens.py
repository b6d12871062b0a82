r"""``flatten-tokens``: the token part of a graph (per-sample (N, D) tensors) as flat (N·D,) vectors.

Many chips' synapses map a flat vector of presynaptic neurons to a flat vector of postsynaptic ones, and
no core process multiplies two spike tensors. This pass rewrites the token part of a spiking transformer
(``spikec.blocks``, or a ViT exported from PyTorch: a conv patch embedding, its Reshape/Transpose into
tokens, blocks, a head on the tokens flattened) into that form, exactly (float interpreter: the same spikes).
Every (N, D) value is laid out in the row-major order :math:`n \cdot D + d` of token n, channel d:

* a token-wise ``Dense`` (W of shape (O, D), bias b, reading an (N, D) value) becomes one ``Dense`` on the
  flat vector with the block-diagonal weight :math:`I_N \otimes W` and bias b tiled N times (its density is
  1/N: a target may store it sparsely);
* elementwise kinds (every kind with the ``Neuron`` trait, ``Scale``, ``Bias``, ``Add``) that read a flat
  value keep their equations, per-channel fields tiled over the tokens (others stay as they are: a
  (C, H, W) patch embedding is not tokens);
* a sum or mean over tokens (mean pooling) or channels becomes a ``Dense`` of ones (or 1/count);
* attention and spike masks become coincidence neurons (``passes/flatten_tokens_attention.py``);
* where a token value enters from the rest of the graph (an (N, D) ``Input``, the ``Transpose`` of a patch
  embedding) a ``Flatten`` named ``<value>_flat`` starts the flat part; a ``Flatten``/``Reshape`` to 1-d of a
  flat value (a head on all tokens) is that value; any other node reading a flat value reads it through a
  ``Reshape`` back to its (N, D) shape (``<value>_tokens``), so the graph stays exact whatever follows.

Option ``attention``: ``exact`` (default) refuses ``CompensatedSpikingSelfAttention`` (products of spike
counts), ``per-step`` lowers it as Spikformer's per-step product (``PassResult`` lists those nodes).

Graphs without token values (images, flat vectors) pass unchanged. Block-diagonal weights are stored
whole, so this is for blocks of modest N·D (``MAX_FLAT_WEIGHTS`` says how large).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from spikec.errors import SpikecError
from spikec.ir import ann, structure, tensor
from spikec.ir.attention import HadamardColumnSum, SpikingSelfAttention
from spikec.ir.attention_rate import CompensatedSpikingSelfAttention
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import NODE_KINDS, Node
from spikec.ir.traits import EmitsSpikes, Neuron
from spikec.passes.flatten_tokens_attention import attention as _attention
from spikec.passes.flatten_tokens_attention import coincidence_indices, column_sum, compensated_attention, spike_mask
from spikec.pipeline import PassResult

__all__ = ["MAX_FLAT_WEIGHTS", "FlattenResult", "FlattenTokensError", "coincidence_indices", "flatten_tokens"]

MAX_FLAT_WEIGHTS = 1 << 26  # 64M entries (512 MiB as float64) per block-diagonal Dense
ATTENTION_MODES = ("exact", "per-step")


class FlattenTokensError(SpikecError):
    """A token graph this pass cannot flatten (the node and the reason are named)."""


@dataclasses.dataclass
class _Flat:
    """The flattened graph being built: nodes, edges (in operand order), which old nodes are now flat."""

    graph: Graph
    attention: str = "exact"
    nodes: dict[str, Node] = dataclasses.field(default_factory=dict)
    edges: list[Edge] = dataclasses.field(default_factory=list)
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)  # old node -> the new node that stands for it
    flat: set[str] = dataclasses.field(default_factory=set)  # old (N, D) nodes whose stand-in holds the flat value
    per_step: list[str] = dataclasses.field(default_factory=list)  # compensated attentions lowered per step

    def add(self, name: str, node: Node, *srcs: str) -> str:
        self.nodes[name] = node
        self.edges += [Edge(src, name) for src in srcs]
        return name

    def flat_of(self, src: str) -> str:
        """The new node holding ``src``'s value flattened (a ``Flatten`` where a token value enters)."""
        stand_in = self.renamed.get(src, src)
        if src in self.flat or len(self.graph.types[src]) <= 1:
            return stand_in
        name = f"{src}_flat"
        if name not in self.nodes:
            self.add(name, ann.Flatten(origin=self.graph.nodes[src].origin), stand_in)
        return name

    def as_before(self, src: str) -> str:
        """The new node holding ``src``'s value in its old shape (a ``Reshape`` back where a flat value leaves)."""
        stand_in = self.renamed.get(src, src)
        shape = self.graph.types[src]
        if src not in self.flat or len(shape) <= 1:
            return stand_in
        name = f"{src}_tokens"
        if name not in self.nodes:
            self.add(name, ann.Reshape(shape=tuple(shape), origin=self.graph.nodes[src].origin), stand_in)
        return name

    def reads_flat(self, name: str) -> bool:
        return any(e.src in self.flat for e in self.graph.in_edges(name))

    def tokens(self, name: str) -> tuple[int, int]:
        shape = self.graph.types[name]
        if len(shape) != 2:
            raise self.fail(name, f"has per-sample shape {shape}; flatten-tokens takes (tokens, channels) tensors")
        return int(shape[0]), int(shape[1])

    def fail(self, name: str, why: str) -> FlattenTokensError:
        return FlattenTokensError(f"flatten-tokens: {self.graph.describe(name)} {why}")


def _keep(flat: _Flat, name: str, node: Node) -> None:
    """A node with no flat form: it reads every input in the shape it had."""
    flat.add(name, node, *(flat.as_before(e.src) for e in flat.graph.in_edges(name)))


def _input(flat: _Flat, name: str, node: Node) -> None:
    """An (N, D) input is flat from the start: ``<input>_flat`` stands for it."""
    flat.add(name, node)
    if len(flat.graph.types[name]) == 2:
        flat.renamed[name] = flat.flat_of(name)
        flat.flat.add(name)


def _dense(flat: _Flat, name: str, node: Node) -> None:
    dense: ann.Dense = node  # type: ignore[assignment]
    (src,) = [e.src for e in flat.graph.in_edges(name)]
    if len(flat.graph.types[src]) != 2:
        return _keep(flat, name, node)
    tokens, _ = flat.tokens(src)
    weight = np.asarray(dense.weight)
    if tokens * tokens * weight.size > MAX_FLAT_WEIGHTS:
        raise flat.fail(
            name,
            f"would need a {tokens * weight.shape[0]}x{tokens * weight.shape[1]} block-diagonal weight "
            f"(more than {MAX_FLAT_WEIGHTS} entries); flatten-tokens is for small blocks: use fewer tokens",
        )
    bias = None if dense.bias is None else np.tile(np.asarray(dense.bias), tokens)
    flat.add(name, dense.replace(weight=np.kron(np.eye(tokens), weight), bias=bias), flat.flat_of(src))
    flat.flat.add(name)


def _elementwise(flat: _Flat, name: str, node: Node) -> None:
    """Same equations on the flat vector (every per-channel or per-element array field tiled over the tokens)
    when an input is flat; else the node as it is."""
    if not flat.reads_flat(name):
        return _keep(flat, name, node)
    shape = flat.tokens(name)
    changes = {}
    for field in node.array_fields():
        value = getattr(node, field)
        if value is not None and np.ndim(value) > 0 and np.size(value) > 1:
            changes[field] = np.broadcast_to(np.asarray(value), shape).reshape(-1).copy()
    flat.add(name, node.replace(**changes) if changes else node, *(flat.flat_of(e.src) for e in
                                                                     flat.graph.in_edges(name)))  # fmt: skip
    flat.flat.add(name)


def _to_vector(flat: _Flat, name: str, node: Node) -> None:
    """Flatten/Reshape to 1-d of a flat value: that value (row-major either way)."""
    (src,) = [e.src for e in flat.graph.in_edges(name)]
    if src in flat.flat and len(flat.graph.types[name]) == 1:
        flat.renamed[name] = flat.renamed.get(src, src)
    else:
        _keep(flat, name, node)


def _reduce(flat: _Flat, name: str, node: Node) -> None:
    """A sum or mean over tokens and/or channels of a flat value (mean pooling of tokens): a ``Dense`` of
    ones (or 1/count) from each input entry to the entry it reduces into."""
    reduce: tensor.Reduce = node  # type: ignore[assignment]
    (src,) = [e.src for e in flat.graph.in_edges(name)]
    if src not in flat.flat or reduce.op not in ("sum", "mean"):
        return _keep(flat, name, node)
    shape = flat.graph.types[src]
    axes = {a % len(shape) for a in reduce.axes}
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    into = np.broadcast_to(np.arange(int(np.prod(kept))).reshape(kept), shape).reshape(-1)
    weight = np.zeros((int(np.prod(kept)), into.size))
    weight[into, np.arange(into.size)] = 1.0 / (into.size // weight.shape[0]) if reduce.op == "mean" else 1.0
    flat.add(name, ann.Dense(weight=weight, origin=node.origin), flat.flat_of(src))
    flat.flat.add(name)


def _output(flat: _Flat, name: str, node: Node) -> None:
    flat.add(name, node, *(flat.renamed.get(e.src, e.src) for e in flat.graph.in_edges(name)))


Flattener = Callable[[_Flat, str, Node], None]
FLATTENERS: dict[type[Node], Flattener] = {
    structure.Input: _input,
    structure.Output: _output,
    ann.Dense: _dense,
    SpikingSelfAttention: _attention,
    CompensatedSpikingSelfAttention: compensated_attention,
    HadamardColumnSum: column_sum,
    tensor.Binary: spike_mask,
    ann.Scale: _elementwise,
    tensor.Bias: _elementwise,
    ann.Add: _elementwise,
    tensor.Reduce: _reduce,
    ann.Flatten: _to_vector,
    ann.Reshape: _to_vector,
}
"""Kind -> how it is laid out on flat vectors; every kind with the ``Neuron`` trait is elementwise too; any
other kind is kept, reading its inputs in their old shapes."""

TOKEN_KINDS: tuple[type[Node], ...] = (SpikingSelfAttention, HadamardColumnSum)  # always on (N, D) values


def flatteners() -> dict[type[Node], Flattener]:
    """``FLATTENERS`` and, for every registered neuron kind (one neuron per element), ``_elementwise``."""
    neurons = {cls: _elementwise for cls in NODE_KINDS.values() if cls.has_trait(Neuron)}
    return {**FLATTENERS, **neurons}


def spiking_kinds() -> list[str]:
    """The kinds this pass flattens whose outputs are 0/1 spikes (the coincidences' operands)."""
    return [cls.kind for cls in flatteners() if cls.has_trait(EmitsSpikes)]


def _has_tokens(graph: Graph) -> bool:
    """A 2-d graph input, an attention, or a Dense reading a 2-d value."""
    if any(len(graph.types[name]) == 2 for name in graph.inputs):
        return True
    for name, node in graph.nodes.items():
        if isinstance(node, TOKEN_KINDS):
            return True
        if isinstance(node, ann.Dense) and any(len(graph.types[e.src]) == 2 for e in graph.in_edges(name)):
            return True
    return False


@dataclasses.dataclass(frozen=True)
class FlattenResult(PassResult):
    per_step: tuple[str, ...] = ()  # CompensatedSpikingSelfAttention nodes lowered as per-step products


def flatten_tokens(graph: Graph, *, attention: str = "exact") -> FlattenResult:
    """Flatten the (tokens, channels) part of a graph into flat vectors (module docstring)."""
    if attention not in ATTENTION_MODES:
        raise FlattenTokensError(f"flatten-tokens: attention={attention!r} is not one of {list(ATTENTION_MODES)}")
    if not _has_tokens(graph):
        return FlattenResult(graph, False)
    flat = _Flat(graph, attention)
    by_kind = {cls.kind: fn for cls, fn in flatteners().items()}
    for name in graph.order:
        if any(e.recurrent for e in graph.in_edges(name)):
            raise flat.fail(name, "has a recurrent input; flatten-tokens lowers feed-forward blocks")
        node = graph.nodes[name]
        by_kind.get(node.kind, _keep)(flat, name, node)
    return FlattenResult(Graph(flat.nodes, flat.edges, dt=graph.dt), True, tuple(flat.per_step))
