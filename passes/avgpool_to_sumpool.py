"""``avgpool-to-sumpool``: AvgPool → SumPool, with the 1/∏k moved into the next layer's weights (exact).

Spiking hardware adds spikes; it does not divide them. ``AvgPool(x) = SumPool(x) / ∏k`` (SIR's
AvgPool counts padding as zeros, so the divisor is always ``∏k``), so each AvgPool becomes a SumPool
of the same name followed by ``Scale(1/∏k)``, which is folded (with ``fuse``'s Scale rules) into the
following Conv/Dense, through Flatten/Reshape and pools, or into an IF's ``r``. Where nothing can take
it the Scale stays (``fold=false`` keeps them all). Exact up to float rounding.
"""

from __future__ import annotations

import math

import numpy as np

from spikec.ir import ann
from spikec.ir.graph import Graph
from spikec.passes._graphedit import fresh_name, insert_after, replace_nodes
from spikec.passes.fuse import fold_scale
from spikec.pipeline import PassResult


def avgpool_to_sumpool(graph: Graph, *, fold: bool = True) -> PassResult:
    """AvgPool → SumPool + Scale(1/∏k); ``fold`` moves each Scale into the next layer (fuse's rules); exact."""
    pools = [n for n, node in graph.nodes.items() if isinstance(node, ann.AvgPool)]
    for name in pools:
        pool = graph.nodes[name]
        assert isinstance(pool, ann.AvgPool)
        summed = ann.SumPool(kernel_size=pool.kernel_size, stride=pool.stride, padding=pool.padding, origin=pool.origin)
        graph = replace_nodes(graph, {name: summed})
        scale = ann.Scale(scale=np.asarray(1.0 / math.prod(pool.kernel_size)), origin=pool.origin)
        scale_name = fresh_name(graph, f"{name}.scale")
        graph = insert_after(graph, name, scale_name, scale)
        if fold:
            graph = fold_scale(graph, scale_name)
    return PassResult(graph, bool(pools))
