"""``quantize{target=spinnaker2}``: a float SNN lowered to the SpiNNaker2 dialect (int8 weights, integer IF).

Takes what spikec's conversion makes with the target's settings (``conversion.py``: 0/1 input spikes, reset
to zero, max-pooling of spikes, a membrane readout) and SNNs built the same way:
``Input → [Flatten] → Conv|Dense → IF|LIF|I → [MaxPool] → … → Dense → I → [Scale] → Output``.

* Each ``Conv``/``Dense`` (with its bias) and the neuron it feeds become a ``SpiNNaker2Conv``/``Dense`` and a
  ``SpiNNaker2LIF`` of the same names; an ``I`` becomes a readout population (``readout = 1``); a ``LIF``
  (``v_leak = 0``, one τ per layer) gets ``alpha_decay = 1 − dt/τ`` and input gain ``dt/τ·r`` (forward Euler,
  docs/semantics.md), so its v is a float.
* A ``MaxPool`` of spikes is an OR population: a depthwise ``SpiNNaker2Conv`` of ones (``<pool>.or``) into a
  ``SpiNNaker2LIF`` with θ = 0 that resets to 0, firing when any input of its window fired.
* A ``SumPool``/``AvgPool`` of spikes folds into the synapse that reads it (``pool_fold.py``).
* A ``Scale`` between the readout and its Output (the conversion's rescale) is dropped: it multiplies the
  readout by a positive constant, kept in the report (``output_scales``) with σ.

**Scale.** One factor σ per layer, as py-spinnaker2 scales weights to ±127: ``W_int = round(σ·r·W)``,
``b_int = round(σ·r·b)``, ``θ_int = round(σ·θ)``, ``v0_int = round(σ·v_init)``, ``v_reset_int = round(σ·v_reset)``,
σ the largest value with ``σ·max|r·W| ≤ 2^(weight_bits−1) − 1`` and the membrane below 2²⁴ (a spiking layer
``σ·(θ + P + B)``, a readout ``σ·(|v0| + T·(max(P, N) + B))``, P/N the largest positive/negative input of one
step, B = max|r·b|, T = ``timesteps``). ``firing = at_or_above`` (v ≥ θ) becomes ``θ_int − 1``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from types import UnionType
from typing import Any

import numpy as np

from spikec.ir import IF, LIF, AvgPool, Conv, Dense, Flatten, Graph, I, Input, MaxPool, Output, Reshape, Scale, SumPool
from spikec.ir.node import Node
from spikec.passes.quantize import QuantizationError, QuantizeResult
from spikec.targets.spinnaker2.dialect import V_MAX, SpiNNaker2Conv, SpiNNaker2Dense, SpiNNaker2LIF
from spikec.targets.spinnaker2.pool_fold import PooledView, fold, pool_as_conv, pool_view

PASS = "quantize{target=spinnaker2}"
STRUCTURE = ("Input", "Output", "Flatten")


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


@dataclasses.dataclass(frozen=True)
class NeuronMap:
    """How one float neuron becomes a SpiNNaker2LIF: input gain r, θ, v₀, v_reset, reset, readout flag."""

    gain: np.ndarray
    threshold: np.ndarray
    v_init: np.ndarray
    v_reset: np.ndarray
    reset: str
    readout: int
    at_or_above: bool = False
    alpha: float = 1.0  # lif_no_delay's alpha_decay: 1 - dt/tau (forward Euler), 1 for IF


def in_dialect(graph: Graph) -> bool:
    return all(n.kind in STRUCTURE or n.kind.startswith("SpiNNaker2") for n in graph.nodes.values())


def _fail(graph: Graph, name: str, why: str) -> QuantizationError:
    return QuantizationError(f"{PASS}: {graph.describe(name)} {why}")


def neuron_map(graph: Graph, name: str, options: QuantizeOptions) -> NeuronMap:
    """The SpiNNaker2LIF form of float neuron ``name`` (IF or I); ``QuantizationError`` when it has none."""
    node = graph.nodes[name]
    if isinstance(node, IF):
        if node.polarity != "unipolar":
            raise _fail(
                graph, name, "is bipolar; SpiNNaker2 populations send +1 spikes only (convert with --decoding membrane)"
            )
        reset = "value" if node.reset == "value" or options.reset_to_zero else node.reset
        if reset not in ("value", "subtract"):
            raise _fail(graph, name, f"resets with '{node.reset}'; SpiNNaker2 resets to v_reset or by subtraction")
        v_reset = np.zeros(()) if options.reset_to_zero else np.asarray(node.v_reset)
        return NeuronMap(
            np.asarray(node.r),
            np.asarray(node.v_threshold),
            np.asarray(node.v_init),
            v_reset,
            reset,
            0,
            node.firing == "at_or_above",
        )
    if isinstance(node, LIF):
        return _leaky(graph, name, node, options)
    if isinstance(node, I):
        return NeuronMap(np.asarray(node.r), np.ones(()), np.zeros(()), np.zeros(()), "value", 1)
    raise _fail(
        graph,
        name,
        f"({node.kind}) has no SpiNNaker2 form: spikec lowers IF and LIF (lif_no_delay, alpha_decay = 1 − dt/τ) "
        "and I (a readout); lower other neurons first",
    )


def _leaky(graph: Graph, name: str, node: LIF, options: QuantizeOptions) -> NeuronMap:
    """A LIF as lif_no_delay: v ← (1 − a)·v + a·r·x with a = dt/τ (one per population), leaking towards 0."""
    reset = "value" if node.reset == "value" or options.reset_to_zero else node.reset
    if reset not in ("value", "subtract"):
        raise _fail(graph, name, f"resets with '{node.reset}'; SpiNNaker2 resets to v_reset or by subtraction")
    if np.any(np.asarray(node.v_leak) != 0):
        raise _fail(graph, name, "has v_leak != 0; lif_no_delay leaks towards 0 (fold v_leak into a bias first)")
    decay = np.unique(graph.dt / np.asarray(node.tau, np.float64))
    if decay.size != 1 or not 0 < decay[0] < 1:
        raise _fail(
            graph, name, f"decays by dt/tau = {decay}; lif_no_delay takes one alpha_decay in (0, 1) per population"
        )
    if node.firing == "at_or_above":
        raise _fail(graph, name, "fires at v >= threshold; a leaky lif_no_delay fires at v > threshold")
    v_reset = np.zeros(()) if options.reset_to_zero else np.asarray(node.v_reset)
    gain = decay[0] * np.asarray(node.r)
    threshold, v_init = np.asarray(node.v_threshold), np.asarray(node.v_init)
    return NeuronMap(gain, threshold, v_init, v_reset, reset, 0, alpha=float(1.0 - decay[0]))


def _scale(gw: np.ndarray, gb: np.ndarray, neuron: NeuronMap, options: QuantizeOptions) -> tuple[float, str]:
    """The largest σ the layer allows and the bound that sets it (module docstring); inputs are 0/1 spikes."""
    axes = tuple(range(1, gw.ndim))
    positive = np.clip(gw, 0, None).sum(axis=axes)
    negative = np.clip(-gw, 0, None).sum(axis=axes)
    b = float(np.max(np.abs(gb), initial=0.0))
    peak_w = float(np.max(np.abs(gw), initial=0.0))
    bounds = {"weights": ((1 << (options.weight_bits - 1)) - 1) / peak_w if peak_w else math.inf}
    if neuron.readout:
        peak = float(np.max(np.maximum(positive, negative), initial=0.0)) + b
        bounds["membrane"] = V_MAX / (options.timesteps * peak or 1.0)
    else:
        top = float(np.max(np.abs(neuron.threshold))) + float(np.max(positive, initial=0.0)) + b
        bounds["membrane"] = V_MAX / (top + float(np.max(np.abs(neuron.v_init))) or 1.0)
    which = min(bounds, key=lambda k: bounds[k])
    return (bounds[which], which) if math.isfinite(bounds[which]) else (1.0, "none")


def _rounded(value: Any, shape: tuple[int, ...] = ()) -> np.ndarray:
    return np.round(np.broadcast_to(np.asarray(value, np.float64), shape) if shape else value).astype(np.int64)


def lower_layer(
    graph: Graph, synapse_name: str, synapse: Conv | Dense, neuron_name: str, options: QuantizeOptions
) -> tuple[Node, SpiNNaker2LIF, dict[str, Any]]:
    """One Conv/Dense + neuron pair as SpiNNaker2Conv/Dense + SpiNNaker2LIF, and the layer's report."""
    neuron = neuron_map(graph, neuron_name, options)
    n_out = synapse.weight.shape[0]
    gain = np.broadcast_to(neuron.gain, graph.types[neuron_name]).reshape(n_out, -1)[:, 0]
    expand = (slice(None),) + (None,) * (synapse.weight.ndim - 1)
    gw = np.asarray(synapse.weight, np.float64) * gain[expand]
    gb = (np.zeros(n_out) if synapse.bias is None else np.asarray(synapse.bias, np.float64)) * gain
    sigma, bound = _scale(gw, gb, neuron, options)
    weight = _rounded(sigma * gw)
    shape = tuple(graph.types[neuron_name])
    bias_per_channel = _rounded(sigma * gb)
    bias = np.broadcast_to(bias_per_channel.reshape((n_out,) + (1,) * (len(shape) - 1)), shape).copy()
    threshold = _rounded(sigma * neuron.threshold, shape) - (1 if neuron.at_or_above else 0)
    if not neuron.readout and threshold.min() < 0:
        raise _fail(graph, neuron_name, f"has a negative threshold after scaling by σ = {sigma:.4g}")
    if isinstance(synapse, Conv):
        if tuple(synapse.dilation) != (1,) * len(synapse.dilation) or synapse.weight.ndim != 4:
            raise _fail(graph, synapse_name, "is not a 2-d undilated convolution (lif_conv2d's synapses)")
        syn: Node = SpiNNaker2Conv(
            weight=weight,
            stride=tuple(synapse.stride),
            padding=tuple(synapse.padding),
            groups=synapse.groups,
            origin=synapse.origin,
        )
    else:
        syn = SpiNNaker2Dense(weight=weight, origin=synapse.origin)
    lif = SpiNNaker2LIF(
        threshold=threshold if not neuron.readout else np.ones(shape, np.int64),
        bias=bias,
        v_init=_rounded(sigma * neuron.v_init, shape),
        v_reset=_rounded(sigma * neuron.v_reset, shape),
        reset=neuron.reset,
        readout=neuron.readout,
        alpha_decay=neuron.alpha,
        origin=graph.nodes[neuron_name].origin,
    )
    peak = float(np.max(np.abs(gw), initial=0.0)) or 1.0
    error = np.abs(weight / sigma - gw) / peak
    report = {
        "synapse": synapse_name,
        "neurons": neuron_name,
        "kind": graph.nodes[neuron_name].kind,
        "scale": sigma,
        "bound": bound,
        "readout": bool(neuron.readout),
        "reset": neuron.reset,
        "alpha_decay": neuron.alpha,
        "max_rel_weight_error": float(error.max(initial=0.0)),
        "threshold": [int(lif.threshold.min()), int(lif.threshold.max())],
    }
    return syn, lif, report


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


def _synapse_of(graph: Graph, name: str, pooled: dict[str, PooledView]) -> str:
    edges = graph.in_edges(name)
    if len(edges) != 1 or not (isinstance(graph.nodes[edges[0].src], Conv | Dense) or edges[0].src in pooled):
        raise _fail(graph, name, "must be fed by exactly one Conv, Dense or pool (a population reads one projection)")
    return edges[0].src


def _synapse_and_source(
    graph: Graph, neuron: str, pooled: dict[str, PooledView], nodes: dict[str, Node], edges: list[tuple[str, str]]
) -> tuple[str, Conv | Dense, str]:
    """The synapse a neuron reads and the spike source it reads, a pool before it folded in (``pool_fold``)."""
    name = _synapse_of(graph, neuron, pooled)
    if name in pooled:  # a pool read directly: a depthwise conv of the pool's factor
        view = pooled[name]
        if view.flat:
            raise _fail(graph, neuron, "reads a flattened pool directly; a population reads a Conv or Dense of it")
        return name, pool_as_conv(view, graph.nodes[name].origin), view.source
    synapse = graph.nodes[name]
    assert isinstance(synapse, Conv | Dense)
    source = graph.in_edges(name)[0].src
    if source not in pooled:
        return name, synapse, source
    view = pooled[source]
    if isinstance(synapse, Dense) != view.flat:
        raise _fail(graph, name, "reads a pool it cannot fold: a Conv reads a pooled map, a Dense a flattened one")
    folded = fold(view, synapse)
    assert isinstance(folded, Conv | Dense)
    if not view.flat:
        return name, folded, view.source
    flat = f"{view.source}.flat"
    if flat not in nodes:
        nodes[flat] = Flatten(origin=graph.nodes[source].origin)
        edges.append((view.source, flat))
    return name, folded, flat


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
    synapse, synapse_node, source = _synapse_and_source(walk.graph, name, walk.pooled, walk.nodes, walk.edges)
    walk.nodes[synapse], walk.nodes[name], report = lower_layer(walk.graph, synapse, synapse_node, name, walk.options)
    walk.edges += [(source, synapse), (synapse, name)]
    walk.layers.append(report)
    if not report["readout"]:
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


def _readout_scale(walk: Walk, name: str, node: Scale, src: str) -> bool:
    readout = walk.nodes.get(src)
    if not (isinstance(readout, SpiNNaker2LIF) and readout.readout):
        return False
    if np.any(np.asarray(node.scale) <= 0):
        raise _fail(walk.graph, name, "rescales the readout by a non-positive factor")
    walk.alias[name] = src
    walk.output_scales[src] = float(np.max(node.scale))
    return True


def _output(walk: Walk, name: str, node: Output, src: str) -> bool:
    walk.nodes[name] = node
    walk.edges.append((src, name))
    return True


STEPS: dict[type[Node] | UnionType, Step] = {
    Input: _input,
    SumPool | AvgPool: _pool,
    Flatten | Reshape: _flatten,
    Conv | Dense: _synapse,
    IF | LIF | I: _neuron,
    MaxPool: _max_pool,
    Scale: _readout_scale,
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
                f"({node.kind}) has no SpiNNaker2 form: the target takes Conv/Dense → IF/I chains, max-pools of "
                "spikes, sum/average pools folded into synapses and Flatten (fold or fuse other kinds first, e.g. "
                "fuse, fold-batchnorm)",
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
