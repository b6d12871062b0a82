r"""What a SpiNNaker2 population reads: a sum of terms, each one PyNN projection (``quantize{target=spinnaker2}``).

A neuron's input in the float SNN is linear in the spike sources before it,
:math:`x = \sum_k f_k \odot M_k(z_k)`: Conv/Dense synapses (a sum/average pool before them folded in,
``pool_fold.py``), a pool read directly (a depthwise conv; flattened, the conv's output is flattened before the
population), a spike source read as it is (a residual block's identity path: a depthwise 1×1 conv, or one synapse
per neuron on a flat source, ``OneToOne``), joined by ``Add`` (a residual sum) and scaled by ``Scale`` (:math:`f_k`,
one factor per output channel). Each term becomes one synapse node into the same population: PyNN sums the
projections' input as the interpreter sums a node's incoming edges, so the sum is exact (it is linear), and
``emit.py`` aligns terms whose sources run at different lags by their delays (the Loihi 2 target builds its synapses
per source the same way). ``TERMS`` holds the rule of each kind between the synapses and the population.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.ir import Add, Conv, Dense, Flatten, Graph, Scale
from spikec.ir.node import Node, Shape
from spikec.passes.quantize import QuantizationError
from spikec.targets.spinnaker2.pool_fold import PooledView, fold, pool_as_conv

PASS = "quantize{target=spinnaker2}"


def fail(graph: Graph, name: str, why: str) -> QuantizationError:
    return QuantizationError(f"{PASS}: {graph.describe(name)} {why}")


@dataclasses.dataclass(frozen=True)
class OneToOne:
    """A flat spike source read as it is: neuron k's input is ``weight[k]·x[k]`` (``weight`` (N,), no bias); lowered
    to a ``SpiNNaker2OneToOne`` (N synapses, where an identity ``Dense`` would hold N²)."""

    weight: np.ndarray
    origin: str = ""
    bias: None = None


Synapse = Conv | Dense | OneToOne


@dataclasses.dataclass(frozen=True)
class Term:
    """One synapse of a population: the float ``synapse`` (its factor applied) reading lowered node ``source``;
    ``name`` is the lowered synapse's name. ``flatten`` names the Flatten between a Conv of ``out_shape`` and a flat
    population (a flattened pool read directly), None when the synapse feeds the population as it is."""

    name: str
    synapse: Synapse
    source: str
    flatten: str | None = None
    out_shape: Shape | None = None


@dataclasses.dataclass
class Gather:
    """The lowering's state the terms need: the float graph, its spike sources and folded pools, the lowered
    nodes and edges (a flattened pool's source gets a Flatten node here)."""

    graph: Graph
    neuron: str
    spikes: set[str]
    pooled: dict[str, PooledView]
    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    alias: dict[str, str]
    taken: set[str] = dataclasses.field(default_factory=set)

    def unique(self, name: str) -> str:
        """``name``, or ``name.<neuron>`` when the lowering already holds a node of that name."""
        out = name if name not in self.nodes and name not in self.taken else f"{name}.{self.neuron}"
        self.taken.add(out)
        return out


def neuron_terms(gather: Gather) -> list[Term]:
    """The terms neuron ``gather.neuron`` reads, in its inputs' order (module docstring)."""
    graph, neuron = gather.graph, gather.neuron
    edges = graph.in_edges(neuron)
    if len(edges) != 1:
        raise fail(graph, neuron, "must be fed by one node (an Add sums several terms into one population)")
    return _terms(gather, gather.alias.get(edges[0].src, edges[0].src), None)


def per_channel(graph: Graph, name: str, value: Any, why: str) -> np.ndarray:
    """``value`` (broadcast to node ``name``'s shape) as one number per channel (axis 0); ``QuantizationError``
    saying ``why`` it must not vary when it varies within a channel."""
    shape = tuple(graph.types[name])
    return per_channel_of(graph, name, np.broadcast_to(np.asarray(value, np.float64), shape), why)


def channel_factor(graph: Graph, name: str, node: Scale) -> np.ndarray:
    """A Scale's factor per channel (axis 0)."""
    return per_channel(graph, name, node.scale, "scales positions of one channel differently; a population's "
                       "synapses share one weight per channel (fold the Scale into the Conv before it)")  # fmt: skip


def scaled(synapse: Synapse, factor: np.ndarray | None) -> Synapse:
    """``factor ⊙ synapse``: its weights and bias times the factor of their output channel."""
    if factor is None:
        return synapse
    expand = (slice(None),) + (None,) * (synapse.weight.ndim - 1)
    weight = np.asarray(synapse.weight, np.float64) * factor[expand]
    bias = None if synapse.bias is None else np.asarray(synapse.bias, np.float64) * factor
    return dataclasses.replace(synapse, weight=weight, bias=bias)


def identity(shape: Shape, origin: str) -> Conv | OneToOne | None:
    """The synapse reading a spike tensor as it is: depthwise 1×1 conv of ones, or one-to-one on a flat one."""
    if len(shape) == 3:
        ones = np.ones((shape[0], 1, 1, 1))
        return Conv(weight=ones, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=shape[0], origin=origin)
    if len(shape) == 1:
        return OneToOne(weight=np.ones(shape[0]), origin=origin)
    return None


def _terms(g: Gather, name: str, factor: np.ndarray | None) -> list[Term]:
    """The terms node ``name`` contributes, times ``factor`` (per output channel): a spike source or a pool the
    lowering already holds, else its kind's rule in ``TERMS``."""
    graph = g.graph
    node = graph.nodes[name]
    if name in g.spikes:  # a residual's identity path
        synapse = identity(tuple(graph.types[name]), node.origin)
        if synapse is None:
            raise fail(graph, g.neuron, f"reads {graph.describe(name)} of shape {graph.types[name]} as it is: "
                       "SpiNNaker2 reads (C, H, W) maps or flat vectors (Flatten it first)")  # fmt: skip
        return [Term(g.unique(f"{g.neuron}.from.{name}"), scaled(synapse, factor), name)]
    if name in g.pooled:
        return [_pool_term(g, name, node, factor)]
    if len(graph.out_edges(name)) != 1:
        raise fail(graph, name, "feeds several nodes; SpiNNaker2 gives each population its own synapses (one reader)")
    rule = TERMS.get(type(node))
    if rule is None:
        raise fail(
            graph,
            g.neuron,
            f"reads {graph.describe(name)} ({node.kind}); a population reads Conv, Dense, pools and spike sources, "
            "their sums (Add) and Scale (fold or fuse other kinds first, e.g. fuse, fold-batchnorm)",
        )
    return rule(g, name, node, factor)


def _pool_term(g: Gather, name: str, node: Node, factor: np.ndarray | None) -> Term:
    """A pool read directly: a depthwise conv of the pool's factor on its source; flattened, the conv's output is
    flattened before the population (k²·C weights, not a dense (pooled × source) matrix)."""
    view = g.pooled[name]
    conv = pool_as_conv(view, node.origin)
    if not view.flat:
        return Term(g.unique(name), scaled(conv, factor), view.source)
    c, h, w = view.source_shape
    out = (c, h // view.kernel, w // view.kernel)
    if factor is not None:  # one factor per element of the flat vector: one per channel of the conv
        why = "scales positions of one channel of a flattened pool differently; its conv has one weight per channel"
        factor = per_channel_of(g.graph, name, np.reshape(factor, out), why)
    return Term(g.unique(name), scaled(conv, factor), view.source, g.unique(f"{name}.flat"), out)


def per_channel_of(graph: Graph, name: str, value: np.ndarray, why: str) -> np.ndarray:
    """``value`` (C, ...) as one number per channel; ``QuantizationError`` naming ``name`` when it varies within one."""
    v = np.asarray(value, np.float64).reshape(value.shape[0], -1)
    if not np.all(v == v[:, :1]):
        raise fail(graph, name, why)
    return v[:, 0].copy()


def _synapse_terms(g: Gather, name: str, node: Node, factor: np.ndarray | None) -> list[Term]:
    assert isinstance(node, Conv | Dense)
    synapse, source = _synapse_and_source(g, name, node)
    return [Term(g.unique(name), scaled(synapse, factor), source)]


def _add_terms(g: Gather, name: str, node: Node, factor: np.ndarray | None) -> list[Term]:
    return [t for e in g.graph.in_edges(name) for t in _terms(g, g.alias.get(e.src, e.src), factor)]


def _scale_terms(g: Gather, name: str, node: Node, factor: np.ndarray | None) -> list[Term]:
    assert isinstance(node, Scale)
    f = channel_factor(g.graph, name, node)
    src = g.graph.in_edges(name)[0].src
    return _terms(g, g.alias.get(src, src), f if factor is None else f * factor)


TermRule = Callable[[Gather, str, Node, "np.ndarray | None"], list[Term]]
TERMS: dict[type[Node], TermRule] = {
    Conv: _synapse_terms,
    Dense: _synapse_terms,
    Add: _add_terms,
    Scale: _scale_terms,
}  # the kinds between the synapses and a population, and the terms each contributes


def _synapse_and_source(g: Gather, name: str, synapse: Conv | Dense) -> tuple[Conv | Dense, str]:
    """A Conv/Dense and the lowered spike source it reads, a pool before it folded in (``pool_fold``)."""
    graph = g.graph
    source = graph.in_edges(name)[0].src
    if source not in g.pooled:
        return synapse, source
    view = g.pooled[source]
    if isinstance(synapse, Dense) != view.flat:
        raise fail(graph, name, "reads a pool it cannot fold: a Conv reads a pooled map, a Dense a flattened one")
    folded = fold(view, synapse)
    assert isinstance(folded, Conv | Dense)
    if not view.flat:
        return folded, view.source
    return folded, _flat_source(g, view, graph.nodes[source].origin)


def _flat_source(g: Gather, view: PooledView, origin: str) -> str:
    """The lowered Flatten of a flattened pool's source (made once)."""
    flat = f"{view.source}.flat"
    if flat not in g.nodes:
        g.nodes[flat] = Flatten(origin=origin)
        g.edges.append((view.source, flat))
    return flat
