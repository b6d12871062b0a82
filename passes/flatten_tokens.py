r"""``flatten-tokens``: a token graph (per-sample (N, D) tensors) as flat (N·D,) vectors, attention as coincidences.

Many chips' synapses map a flat vector of presynaptic neurons to a flat vector of postsynaptic ones, and
no core process multiplies two spike tensors. This pass rewrites a spiking
transformer block (``spikec.blocks``) into that form, exactly (float interpreter: the same spikes):

* each ``Input`` of shape (N, D) is followed by a ``Flatten``; everything after it is flat, in the row-major
  order :math:`n \cdot D + d` of token n, channel d;
* a token-wise ``Dense`` (W of shape (O, D), bias b) becomes one ``Dense`` on the flat vector with the
  block-diagonal weight :math:`I_N \otimes W` and bias b tiled N times (its density is 1/N: a target
  may store it sparsely);
* elementwise kinds (every kind with the ``Neuron`` trait, ``Scale``, ``Bias``, ``Add``) keep their
  equations, per-channel fields tiled over the tokens;
* ``SpikingSelfAttention`` (:math:`Y_h = Q_h K_h^\top V_h\, s`) becomes a layer of *coincidence neurons*:
  for query token i, head h and :math:`j \in [N]`, :math:`e, d \in [d_h]` one neuron reads :math:`q_{i,he}`,
  :math:`k_{j,he}`, :math:`v_{j,hd}` (weight 1 each, through a ``Concat`` of Q, K, V and one ``Dense``)
  and fires when all three spike in the same step (memoryless LIF, τ = dt, threshold 2.5). For 0/1
  spikes that is the product :math:`q\,k\,v`, so a ``Dense`` of weight s summing the
  :math:`N d_h` coincidences of each output,

  .. math:: y_{i,hd} = s \sum_{j,e} [q_{i,he} + k_{j,he} + v_{j,hd} > 2.5] = s\,(Q_h K_h^\top V_h)_{id},

  is the attention. It costs :math:`h N^2 d_h^2` neurons, each with three synapses;
* the Spike-driven Transformer's SDSA, :math:`Q \otimes \mathrm{SN}(\mathrm{SUM}_c(K \otimes V))`, the same way:
  ``HadamardColumnSum`` is N·D coincidence neurons of :math:`k_{n,d}, v_{n,d}` (threshold 1.5) summed over n
  by a ``Dense`` of ones, and the mask ``Binary(mul)`` of two spike tensors (broadcast over tokens) N·D
  coincidence neurons whose spikes are the product. Both operands must be spike layers (neurons).

Graphs whose inputs are not 2-D (images, flat vectors) pass unchanged. A kind with no flat form is an error
naming the node. Block-diagonal weights are stored whole, so this is for blocks of modest N·D (the limit
``MAX_FLAT_WEIGHTS`` says how large).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from spikec.errors import SpikecError
from spikec.ir import ann, snn, structure, tensor
from spikec.ir.attention import HadamardColumnSum, SpikingSelfAttention
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import NODE_KINDS, Node
from spikec.ir.traits import EmitsSpikes, Neuron
from spikec.passes._graphedit import walk_by_kind
from spikec.pipeline import PassResult

MAX_FLAT_WEIGHTS = 1 << 26  # 64M entries (512 MiB as float64) per block-diagonal Dense


class FlattenTokensError(SpikecError):
    """A token graph this pass cannot flatten (the node and the reason are named)."""


@dataclasses.dataclass
class _Flat:
    """The flattened graph being built: nodes, edges (in operand order) and each old node's token shape."""

    graph: Graph
    nodes: dict[str, Node] = dataclasses.field(default_factory=dict)
    edges: list[Edge] = dataclasses.field(default_factory=list)
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)  # old node -> the new node that stands for it

    def add(self, name: str, node: Node, *srcs: str) -> str:
        self.nodes[name] = node
        self.edges += [Edge(src, name) for src in srcs]
        return name

    def inputs(self, name: str) -> list[str]:
        return [self.renamed.get(e.src, e.src) for e in self.graph.in_edges(name)]

    def tokens(self, name: str) -> tuple[int, int]:
        shape = self.graph.types[name]
        if len(shape) != 2:
            raise self.fail(name, f"has per-sample shape {shape}; flatten-tokens takes (tokens, channels) tensors")
        return int(shape[0]), int(shape[1])

    def fail(self, name: str, why: str) -> FlattenTokensError:
        return FlattenTokensError(f"flatten-tokens: {self.graph.describe(name)} {why}")


def _input(flat: _Flat, name: str, node: Node) -> None:
    flat.add(name, node)
    flat.renamed[name] = flat.add(f"{name}_flat", ann.Flatten(origin=node.origin), name)


def _dense(flat: _Flat, name: str, node: Node) -> None:
    dense: ann.Dense = node  # type: ignore[assignment]
    tokens, _ = flat.tokens(name)
    weight = np.asarray(dense.weight)
    if tokens * tokens * weight.size > MAX_FLAT_WEIGHTS:
        raise flat.fail(
            name,
            f"would need a {tokens * weight.shape[0]}x{tokens * weight.shape[1]} block-diagonal weight "
            f"(more than {MAX_FLAT_WEIGHTS} entries); flatten-tokens is for small blocks: use fewer tokens",
        )
    bias = None if dense.bias is None else np.tile(np.asarray(dense.bias), tokens)
    flat.add(name, dense.replace(weight=np.kron(np.eye(tokens), weight), bias=bias), *flat.inputs(name))


def _elementwise(flat: _Flat, name: str, node: Node) -> None:
    """Same equations; every per-channel (or per-element) array field laid out over the flat vector."""
    shape = flat.tokens(name)
    changes = {}
    for field in node.array_fields():
        value = getattr(node, field)
        if value is not None and np.ndim(value) > 0 and np.size(value) > 1:
            changes[field] = np.broadcast_to(np.asarray(value), shape).reshape(-1).copy()
    flat.add(name, node.replace(**changes) if changes else node, *flat.inputs(name))


def _output(flat: _Flat, name: str, node: Node) -> None:
    flat.add(name, node, *flat.inputs(name))


def coincidence_indices(tokens: int, dim: int, heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices (q, k, v, output) of every coincidence neuron, ordered (i, h, j, e, d): query token first,
    so the outputs of a range of tokens sum a contiguous range of coincidences (what a core holding them reads)."""
    dh = dim // heads
    i, h, j, e, d = np.meshgrid(*(np.arange(n) for n in (tokens, heads, tokens, dh, dh)), indexing="ij")
    i, h, j, e, d = (a.reshape(-1) for a in (i, h, j, e, d))
    return i * dim + h * dh + e, j * dim + h * dh + e, j * dim + h * dh + d, i * dim + h * dh + d


def _coincide(flat: _Flat, name: str, operands: list[str], indices: list[np.ndarray], widths: list[int]) -> str:
    """Coincidence LIFs ``name_coincide`` (memoryless) firing when every operand's indexed spike is present."""
    for src in operands:
        if not flat.graph.nodes[src].has_trait(EmitsSpikes):
            why = f"({', '.join(spiking_kinds())}); only products of 0/1 spikes have a flat form"
            raise flat.fail(name, f"multiplies {flat.graph.describe(src)}, which is not a spike layer {why}")
    units = indices[0].size
    select = np.zeros((units, sum(widths)))
    rows, offset = np.arange(units), 0
    for index, width in zip(indices, widths, strict=True):
        select[rows, offset + index] = 1.0
        offset += width
    origin = flat.graph.nodes[name].origin or name
    renamed = [flat.renamed.get(src, src) for src in operands]
    flat.add(f"{name}_operands", ann.Concat(axis=0, origin=origin), *renamed)
    flat.add(f"{name}_select", ann.Dense(weight=select, origin=f"{origin}: operands of each coincidence"),
             f"{name}_operands")  # fmt: skip
    threshold = len(operands) - 0.5  # k inputs of weight 1: fires only when all k spike
    neuron = snn.LIF(tau=np.asarray(flat.graph.dt), v_threshold=np.asarray(threshold), origin=f"{origin}: product")
    return flat.add(f"{name}_coincide", neuron, f"{name}_select")


def _attention(flat: _Flat, name: str, node: Node) -> None:
    """SSA: a coincidence per (h, i, j, e, d) of q[i,he], k[j,he], v[j,hd]; a Dense of weight s sums them."""
    ssa: SpikingSelfAttention = node  # type: ignore[assignment]
    tokens, dim = flat.tokens(name)
    iq, ik, iv, out = coincidence_indices(tokens, dim, ssa.heads)
    operands = [e.src for e in flat.graph.in_edges(name)]
    coincide = _coincide(flat, name, operands, [iq, ik, iv], [tokens * dim] * 3)
    total = np.zeros((tokens * dim, iq.size))
    total[out, np.arange(iq.size)] = ssa.scale
    flat.add(name, ann.Dense(weight=total, origin=f"{ssa.origin or name}: s * sum of coincidences"), coincide)


def _column_sum(flat: _Flat, name: str, node: Node) -> None:
    """SUM_c(A ⊗ B): a coincidence per (n, d), a Dense of ones over n."""
    tokens, dim = flat.tokens(flat.graph.in_edges(name)[0].src)
    index = np.arange(tokens * dim)
    coincide = _coincide(flat, name, [e.src for e in flat.graph.in_edges(name)], [index, index], [index.size] * 2)
    total = np.zeros((dim, tokens * dim))
    total[index % dim, index] = 1.0
    flat.add(name, ann.Dense(weight=total, origin=f"{node.origin or name}: sum over tokens"), coincide)


def _spike_mask(flat: _Flat, name: str, node: Node) -> None:
    """Binary(mul) of two spike tensors (broadcast): one coincidence per output element, its spike the product."""
    if getattr(node, "op", "") != "mul":
        raise flat.fail(name, f"is Binary(op={getattr(node, 'op', '')!r}); only a product of spikes has a flat form")
    tokens, dim = flat.tokens(name)
    out = np.arange(tokens * dim).reshape(tokens, dim)
    sources = [e.src for e in flat.graph.in_edges(name)]
    indices, widths = [], []
    for src in sources:
        shape = flat.graph.types[src]
        grid = np.arange(int(np.prod(shape))).reshape(shape)
        indices.append(np.broadcast_to(grid, out.shape).reshape(-1))
        widths.append(grid.size)
    coincide = _coincide(flat, name, sources, indices, widths)
    flat.renamed[name] = coincide


Flattener = Callable[[_Flat, str, Node], None]
FLATTENERS: dict[type[Node], Flattener] = {
    structure.Input: _input,
    structure.Output: _output,
    ann.Dense: _dense,
    SpikingSelfAttention: _attention,
    HadamardColumnSum: _column_sum,
    tensor.Binary: _spike_mask,
    ann.Scale: _elementwise,
    tensor.Bias: _elementwise,
    ann.Add: _elementwise,
}
"""Kind -> how it is laid out on flat vectors; every kind with the ``Neuron`` trait is elementwise too."""


def flatteners() -> dict[type[Node], Flattener]:
    """``FLATTENERS`` and, for every registered neuron kind (one neuron per element), ``_elementwise``."""
    neurons = {cls: _elementwise for cls in NODE_KINDS.values() if cls.has_trait(Neuron)}
    return {**FLATTENERS, **neurons}


def spiking_kinds() -> list[str]:
    """The kinds this pass flattens whose outputs are 0/1 spikes (the coincidences' operands)."""
    return [cls.kind for cls in flatteners() if cls.has_trait(EmitsSpikes)]


def _is_token_graph(graph: Graph) -> bool:
    return any(len(graph.types[name]) == 2 for name in graph.inputs)


def flatten_tokens(graph: Graph) -> PassResult:
    """Flatten a (tokens, channels) graph into flat vectors; SSA becomes coincidence neurons (module docstring)."""
    if not _is_token_graph(graph):
        return PassResult(graph, False)
    flat = _Flat(graph)
    walk_by_kind(graph, flatteners(), flat, flat.fail, recurrent="flatten-tokens lowers feed-forward blocks",
                 unknown="has no flat form here (flat chips take Spikformer-layout blocks: SSA, spike residuals; "
                         "see the target's docs)")  # fmt: skip
    return PassResult(Graph(flat.nodes, flat.edges, dt=graph.dt), True)
