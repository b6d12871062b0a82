r"""Synaptic operations of the spike-attention kinds: products of two activity tensors, no stored weights.

The spiking-transformer papers count the attention's matrix products as synaptic operations beside the
Linear layers' (Spikformer's SSA: :math:`Q K^\top` then :math:`\cdot V`, :math:`N^2 D` operations each;
docs/energy.md). spikec counts them as NeuroBench counts a weighted layer, one operand standing in for the
weights: *dense* = every product of the two operands, *effective* = the products whose two factors are both
nonzero. A product is an **accumulate** (AC) when one of its operands holds only values in {−1, 0, 1} (a
multiply by a spike is a select), else a **MAC**.

* ``SpikingSelfAttention`` (per sample, heads h of :math:`d_h` channels): the scores
  :math:`S_h = Q_h K_h^\top` take :math:`N_q N_k D` dense products and
  :math:`\sum_c \|Q_{:,c}\|_0 \|K_{:,c}\|_0` effective ones; :math:`S_h V_h` takes :math:`N_q N_k D` dense and
  :math:`\sum_{h,i,j} [S_{h,ij} \ne 0]\, \|V_{h,j,:}\|_0` effective. The scale (one multiply per output) is
  left out, as the papers leave it out (it folds into the next neuron's threshold).
* ``HadamardColumnSum`` (SDSA's :math:`\mathrm{SUM}_c(A \otimes B)`): :math:`N D` dense, the positions where
  both are nonzero effective.

``PRODUCTS`` maps each kind to its counter; ``spikec.report.metrics`` adds their counts to the synaptic
operations of the layer the node is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from spikec.ir import attention
from spikec.ir.node import Node

SPIKE_VALUES = (-1.0, 0.0, 1.0)  # an operand all in here: its products are accumulates (ACs)


class Product(NamedTuple):
    """One product of a step (summed over the batch): its dense and effective operations, AC or MAC."""

    dense: float
    effective: float
    accumulate: bool


def is_spikes(x: np.ndarray) -> bool:
    """Every value in {−1, 0, 1}: multiplying by it is an accumulate."""
    return bool(np.isin(x, SPIKE_VALUES).all())


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    """(B, N, D) -> (B, h, N, D/h)."""
    b, n, d = x.shape
    return x.reshape(b, n, heads, d // heads).transpose(0, 2, 1, 3)


def ssa_products(node: Node, xs: Sequence[np.ndarray]) -> list[Product]:
    """Spikformer's SSA: the scores Q·Kᵀ and their product with V, per head."""
    assert isinstance(node, attention.SpikingSelfAttention)
    q, k, v = (np.asarray(x, np.float64) for x in xs)
    (b, nq, d), nk = q.shape, k.shape[1]
    scores = np.matmul(_heads(q, node.heads), _heads(k, node.heads).transpose(0, 1, 3, 2))  # (B, h, Nq, Nk)
    fanout = _heads((v != 0).astype(np.float64), node.heads).sum(axis=3)  # (B, h, Nk): V's nonzeros per row
    dense = float(b * nq * nk * d)
    return [
        Product(dense, float(np.sum((q != 0).sum(axis=1) * (k != 0).sum(axis=1))), is_spikes(q) or is_spikes(k)),
        Product(dense, float(np.sum((scores != 0) * fanout[:, :, None, :])), is_spikes(scores) or is_spikes(v)),
    ]


def hadamard_products(node: Node, xs: Sequence[np.ndarray]) -> list[Product]:
    """SDSA's accumulate: the elementwise products A ⊗ B summed over tokens."""
    a, b = (np.asarray(x, np.float64) for x in xs)
    return [Product(float(a.size), float(np.count_nonzero((a != 0) & (b != 0))), is_spikes(a) or is_spikes(b))]


PRODUCTS: dict[type[Node], Callable[[Node, Sequence[np.ndarray]], list[Product]]] = {
    attention.SpikingSelfAttention: ssa_products,
    attention.HadamardColumnSum: hadamard_products,
}
