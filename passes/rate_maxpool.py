"""``rate-maxpool``: MaxPool → RateMaxPool, max-pooling of accumulated spike counts (exact in count).

Max-pooling spikes step by step passes a spike whenever any neuron of the window fires, so the
output rate approaches the rate of "any of them" rather than that of the fastest (Rueckauer et al.
2017 measured large losses). ``RateMaxPool`` instead emits the growth of the largest running count
in each window: after ``t`` steps its output has fired exactly ``max_k N_k(t)`` times, the count of
the window's most active neuron, and each step's output is still 0 or 1. So pooling adds no error
of its own in rate: the output stands for ``max_k rate_k · θ``, the quantised ANN max.

A general max ``Pool`` (asymmetric pads such as Caffe2's ``[0, 0, 1, 1]``, ``ceil_mode``) over spikes
becomes a zero ``Pad`` + ``RateMaxPool`` without padding: counts are ≥ 0, so zeros added to a window
never win, and ``ceil_mode``'s last partial windows are the same windows over more end padding.
Exact in count, like the plain case. A dilated max-pool, or one over a signal that is not spikes of
≥ 0, is refused with the reason (``PassError``): no max-pool is left to pool spikes as they come by
accident.

Run it on the spiking graph (after ``relu-to-if``): it makes the graph stateful. docs/conversion.md
compares it with max-pooling the spikes and with pooling the currents (``maxpool-before-relu``).
"""

from __future__ import annotations

from spikec.errors import PassError
from spikec.ir import ann, snn, spatial
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Node
from spikec.ir.traits import EmitsSpikes, Routing
from spikec.passes._graphedit import fresh_name, replace_nodes
from spikec.pipeline import PassResult


def _spikes_at_least_zero(graph: Graph, name: str) -> bool:
    """Whether every input of ``name`` is 0/1 spikes, through routing kinds (a Concat of spike trains, a
    Reshape, ...): zero padding then never wins a max."""
    srcs = [e.src for e in graph.in_edges(name)]
    return bool(srcs) and all(_is_spikes(graph, src) for src in srcs)


def _is_spikes(graph: Graph, name: str) -> bool:
    node = graph.nodes[name]
    spikes = node.get_trait(EmitsSpikes)
    if spikes is not None:
        return not spikes.signed(node)
    routes = isinstance(node, snn.RateMaxPool) or (node.has_trait(Routing) and not isinstance(node, spatial.Pad))
    return routes and _spikes_at_least_zero(graph, name)


def end_padding(pool: spatial.Pool, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per axis, the end padding that makes a floor-mode window walk give ``pool``'s output length (≥ 0)."""
    out = pool.output_spatial(spatial_shape)
    walk = zip(out, pool.stride, pool.kernel_size, pool.dilation, strict=True)
    span = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in walk]
    return tuple(max(w - n - pool.pads[i], 0) for i, (w, n) in enumerate(zip(span, spatial_shape, strict=True)))


def _general_max_pool(graph: Graph, name: str, pool: spatial.Pool) -> tuple[dict[str, Node], list[Edge]]:
    """A max ``Pool`` over spikes → (zero ``Pad``) + ``RateMaxPool`` without padding: the new nodes and edges."""
    nd = len(pool.kernel_size)
    if any(d != 1 for d in pool.dilation) or nd not in (1, 2):
        why = f"dilation {pool.dilation}" if any(d != 1 for d in pool.dilation) else f"{nd} spatial axes"
        raise PassError(
            f"{graph.describe(name)} max-pools with {why}, which RateMaxPool (1-2 axes, no dilation) cannot count; "
            "convert with maxpool=spikes (--maxpool spikes: the OR of spikes) or maxpool=current"
        )
    if not _spikes_at_least_zero(graph, name):
        raise PassError(
            f"{graph.describe(name)} max-pools a signal that is not spikes (padding {pool.pads}, ceil_mode "
            f"{pool.ceil_mode}), where zero padding could win the max; convert with maxpool=current or spikes"
        )
    (edge,) = graph.in_edges(name)
    shape = graph.types[edge.src]
    begin, end = pool.pads[:nd], end_padding(pool, shape[1:])
    rate = snn.RateMaxPool(kernel_size=pool.kernel_size, stride=pool.stride, origin=pool.origin)
    if not any(begin) and not any(end):
        return {name: rate}, []
    pad = fresh_name(graph, f"{name}.pad")
    pads = spatial.Pad(pads=(0, *begin, 0, *end), origin=pool.origin)
    return {name: rate, pad: pads}, [Edge(edge.src, pad), Edge(pad, name)]


def rate_maxpool(graph: Graph) -> PassResult:
    """MaxPool (and max Pool of any pads / ceil mode, over spikes) → RateMaxPool; exact in spike count."""
    changes: dict[str, Node] = {}
    added: dict[str, Node] = {}
    rewired: dict[str, list[Edge]] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ann.MaxPool):
            changes[name] = snn.RateMaxPool(
                kernel_size=node.kernel_size, stride=node.stride, padding=node.padding, origin=node.origin
            )
        elif isinstance(node, spatial.Pool) and node.mode == "max":
            nodes, edges = _general_max_pool(graph, name, node)
            changes[name] = nodes.pop(name)
            added.update(nodes)
            if edges:
                rewired[name] = edges
    if not changes:
        return PassResult(graph, False)
    if not added:
        return PassResult(replace_nodes(graph, changes), True)
    nodes = {k: changes.get(k, v) for k, v in graph.nodes.items()} | added
    edges = [e for e in graph.edges if e.dst not in rewired] + [e for new in rewired.values() for e in new]
    return PassResult(Graph(nodes, edges, dt=graph.dt), True)
