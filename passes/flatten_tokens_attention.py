r"""The products of ``flatten-tokens``: attention and spike masks as *coincidence neurons* on flat vectors.

No synapse multiplies two spike tensors, but for 0/1 spikes a product is a coincidence: a memoryless LIF
(τ = dt) reading k spikes with weight 1 each and threshold k − 0.5 fires exactly when all k spike in the
same step. ``passes/flatten_tokens.py`` calls these for

* ``SpikingSelfAttention`` (:math:`Y_h = Q_h K_h^\top V_h\, s`): one coincidence per (i, h, j, e, d) of
  :math:`q_{i,he}, k_{j,he}, v_{j,hd}`, and a ``Dense`` of weight s summing the :math:`N d_h` coincidences
  of each output, :math:`y_{i,hd} = s \sum_{j,e} [q_{i,he} + k_{j,he} + v_{j,hd} > 2.5]`
  (:math:`h N^2 d_h^2` neurons, three synapses each);
* SDSA's ``HadamardColumnSum`` (N·D coincidences of :math:`k_{n,d}, v_{n,d}`, a ``Dense`` of ones over n) and
  its mask ``Binary(mul)`` (one coincidence per output element).

Operands must be spike layers (0/1). ``CompensatedSpikingSelfAttention`` multiplies spike *counts* and
divides by :math:`t^2`: no synapse or neuron does that, so it is refused unless the pass option
``attention=per-step`` lowers it as Spikformer's per-step product (a different SNN: its mean output is no
longer exactly the attention of the rates; the caller reports the choice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spikec.ir import ann, snn
from spikec.ir.attention import SpikingSelfAttention
from spikec.ir.node import Node
from spikec.ir.traits import EmitsSpikes

if TYPE_CHECKING:
    from spikec.passes.flatten_tokens import _Flat

MAX_COINCIDENCE_SYNAPSES = 1 << 26  # entries of one coincidence layer's (dense) selection matrix


def coincidence_indices(tokens: int, dim: int, heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices (q, k, v, output) of every coincidence neuron, ordered (i, h, j, e, d): query token first,
    so the outputs of a range of tokens sum a contiguous range of coincidences (what a core holding them reads)."""
    dh = dim // heads
    i, h, j, e, d = np.meshgrid(*(np.arange(n) for n in (tokens, heads, tokens, dh, dh)), indexing="ij")
    i, h, j, e, d = (a.reshape(-1) for a in (i, h, j, e, d))
    return i * dim + h * dh + e, j * dim + h * dh + e, j * dim + h * dh + d, i * dim + h * dh + d


def coincide(flat: _Flat, name: str, operands: list[str], indices: list[np.ndarray], widths: list[int]) -> str:
    """Coincidence LIFs ``name_coincide`` (memoryless) firing when every operand's indexed spike is present."""
    from spikec.passes.flatten_tokens import spiking_kinds

    for src in operands:
        if not flat.graph.nodes[src].has_trait(EmitsSpikes):
            why = f"({', '.join(spiking_kinds())}); only products of 0/1 spikes have a flat form"
            raise flat.fail(name, f"multiplies {flat.graph.describe(src)}, which is not a spike layer {why}")
    units = indices[0].size
    if units * sum(widths) > MAX_COINCIDENCE_SYNAPSES:
        raise flat.fail(
            name,
            f"would need {units} coincidence neurons reading {sum(widths)} spikes (a {units}x{sum(widths)} selection "
            f"matrix, more than {MAX_COINCIDENCE_SYNAPSES} entries): a per-step product of spike tensors costs "
            "heads*tokens^2*(dim/heads)^2 neurons here; use fewer tokens or a narrower head",
        )
    select = np.zeros((units, sum(widths)))
    rows, offset = np.arange(units), 0
    for index, width in zip(indices, widths, strict=True):
        select[rows, offset + index] = 1.0
        offset += width
    origin = flat.graph.nodes[name].origin or name
    flat.add(f"{name}_operands", ann.Concat(axis=0, origin=origin), *(flat.flat_of(src) for src in operands))
    flat.add(f"{name}_select", ann.Dense(weight=select, origin=f"{origin}: operands of each coincidence"),
             f"{name}_operands")  # fmt: skip
    threshold = len(operands) - 0.5  # k inputs of weight 1: fires only when all k spike
    neuron = snn.LIF(tau=np.asarray(flat.graph.dt), v_threshold=np.asarray(threshold), origin=f"{origin}: product")
    return flat.add(f"{name}_coincide", neuron, f"{name}_select")


def attention(flat: _Flat, name: str, node: Node) -> None:
    """SSA: a coincidence per (h, i, j, e, d) of q[i,he], k[j,he], v[j,hd]; a Dense of weight s sums them."""
    ssa: SpikingSelfAttention = node  # type: ignore[assignment]
    tokens, dim = flat.tokens(name)
    iq, ik, iv, out = coincidence_indices(tokens, dim, ssa.heads)
    operands = [e.src for e in flat.graph.in_edges(name)]
    coincidences = coincide(flat, name, operands, [iq, ik, iv], [tokens * dim] * 3)
    total = np.zeros((tokens * dim, iq.size))
    total[out, np.arange(iq.size)] = ssa.scale
    flat.add(name, ann.Dense(weight=total, origin=f"{ssa.origin or name}: s * sum of coincidences"), coincidences)
    flat.flat.add(name)


def compensated_attention(flat: _Flat, name: str, node: Node) -> None:
    """Products of spike counts have no flat form; with ``attention=per-step``: Spikformer's per-step product."""
    if flat.attention != "per-step":
        raise flat.fail(
            name,
            "multiplies spike counts (A Bᵀ C / t², the compensated attention of --method binary); a flat chip has "
            "no neuron that multiplies counts or divides by t², only coincidences of spikes in one step: convert with "
            "--attention per-step (Spikformer's per-step product q_t k_tᵀ v_t; spikec.convert_binary(attention="
            "'per-step')), or pass flatten-tokens{attention=per-step} to lower this SNN's attention per step (its "
            "mean is then no longer exactly the attention of the rates)",
        )
    ssa: SpikingSelfAttention = node  # type: ignore[assignment]
    attention(flat, name, SpikingSelfAttention(heads=ssa.heads, scale=ssa.scale, origin=ssa.origin))
    flat.per_step.append(name)


def column_sum(flat: _Flat, name: str, node: Node) -> None:
    """SUM_c(A ⊗ B): a coincidence per (n, d), a Dense of ones over n."""
    tokens, dim = flat.tokens(flat.graph.in_edges(name)[0].src)
    index = np.arange(tokens * dim)
    coincidences = coincide(flat, name, [e.src for e in flat.graph.in_edges(name)], [index, index],
                            [index.size] * 2)  # fmt: skip
    total = np.zeros((dim, tokens * dim))
    total[index % dim, index] = 1.0
    flat.add(name, ann.Dense(weight=total, origin=f"{node.origin or name}: sum over tokens"), coincidences)
    flat.flat.add(name)


def spike_mask(flat: _Flat, name: str, node: Node) -> None:
    """Binary(mul) of two spike tensors (broadcast): one coincidence per output element, its spike the product."""
    if not flat.reads_flat(name) and len(flat.graph.types[name]) != 2:
        flat.add(name, node, *(flat.as_before(e.src) for e in flat.graph.in_edges(name)))
        return
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
    flat.renamed[name] = coincide(flat, name, sources, indices, widths)
    flat.flat.add(name)
