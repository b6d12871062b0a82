"""``quantize{target=acme1}``: a float SNN lowered to the ACME-1 dialect (``Acme1Target.quantize``).

Takes what spikec's ANN→SNN conversion makes of an MLP (docs/conversion.md) and SNNs built the same way:
``Input → [Flatten] → Dense → IF|LIF|I → [Flatten] → Dense → … → Output``. Each ``Dense`` (with its bias)
and the neuron it feeds become an ``AcmeDense`` and an ``AcmeLIF`` of the same names; ``Flatten``/``Reshape``
to 1-d stay as ``Flatten``. A graph already in the dialect passes through unchanged.

**Neurons.** Each has an input gain g and a leak: IF and I: g = r, no leak (``leak_shift`` 0); LIF: the
Euler decay dt/τ must be a power of two 2⁻ᵏ (within ``max_rel_error``; ``leak_shift`` k) and g = (dt/τ)·r.
IF and LIF must reset by subtraction (the chip's only reset) with v_leak = 0; an I becomes a readout group.

**Scale.** Per layer one factor σ maps the float membrane to the chip's, ``v_int = σ·v``:
``W_int = round(σ·g·W)``, ``b_int = round(σ·g·bias)``, ``θ_int = round(σ·θ)``, ``v0_int = round(σ·v_init)``.
σ is the largest value for which every field fits and the 24-bit membrane cannot overflow: with P and N
the largest positive and negative input of one step (every input at its largest value: ``input_max`` for
the graph input, 1 for spikes) and B = max|g·bias|,

* weights ``σ·max|g·W| ≤ 2^(weight_bits−1) − 1``; bias ``σ·B ≤ 2¹⁵ − 1``;
* a spiking layer ``σ·(θ + P + B) ≤ 2²³ − 1`` (v < θ before a step); a readout
  ``σ·(|v0| + T·(max(P, N) + B)) ≤ 2²³ − 1`` for ``timesteps`` T.

The readout's output is then ``σ`` times the float one (the report gives σ per output). What differs from
the float SNN: rounding, the floor in the leak shift, and ``v ≥ θ`` where spikec's IF fires at ``v > θ``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from acme_spikec.dialect import BIAS_MAX, INPUT_MAX, LEAK_SHIFT_MAX, V_MAX, AcmeDense, AcmeLIF
from spikec.ir import IF, LIF, Dense, Flatten, Graph, I, Input, Output, Reshape
from spikec.ir.node import Node
from spikec.passes.quantize import QuantizationError, QuantizeResult

PASS = "quantize{target=acme1}"
STRUCTURE = ("Input", "Output", "Flatten")


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """The shared pass's options, as ACME-1 reads them (``sign_mode`` and ``reset_to_zero`` have no use here)."""

    weight_bits: int = 8
    sign_mode: str = "auto"
    max_rel_error: float = 0.1
    input_max: float = 1.0
    timesteps: int = 256
    reset_to_zero: bool = False

    def check(self) -> None:
        if not 2 <= self.weight_bits <= 8:
            raise QuantizationError(f"{PASS}: weight_bits={self.weight_bits} must be 2..8 (ACME-1 weights are 8-bit)")
        if self.sign_mode != "auto":
            raise QuantizationError(f"{PASS}: ACME-1 weights are always signed; drop sign_mode={self.sign_mode}")
        if self.reset_to_zero:
            raise QuantizationError(f"{PASS}: ACME-1 neurons reset by subtraction only; drop reset_to_zero=true")
        if self.input_max > INPUT_MAX:
            raise QuantizationError(f"{PASS}: input_max={self.input_max:g}; ACME-1 inputs are integers 0..{INPUT_MAX}")


@dataclasses.dataclass(frozen=True)
class NeuronMap:
    """How one float neuron becomes an AcmeLIF: its input gain, leak shift, readout flag, θ and v₀."""

    gain: np.ndarray
    leak_shift: int
    readout: int
    threshold: np.ndarray
    v_init: np.ndarray


def in_dialect(graph: Graph) -> bool:
    return all(isinstance(n, AcmeDense | AcmeLIF) or n.kind in STRUCTURE for n in graph.nodes.values())


def _fail(graph: Graph, name: str, why: str) -> QuantizationError:
    return QuantizationError(f"{PASS}: {graph.describe(name)} {why}")


def _reset_by_subtraction(graph: Graph, name: str, node: Node) -> None:
    if node.reset != "subtract":  # type: ignore[attr-defined]
        raise _fail(graph, name, f"resets with '{node.reset}'; ACME-1 neurons reset by subtraction only")  # type: ignore[attr-defined]


def neuron_map(graph: Graph, name: str, options: QuantizeOptions) -> NeuronMap:
    """The AcmeLIF form of float neuron ``name`` (IF, LIF or I); ``QuantizationError`` when it has none."""
    node = graph.nodes[name]
    if isinstance(node, IF):
        _reset_by_subtraction(graph, name, node)
        if node.polarity != "unipolar":
            raise _fail(graph, name, "is bipolar; ACME-1 neurons send 0/1 spikes (convert with --decoding membrane)")
        return NeuronMap(np.asarray(node.r), 0, 0, np.asarray(node.v_threshold), np.asarray(node.v_init))
    if isinstance(node, LIF):
        _reset_by_subtraction(graph, name, node)
        if np.any(np.asarray(node.v_leak) != 0):
            raise _fail(graph, name, "has v_leak != 0; ACME-1 membranes leak towards 0")
        decay = np.unique(graph.dt / np.asarray(node.tau, np.float64))
        if decay.size != 1 or not 0 < decay[0] < 1:
            raise _fail(graph, name, f"decays by dt/tau = {decay}; ACME-1 needs one decay in (0, 1) per group")
        shift = round(-math.log2(decay[0]))
        error = abs(2.0**-shift - decay[0]) / decay[0]
        if not 1 <= shift <= LEAK_SHIFT_MAX or error > options.max_rel_error:
            why = f"decays by dt/tau = {decay[0]:.4g} per step; ACME-1 decays by 2^-k (k = 1..{LEAK_SHIFT_MAX}), "
            why += f"nearest 2^-{shift} is {error:.1%} off (max_rel_error={options.max_rel_error}): use tau = dt * 2^k"
            raise _fail(graph, name, why)
        gain = decay[0] * np.asarray(node.r)
        return NeuronMap(gain, shift, 0, np.asarray(node.v_threshold), np.asarray(node.v_init))
    if isinstance(node, I):
        return NeuronMap(np.asarray(node.r), 0, 1, np.asarray(1.0), np.asarray(0.0))
    raise _fail(graph, name, "is not a neuron ACME-1 has (IF, LIF, or I as a readout)")


def _scale(
    gw: np.ndarray, gb: np.ndarray, neuron: NeuronMap, x_max: float, options: QuantizeOptions
) -> tuple[float, str]:
    """The largest σ the layer allows, and the bound that sets it (see the module docstring)."""
    positive = np.clip(gw, 0, None).sum(axis=1) * x_max
    negative = np.clip(-gw, 0, None).sum(axis=1) * x_max
    b = float(np.max(np.abs(gb), initial=0.0))
    bounds = {
        "weights": ((1 << (options.weight_bits - 1)) - 1) / float(np.max(np.abs(gw), initial=0.0)),
        "bias": BIAS_MAX / b if b else math.inf,
    }
    if neuron.readout:
        peak = float(np.max(np.maximum(positive, negative), initial=0.0)) + b
        bounds["membrane"] = V_MAX / (float(np.max(np.abs(neuron.v_init))) + options.timesteps * peak or 1.0)
    else:
        bounds["membrane"] = V_MAX / (float(np.max(neuron.threshold)) + float(np.max(positive, initial=0.0)) + b)
    which = min(bounds, key=lambda k: bounds[k])
    sigma = bounds[which]
    return (sigma, which) if math.isfinite(sigma) else (1.0, "none")


def _rounded(value: np.ndarray) -> np.ndarray:
    return np.round(value).astype(np.int64)


def lower_layer(
    graph: Graph, dense_name: str, neuron_name: str, x_max: float, options: QuantizeOptions
) -> tuple[AcmeDense, AcmeLIF, dict[str, Any]]:
    """One Dense + neuron pair as AcmeDense + AcmeLIF, and the layer's report."""
    dense = graph.nodes[dense_name]
    assert isinstance(dense, Dense)
    neuron = neuron_map(graph, neuron_name, options)
    n_out = dense.weight.shape[0]
    gain = np.broadcast_to(neuron.gain, (n_out,))
    gw = np.asarray(dense.weight, np.float64) * gain[:, None]
    gb = (np.zeros(n_out) if dense.bias is None else np.asarray(dense.bias, np.float64)) * gain
    sigma, bound = _scale(gw, gb, neuron, x_max, options)
    weight, bias = _rounded(sigma * gw), _rounded(sigma * gb)
    threshold = (
        np.ones(n_out, np.int64) if neuron.readout else _rounded(sigma * np.broadcast_to(neuron.threshold, (n_out,)))
    )
    if not neuron.readout and threshold.min() < 1:
        why = f"has thresholds down to {float(np.min(neuron.threshold)):.3g}, which round to 0 at the scale the "
        why += f"{bound} allow (σ = {sigma:.4g}): its weights are too large for its threshold in 8 bits"
        raise _fail(graph, neuron_name, why)
    v_init = _rounded(sigma * np.broadcast_to(neuron.v_init, (n_out,)))
    nodes = (
        AcmeDense(weight=weight, origin=dense.origin),
        AcmeLIF(
            threshold=threshold,
            bias=bias,
            v_init=v_init,
            leak_shift=neuron.leak_shift,
            readout=neuron.readout,
            origin=graph.nodes[neuron_name].origin,
        ),
    )
    peak = float(np.max(np.abs(gw), initial=0.0)) or 1.0
    error = np.abs(weight / sigma - gw) / peak
    report = {
        "synapse": dense_name,
        "neurons": neuron_name,
        "kind": graph.nodes[neuron_name].kind,
        "scale": sigma,
        "bound": bound,
        "leak_shift": neuron.leak_shift,
        "readout": bool(neuron.readout),
        "max_rel_weight_error": float(error.max(initial=0.0)),
        "mean_rel_weight_error": float(error.mean()) if error.size else 0.0,
        "threshold": [int(threshold.min()), int(threshold.max())],
    }
    return nodes[0], nodes[1], report


def _dense_of(graph: Graph, name: str) -> str:
    edges = graph.in_edges(name)
    if len(edges) != 1 or not isinstance(graph.nodes[edges[0].src], Dense):
        raise _fail(graph, name, "must be fed by exactly one Dense (ACME-1 groups read synapse matrices)")
    return edges[0].src


def quantize_acme1(graph: Graph, options: QuantizeOptions) -> QuantizeResult:
    """Lower ``graph`` (see the module docstring); the report has one entry per layer and the output scales."""
    if in_dialect(graph):
        return QuantizeResult(graph, False, {"target": "acme1", "unchanged": True}, ("already in the ACME-1 dialect",))
    options.check()
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    x_max: dict[str, float] = {}  # spike sources: the largest value each sends
    layers: list[dict[str, Any]] = []
    for name in graph.order:
        node = graph.nodes[name]
        ins = graph.in_edges(name)
        if any(e.recurrent for e in ins):
            raise _fail(graph, name, "has a recurrent input; ACME-1 groups are feed-forward")
        if isinstance(node, Input):
            nodes[name], x_max[name] = node, float(options.input_max)
        elif isinstance(node, Flatten | Reshape):
            if len(graph.types[name]) != 1 or ins[0].src not in x_max:
                raise _fail(graph, name, "must flatten a spike source to 1-d (ACME-1 groups are flat)")
            nodes[name], x_max[name] = Flatten(origin=node.origin), x_max[ins[0].src]
            edges.append((ins[0].src, name))
        elif isinstance(node, Dense):
            readers = graph.out_edges(name)
            if len(readers) != 1 or len(ins) != 1 or ins[0].src not in x_max:
                raise _fail(graph, name, "must read one spike source and feed one neuron (IF, LIF or I)")
        elif isinstance(node, IF | LIF | I):
            dense = _dense_of(graph, name)
            source = graph.in_edges(dense)[0].src
            nodes[dense], nodes[name], report = lower_layer(graph, dense, name, x_max[source], options)
            edges += [(source, dense), (dense, name)]
            layers.append(report)
            if not report["readout"]:
                x_max[name] = 1.0
        elif isinstance(node, Output):
            if _group_of(graph, name, IF | LIF | I) is None:
                raise _fail(graph, name, "must show a neuron's output (IF, LIF or I), possibly flattened")
            nodes[name] = node
            edges.append((ins[0].src, name))
        else:
            raise _fail(graph, name, "has no ACME-1 form: the chip takes Dense → IF/LIF/I chains (and Flatten)")
    lowered = Graph(nodes, edges, dt=graph.dt)
    scales = {
        o: next(r["scale"] for r in layers if r["neurons"] == _group_of(lowered, o, AcmeLIF)) for o in lowered.outputs
    }
    report = {"target": "acme1", "layers": layers, "output_scales": scales, "input_max": options.input_max}
    lines = tuple(
        f"{r['neurons']:<20} {r['kind']:<4} σ={r['scale']:.4g} (bound: {r['bound']}) k={r['leak_shift']} "
        f"θ {r['threshold'][0]}..{r['threshold'][1]} weight error max {r['max_rel_weight_error']:.2%}"
        for r in layers
    )
    return QuantizeResult(lowered, True, report, lines)


def _group_of(graph: Graph, name: str, neuron: Any) -> str | None:
    """The neuron (of type ``neuron``) an Output shows through any Flatten/Reshape, or None."""
    src = graph.in_edges(name)[0].src
    while isinstance(graph.nodes[src], Flatten | Reshape):
        src = graph.in_edges(src)[0].src
    return src if isinstance(graph.nodes[src], neuron) else None


def acme1_quantize(
    graph: Graph, *, input_max: float = 1.0, timesteps: int = 256, max_rel_error: float = 0.1
) -> QuantizeResult:
    """Float SNN -> ACME-1 (8-bit weights, shift-decay groups): the chip's own pass, as ``spikec passes`` lists it."""
    return quantize_acme1(graph, QuantizeOptions(input_max=input_max, timesteps=timesteps, max_rel_error=max_rel_error))
