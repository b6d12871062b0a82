"""``quantize{target=spinnaker2}``: a float SNN lowered to the SpiNNaker2 dialect (int8 weights, integer IF).

Takes what spikec's conversion makes with the target's settings (``conversion.py``: 0/1 input spikes, reset
to zero, max-pooling of spikes, a membrane readout) and SNNs built the same way:
``Input → [Flatten] → Conv|Dense (+ Add, Scale) → IF|LIF|I → [MaxPool|Concat] → … → Dense → I → [Scale] → Output``.

* Each neuron (``neurons.py``: IF, LIF with v_leak and τ per neuron, CubaLIF as a current-based population, I
  as a readout) becomes a ``SpiNNaker2LIF`` of the same name, and each term of its input (``terms.py``: Conv,
  Dense, pools, a spike source read as it is, summed by ``Add``, scaled by ``Scale``) a ``SpiNNaker2Conv``/
  ``Dense`` into it, named after the Conv/Dense (or ``<neuron>.from.<source>`` for an identity path).
* A ``MaxPool`` of spikes is an OR population: a depthwise ``SpiNNaker2Conv`` of ones (``<pool>.or``) into a
  ``SpiNNaker2LIF`` with θ = 0 that resets to 0, firing when any input of its window fired.
* A ``SumPool``/``AvgPool`` of spikes folds into the synapse that reads it (``pool_fold.py``).
* A ``Concat`` of spike sources stays; ``emit.py`` splits each reader's projections by source population.
* A ``Scale`` between the readout and its Output (the conversion's rescale) is dropped: it multiplies the
  readout by a positive constant, kept in the report (``output_scales``) with σ.

**Scale.** One factor σ per layer, as py-spinnaker2 scales weights to ±127: ``W_int = round(σ·r·W)`` for every
term, ``b_int = round(σ·(r·b + a·v_leak))``, ``θ_int = round(σ·θ)``, ``v0_int = round(σ·v_init)``,
``v_reset_int = round(σ·v_reset)``, σ the largest value with ``σ·max|r·W| ≤ 2^(weight_bits−1) − 1`` over every
term and the membrane below 2²⁴ (a spiking layer ``σ·(θ + P + B)``, a readout ``σ·(|v0| + T·(max(P, N) + B))``,
P/N the largest positive/negative input of one step summed over the terms, B the largest |bias|,
T = ``timesteps``; a current-based layer ``σ·(θ + (P + B)/(1 − β))``, β its largest ``syn_decay``).
``firing = at_or_above`` (v ≥ θ) becomes ``θ_int − 1``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from types import UnionType
from typing import Any

import numpy as np

from spikec.ir import (
    IF,
    LIF,
    Add,
    AvgPool,
    Concat,
    Conv,
    CubaLIF,
    Dense,
    Flatten,
    Graph,
    I,
    Input,
    MaxPool,
    Output,
    Reshape,
    Scale,
    SumPool,
)
from spikec.ir.node import Node
from spikec.passes.quantize import QuantizationError, QuantizeResult
from spikec.targets.spinnaker2.dialect import (
    V_MAX,
    SpiNNaker2Conv,
    SpiNNaker2Dense,
    SpiNNaker2LIF,
    SpiNNaker2OneToOne,
)
from spikec.targets.spinnaker2.neurons import NeuronMap, neuron_map
from spikec.targets.spinnaker2.pool_fold import PooledView, pool_view
from spikec.targets.spinnaker2.terms import PASS, Gather, OneToOne, Term, fail, neuron_terms, per_channel_of

STRUCTURE = ("Input", "Output", "Flatten", "Concat")


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """The shared pass's options as SpiNNaker2 reads them (``sign_mode``, ``max_rel_error`` have no use here)."""

    weight_bits: int = 8
    sign_mode: str = "auto"
    max_rel_error: float = 0.1
    input_max: float = 1.0
    timesteps: int = 256
    reset_to_zero: bool = False

    def check(self) -> None:
        if not 2 <= self.weight_bits <= 8:
            raise QuantizationError(
                f"{PASS}: weight_bits={self.weight_bits} must be 2..8 (SpiNNaker2 weights are int8)"
            )
        if self.input_max != 1:
            raise QuantizationError(
                f"{PASS}: input_max={self.input_max:g}; SpiNNaker2 populations read 0/1 spike sources (spike_list): "
                "convert with --encoding poisson (the spinnaker2 target's default) or drop input_max"
            )


def in_dialect(graph: Graph) -> bool:
    return all(n.kind in STRUCTURE or n.kind.startswith("SpiNNaker2") for n in graph.nodes.values())


_fail = fail


def _scale(
    gws: list[np.ndarray], extent: list[np.ndarray], b: float, neuron: NeuronMap, options: QuantizeOptions
) -> tuple[float, str]:
    """The largest σ the layer allows and the bound that sets it (module docstring); inputs are 0/1 spikes,
    ``gws`` the weights of every term (one projection each) into the population, ``extent`` each term's output
    shape as an array of zeros the size of the population (per-channel sums broadcast onto it), ``b`` the largest
    |bias|."""

    def per_neuron(w: np.ndarray, zeros: np.ndarray) -> np.ndarray:
        sums = w.sum(axis=tuple(range(1, w.ndim)))  # per output channel
        return (sums.reshape(sums.shape + (1,) * (zeros.ndim - 1)) + zeros).reshape(-1)

    positive = sum(per_neuron(np.clip(gw, 0, None), z) for gw, z in zip(gws, extent, strict=True))
    negative = sum(per_neuron(np.clip(-gw, 0, None), z) for gw, z in zip(gws, extent, strict=True))
    peak_w = max(float(np.max(np.abs(gw), initial=0.0)) for gw in gws)
    bounds = {"weights": ((1 << (options.weight_bits - 1)) - 1) / peak_w if peak_w else math.inf}
    if neuron.readout:
        peak = float(np.max(np.maximum(positive, negative), initial=0.0)) + b
        bounds["membrane"] = V_MAX / (options.timesteps * peak or 1.0)
    else:  # a current sums a step's input over 1/(1 − β) steps at most
        growth = 1.0 / (1.0 - float(np.max(neuron.syn_decay)))
        top = float(np.max(np.abs(neuron.threshold))) + (float(np.max(positive, initial=0.0)) + b) * growth
        bounds["membrane"] = V_MAX / (top + float(np.max(np.abs(neuron.v_init))) or 1.0)
    which = min(bounds, key=lambda k: bounds[k])
    return (bounds[which], which) if math.isfinite(bounds[which]) else (1.0, "none")


def _rounded(value: Any, shape: tuple[int, ...] = ()) -> np.ndarray:
    return np.round(np.broadcast_to(np.asarray(value, np.float64), shape) if shape else value).astype(np.int64)


def _uniform_or_full(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as one number when it is uniform, else broadcast to ``shape``."""
    a = np.asarray(value, np.float64)
    return np.asarray(a.flat[0]) if np.all(a == a.flat[0]) else np.broadcast_to(a, shape).copy()


def _lowered_dense(graph: Graph, term: Term, weight: np.ndarray) -> Node:
    return SpiNNaker2Dense(weight=weight, origin=term.synapse.origin)


def _lowered_one_to_one(graph: Graph, term: Term, weight: np.ndarray) -> Node:
    return SpiNNaker2OneToOne(weight=weight, origin=term.synapse.origin)


def _lowered_conv(graph: Graph, term: Term, weight: np.ndarray) -> Node:
    synapse = term.synapse
    assert isinstance(synapse, Conv)
    if tuple(synapse.dilation) != (1,) * len(synapse.dilation) or synapse.weight.ndim != 4:
        raise _fail(graph, term.name, "is not a 2-d undilated convolution (lif_conv2d's synapses)")
    return SpiNNaker2Conv(
        weight=weight,
        stride=tuple(synapse.stride),
        padding=tuple(synapse.padding),
        groups=synapse.groups,
        origin=synapse.origin,
    )


LOWERED: dict[type, Callable[[Graph, Term, np.ndarray], Node]] = {
    Dense: _lowered_dense,
    OneToOne: _lowered_one_to_one,
    Conv: _lowered_conv,
}  # each term's synapse kind as the dialect's synapse, given its int8 weights


def _term_gain(graph: Graph, name: str, neuron: NeuronMap, out_shape: tuple[int, ...]) -> np.ndarray:
    """The neuron's input gain per output channel (axis 0) of a synapse whose output, of ``out_shape``, is the
    population (a flattened conv's reshaped onto it): synapses share one weight per channel."""
    gain = np.broadcast_to(np.asarray(neuron.gain, np.float64), tuple(graph.types[name])).reshape(out_shape)
    return per_channel_of(graph, name, gain, "has an input gain (r, or dt/tau for a LIF) that varies within a "
                          "channel; a convolution's weights are shared across positions: give r and tau one value "
                          "per channel")  # fmt: skip


def lower_layer(
    graph: Graph, terms: list[Term], neuron_name: str, options: QuantizeOptions
) -> tuple[list[Node], SpiNNaker2LIF, dict[str, Any]]:
    """A population and the synapses it reads (one per term, ``terms.py``) in the dialect, and the layer's report."""
    neuron = neuron_map(graph, neuron_name, options.reset_to_zero)
    shape = tuple(graph.types[neuron_name])
    gws, extent, gb = [], [], np.zeros(shape[0])
    for term in terms:
        out = term.out_shape or shape
        gain = _term_gain(graph, neuron_name, neuron, out)
        w = np.asarray(term.synapse.weight, np.float64)
        gws.append(w * gain[(slice(None),) + (None,) * (w.ndim - 1)])
        extent.append(np.zeros(out))
        if term.synapse.bias is not None:
            assert term.out_shape is None, "a flattened pool's conv has no bias"
            gb = gb + np.asarray(term.synapse.bias, np.float64) * gain
    bias = gb.reshape((shape[0],) + (1,) * (len(shape) - 1)) + np.broadcast_to(neuron.bias, shape)
    sigma, bound = _scale(gws, extent, float(np.max(np.abs(bias), initial=0.0)), neuron, options)
    weights = [_rounded(sigma * gw) for gw in gws]
    synapses = [LOWERED[type(t.synapse)](graph, t, w) for t, w in zip(terms, weights, strict=True)]
    threshold = _rounded(sigma * neuron.threshold, shape) - (1 if neuron.at_or_above else 0)
    if not neuron.readout and threshold.min() < 0:
        raise _fail(graph, neuron_name, f"has a negative threshold after scaling by σ = {sigma:.4g}")
    lif = SpiNNaker2LIF(
        threshold=threshold if not neuron.readout else np.ones(shape, np.int64),
        bias=_rounded(sigma * bias, shape),
        v_init=_rounded(sigma * neuron.v_init, shape),
        v_reset=_rounded(sigma * neuron.v_reset, shape),
        reset=neuron.reset,
        readout=neuron.readout,
        alpha_decay=_uniform_or_full(neuron.alpha, shape),
        syn_decay=_uniform_or_full(neuron.syn_decay, shape),
        origin=graph.nodes[neuron_name].origin,
    )
    peak = max(float(np.max(np.abs(gw), initial=0.0)) for gw in gws) or 1.0
    error = max(float(np.max(np.abs(w / sigma - gw), initial=0.0)) for w, gw in zip(weights, gws, strict=True)) / peak
    report = {
        "synapse": ", ".join(t.name for t in terms),
        "neurons": neuron_name,
        "kind": graph.nodes[neuron_name].kind,
        "scale": sigma,
        "bound": bound,
        "readout": bool(neuron.readout),
        "reset": neuron.reset,
        "alpha_decay": [float(np.min(neuron.alpha)), float(np.max(neuron.alpha))],
        "syn_decay": [float(np.min(neuron.syn_decay)), float(np.max(neuron.syn_decay))],
        "max_rel_weight_error": error,
        "threshold": [int(lif.threshold.min()), int(lif.threshold.max())],
        "terms": len(terms),
    }
    return synapses, lif, report


def or_pool(graph: Graph, name: str, node: MaxPool) -> tuple[SpiNNaker2Conv, SpiNNaker2LIF]:
    """A max-pool of 0/1 spikes as an OR population: a depthwise conv of ones into θ = 0, reset to 0."""
    channels = graph.types[name][0]
    k = tuple(node.kernel_size)
    if len(k) != 2:
        raise _fail(graph, name, "is not a 2-d max-pool")
    conv = SpiNNaker2Conv(
        weight=np.ones((channels, 1, *k), np.int64),
        stride=tuple(node.stride or k),
        padding=tuple(node.padding or (0, 0)),
        groups=channels,
        origin=node.origin,
    )
    shape = tuple(graph.types[name])
    lif = SpiNNaker2LIF(threshold=np.zeros(shape, np.int64), origin=node.origin)
    return conv, lif


@dataclasses.dataclass
class Walk:
    """What the lowering has built so far, in ``graph``'s order."""

    graph: Graph
    options: QuantizeOptions
    nodes: dict[str, Node] = dataclasses.field(default_factory=dict)
    edges: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    spikes: set[str] = dataclasses.field(default_factory=set)  # nodes that carry 0/1 spikes
    pooled: dict[str, PooledView] = dataclasses.field(default_factory=dict)  # pools folded into their reader
    alias: dict[str, str] = dataclasses.field(default_factory=dict)  # a dropped Scale -> the readout it scaled
    layers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    pools: list[str] = dataclasses.field(default_factory=list)
    output_scales: dict[str, float] = dataclasses.field(default_factory=dict)


Step = Callable[[Walk, str, Any, str], bool]  # (walk, name, node, its source) -> handled (False: no form)


def _input(walk: Walk, name: str, node: Input, src: str) -> bool:
    walk.nodes[name] = node
    walk.spikes.add(name)
    return True


def _pool(walk: Walk, name: str, node: SumPool | AvgPool, src: str) -> bool:
    if src not in walk.spikes:
        return False
    view = pool_view(name, node, src, tuple(walk.graph.types[src]))
    if isinstance(view, str):
        raise _fail(walk.graph, name, view)
    walk.pooled[name] = view
    return True


def _flatten(walk: Walk, name: str, node: Flatten | Reshape, src: str) -> bool:
    flat = len(walk.graph.types[name]) == 1
    if src in walk.pooled and flat:
        walk.pooled[name] = dataclasses.replace(walk.pooled[src], flat=True)
        return True
    if src not in walk.spikes or not flat:
        raise _fail(walk.graph, name, "must flatten a spike source to 1-d")
    walk.nodes[name] = Flatten(origin=node.origin)
    walk.edges.append((src, name))
    walk.spikes.add(name)
    return True


def _synapse(walk: Walk, name: str, node: Conv | Dense, src: str) -> bool:
    """Checked here, lowered with the neuron it feeds (``_neuron``)."""
    graph = walk.graph
    reads_spikes = src in walk.spikes or src in walk.pooled
    if len(graph.in_edges(name)) != 1 or not reads_spikes or len(graph.out_edges(name)) != 1:
        raise _fail(graph, name, "must read one spike source and feed one neuron (IF or I)")
    return True


def _neuron(walk: Walk, name: str, node: IF | LIF | I, src: str) -> bool:
    gather = Gather(walk.graph, name, walk.spikes, walk.pooled, walk.nodes, walk.edges, walk.alias)
    terms = neuron_terms(gather)
    synapses, walk.nodes[name], report = lower_layer(walk.graph, terms, name, walk.options)
    for term, synapse in zip(terms, synapses, strict=True):
        walk.nodes[term.name] = synapse
        walk.edges.append((term.source, term.name))
        if term.flatten is None:
            walk.edges.append((term.name, name))
        else:  # a flattened pool's conv, flattened onto the population
            walk.nodes[term.flatten] = Flatten(origin=synapse.origin)
            walk.edges += [(term.name, term.flatten), (term.flatten, name)]
    walk.layers.append(report)
    if not report["readout"]:
        walk.spikes.add(name)
    return True


def _term(walk: Walk, name: str, node: Add, src: str) -> bool:
    """An Add (or a Scale) between synapses and a neuron: lowered with the neuron (``terms.py``)."""
    return True


def _concat(walk: Walk, name: str, node: Concat, src: str) -> bool:
    """A Concat of spike sources stays (a structural node): ``emit.py`` splits its readers' projections by source."""
    sources = [walk.alias.get(e.src, e.src) for e in walk.graph.in_edges(name)]
    other = next((s for s in sources if s not in walk.spikes), None)
    if other is not None:
        raise _fail(
            walk.graph,
            name,
            f"joins {walk.graph.describe(other)}, which is not a spike source; SpiNNaker2 joins populations' spikes "
            "(move the Concat after the neurons, or give each branch its own neuron)",
        )
    walk.nodes[name] = node
    walk.edges += [(s, name) for s in sources]
    walk.spikes.add(name)
    return True


def _max_pool(walk: Walk, name: str, node: MaxPool, src: str) -> bool:
    if src not in walk.spikes:
        return False
    conv_name = f"{name}.or"
    walk.nodes[conv_name], walk.nodes[name] = or_pool(walk.graph, name, node)
    walk.edges += [(src, conv_name), (conv_name, name)]
    walk.spikes.add(name)
    walk.pools.append(name)
    return True


def _scale_step(walk: Walk, name: str, node: Scale, src: str) -> bool:
    """A readout's Scale is dropped (kept in the report); any other is a term's factor (``terms.py``)."""
    readout = walk.nodes.get(src)
    if not (isinstance(readout, SpiNNaker2LIF) and readout.readout):
        return True
    if np.any(np.asarray(node.scale) <= 0):
        raise _fail(walk.graph, name, "rescales the readout by a non-positive factor")
    walk.alias[name] = src
    walk.output_scales[src] = float(np.max(node.scale))
    return True


def _output(walk: Walk, name: str, node: Output, src: str) -> bool:
    if src not in walk.nodes:
        raise _fail(
            walk.graph,
            name,
            f"shows {walk.graph.describe(src)}, which no population computes; SpiNNaker2 outputs spikes of a "
            "population or a readout's v (end the network with a neuron)",
        )
    walk.nodes[name] = node
    walk.edges.append((src, name))
    return True


STEPS: dict[type[Node] | UnionType, Step] = {
    Input: _input,
    SumPool | AvgPool: _pool,
    Flatten | Reshape: _flatten,
    Conv | Dense: _synapse,
    IF | LIF | CubaLIF | I: _neuron,
    MaxPool: _max_pool,
    Add: _term,
    Concat: _concat,
    Scale: _scale_step,
    Output: _output,
}  # what each kind of the float SNN becomes


def quantize_spinnaker2(graph: Graph, options: QuantizeOptions) -> QuantizeResult:
    """Lower ``graph`` (module docstring); the report has one entry per layer, the OR pools and output scales."""
    if in_dialect(graph):
        return QuantizeResult(
            graph, False, {"target": "spinnaker2", "unchanged": True}, ("already in the SpiNNaker2 dialect",)
        )
    options.check()
    walk = Walk(graph, options)
    for name in graph.order:
        node = graph.nodes[name]
        ins = graph.in_edges(name)
        if any(e.recurrent for e in ins):
            raise _fail(graph, name, "has a recurrent input; the SpiNNaker2 target emits feed-forward networks")
        src = walk.alias.get(ins[0].src, ins[0].src) if ins else ""
        step = next((s for kind, s in STEPS.items() if isinstance(node, kind)), None)
        if step is None or not step(walk, name, node, src):
            raise _fail(
                graph,
                name,
                "has no SpiNNaker2 form: the target takes Conv/Dense into IF, LIF and CubaLIF neurons (PyNN's "
                "IF_curr_delta and IF_curr_exp) and I readouts, max-pools of spikes, sum/average pools folded into "
                "synapses, Add, Scale, Concat and Flatten (fold or fuse other kinds first, e.g. fuse, fold-batchnorm)",
            )
    nodes, edges, layers, pools, output_scales = walk.nodes, walk.edges, walk.layers, walk.pools, walk.output_scales
    lowered = Graph(nodes, edges, dt=graph.dt)
    report = {
        "target": "spinnaker2",
        "layers": layers,
        "or_pools": pools,
        "output_scales": output_scales,
        "weight_bits": options.weight_bits,
        "timesteps": options.timesteps,
    }
    lines = tuple(
        f"{r['neurons']:<20} {r['kind']:<3} σ={r['scale']:.4g} (bound: {r['bound']}) reset={r['reset']} "
        f"θ {r['threshold'][0]}..{r['threshold'][1]} weight error max {r['max_rel_weight_error']:.2%}"
        + (" readout" if r["readout"] else "")
        for r in layers
    ) + tuple(f"{p:<20} OR population (max-pool of spikes)" for p in pools)
    return QuantizeResult(lowered, True, report, lines)
