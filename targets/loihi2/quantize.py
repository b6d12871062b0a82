"""``quantize{target=loihi2}``: a float SNN lowered to the Loihi 2 fixed-point dialect (spikec.targets.loihi2.dialect).

Every neuron (``IF``/``LIF``/``CubaLIF``, or a readout ``I``) becomes a ``LoihiLIF`` (targets/loihi2/neurons.py
gives its decays, input gain γ, bias β and threshold θ) fed by synapses from the spike sources its input is a
linear function of. The linear nodes between neuron layers — Conv (strided, grouped, depthwise, dilated), Dense,
sum/average pools (global ones too), per-channel Scale, Add (residuals, membrane shortcuts), Concat, channel
permutations and slices, Flatten, spatial means — are composed into those synapses
(targets/loihi2/affine.py, linear.py): one ``LoihiConv`` or ``LoihiDense`` per source, with synaptic delays
aligning sources of different latency (targets/loihi2/layer.py). A max-pool of binary spikes becomes an OR
layer: a depthwise ``LoihiConv`` of ones + a ``LoihiLIF`` firing on any input (du = dv = 4095, vth = 0), one per
concatenated part. ``Flatten``/``Reshape`` of spikes to 1-d stay. A graph already in the Loihi dialect passes
through unchanged.

**Scale.** Per layer one factor σ maps the float membrane to Loihi's: ``v_int = σ·v``. Then a weight
``w`` (times γ) becomes ``m·2^e ≈ σ/2⁶·γw`` (Loihi adds ``2⁶·a_in`` to u), ``vth = round(σθ/2⁶)`` and the
bias ``b = bias_mant·2^bias_exp ≈ σ(γ·bias + β)``. σ is the largest value for which every field fits
and the worst case of the 24-bit state cannot overflow (threshold balancing puts θ at the layer's
activation scale, so the bound below is what balancing leaves): with ``P``/``N`` the largest positive
and negative synaptic input of a neuron in one step (every input at ``x_max``, ``input_max`` for the
graph input and 1 for spikes),

* u: ``σ·h·max(P, N) ≤ 2²³ − 1`` with ``h = 4096/(du + 1)`` (1 when u keeps no current); v of a firing
  layer: ``σ·(θ + h·P + max(β', 0)) ≤ 2²³ − 1`` (v ≤ θ before the step that fires); v of a readout:
  ``σ·T·(h·max(P, N) + |β'|) ≤ 2²³ − 1`` for ``timesteps`` T;
* ``vth ≤ 2¹⁷``; ``|b| ≤ 4095·2⁷``; conv weights (no exponent) ``σ/2⁶·max|γw| ≤`` the grid's largest mantissa.

A readout whose bias is so much larger than what its spikes bring that no σ holds T steps of both with the
weights within ``max_rel_error`` gets ``bias_mant = 0`` and σ for the spikes alone: the host adds the bias
(``outputs[...]["host_bias"]``, σ·β' per step: ``v + (t − latency)·host_bias`` after t steps).

The exponent of a dense layer is the one minimising its squared weight error (targets/loihi2/fixed.py).
The report gives per layer σ, exponent, the relative weight errors, the fields and the headroom
``log2((2²³ − 1)/bound)`` in bits, computed from the integers actually stored.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import numpy as np

from spikec.ir import Flatten, Graph, Input, Level, ann, snn, spatial
from spikec.ir.node import Node
from spikec.ir.structure import Output
from spikec.passes._graphedit import walk_by_kind
from spikec.passes.quantize import QuantizationError, QuantizeResult
from spikec.targets.loihi2.affine import LINEAR
from spikec.targets.loihi2.alignment import CHOICES as ALIGN_CHOICES
from spikec.targets.loihi2.alignment import lower_aligned
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, LoihiLIF
from spikec.targets.loihi2.layer import Lowering, lower_neuron, start_reset
from spikec.targets.loihi2.linear import NotOneSynapse
from spikec.targets.loihi2.neurons import NEURONS, NO_CURRENT, NeuronMappingError, NeuronSpec
from spikec.targets.loihi2.or_pool import or_conv, or_problem
from spikec.targets.loihi2.quantize_report import QuantizeOptions, report_lines
from spikec.targets.loihi2.shared_relay import relay_part, shared_parts
from spikec.targets.loihi2.signals import Affine, Routed, Signal, Term, Value, lift

HOST_BIAS_DECODE = "v + (t - latency) * host_bias after t steps: the readout's bias per step, added on the host"


def _inputs(low: Lowering, name: str) -> list[Value]:
    values = []
    for edge in low.graph.in_edges(name):
        if edge.src not in low.values:  # pragma: no cover - every handler leaves a value
            raise low.fail(name, f"reads {low.graph.describe(edge.src)}, which has no Loihi value")
        values.append(low.values[edge.src])
    return values


def _affine(low: Lowering, name: str) -> Affine:
    """The node's input as an Affine: its one input's value, or the sum of several (a neuron sums its edges)."""
    values = _inputs(low, name)
    if any(isinstance(v, Routed) for v in values):
        raise low.fail(name, "reads a reshaped/transposed value that is neither a channel permutation of a "
                             "(C, H, W) map nor a flat vector")  # fmt: skip
    if len(values) == 1:
        return lift(values[0])
    shape = low.graph.types[low.graph.in_edges(name)[0].src]
    try:
        value = LINEAR[ann.Add](ann.Add(), values, [shape] * len(values), shape)
    except NotOneSynapse as err:
        raise low.fail(name, str(err)) from None
    assert isinstance(value, Affine)
    return value


# -- handlers ---------------------------------------------------------------------------------------------
def _input(low: Lowering, name: str, node: Node) -> None:
    bits = 0 if low.options.input_max == 1 else int(low.options.input_max).bit_length() + 1
    low.values[name] = Signal(low.emit(name, node, None), low.graph.types[name], low.options.input_max, bits)


def _output(low: Lowering, name: str, node: Node) -> None:
    """One Output per spike source: a sum or concatenation of spike trains leaves the chip as its terms
    (``name.term``); any other linear value through a non-firing probe LIF without memory (``name.probe``)."""
    (value,) = _inputs(low, name)
    if isinstance(value, Signal):
        low.emit(name, Output(origin=node.origin), value.name)
        low.outputs[name] = [{"node": name, "latency": value.latency}]
        if value.name in low.host_bias:  # a readout whose bias the chip could not hold with its weights
            low.outputs[name][0] |= {"host_bias": low.host_bias[value.name].tolist(), "decode": HOST_BIAS_DECODE}
        return
    affine = _affine(low, name)
    if not affine.spikes_only:
        probe = NeuronSpec(NO_CURRENT, NO_CURRENT, np.asarray(1.0), np.asarray(0.0), None)
        shown = lower_neuron(low, affine, name, probe, f"{name}.probe.in", emit_as=f"{name}.probe")
        low.emit(name, Output(origin=node.origin), shown.name)
        low.outputs[name] = [{"node": name, "probe_v": shown.name, "latency": shown.latency}]
        return
    low.outputs[name] = []
    for term in affine.terms:
        part = {} if term.offset == 0 and term.length == affine.shape[0] else {"offset": term.offset}
        if term.source.latency == 0:  # the graph input itself (no synapse on the way): the host has it
            low.outputs[name].append({"host_input": term.source.name, "latency": 0, **part})
            continue
        shown = low.emit(f"{name}.{term.source.name}", Output(origin=node.origin), term.source.name)
        low.outputs[name].append({"node": shown, "latency": term.source.latency, **part})


def _linear(low: Lowering, name: str, node: Node) -> None:
    """A linear node: its value from its inputs' (targets/loihi2/affine.py); spikes flattened stay a Flatten."""
    values = _inputs(low, name)
    out_shape = low.graph.types[name]
    if isinstance(node, ann.Flatten | ann.Reshape) and len(out_shape) == 1 and isinstance(values[0], Signal):
        src = values[0]
        flat = low.emit(name, Flatten(origin=node.origin), src.name)
        low.values[name] = dataclasses.replace(src, name=flat, shape=out_shape)
        if src.name in low.host_bias:
            low.host_bias[flat] = low.host_bias[src.name]
        return
    in_shapes = [low.graph.types[e.src] for e in low.graph.in_edges(name)]
    try:
        value = LINEAR[type(node)](node, values, in_shapes, out_shape)
    except NotOneSynapse as err:
        raise low.fail(name, str(err)) from None
    if name in low.shared and isinstance(value, Affine):  # computed once, read channel by channel
        value = relay_part(low, name, value)
    low.values[name] = value


def _pool(low: Lowering, name: str, node: Node) -> None:
    """ONNX's general Pool: an average is linear; a max becomes OR layers (symmetric pads, full windows)."""
    if getattr(node, "mode", "") == "max":
        _max_pool(low, name, node)
    else:
        _linear(low, name, node)


def _max_pool(low: Lowering, name: str, node: Node) -> None:
    """Max of binary spikes = OR over the window: ones-kernel depthwise conv + a LIF firing on any input, one per
    concatenated part (max is channel-wise, so the max of a Concat is the Concat of the maxes)."""
    (value,) = _inputs(low, name)
    in_shape = low.graph.types[low.graph.in_edges(name)[0].src]
    parts = [Term(value)] if isinstance(value, Signal) else list(_affine(low, name).terms)
    if isinstance(value, Affine) and not value.spikes_only:
        raise low.fail(name, "max-pools a value that is not spikes (a sum or a synapse's output); Loihi max-pools "
                             "binary spikes only, as an OR layer")  # fmt: skip
    if any(t.source.message_bits != 0 for t in parts):
        raise low.fail(name, "max-pools graded values; Loihi can max-pool binary spikes only (an OR layer)")
    covered = sorted((t.offset, t.offset + t.length) for t in parts)
    if any(a[1] > b[0] for a, b in itertools.pairwise(covered)):
        raise low.fail(name, "max-pools a sum of spike trains; Loihi can max-pool spikes (an OR layer), not sums")
    problem = or_problem(node, in_shape)
    if problem:
        raise low.fail(name, problem)
    terms = []
    for term in parts:
        src = term.source
        window = or_conv(node, src.shape)  # any pads, dilation and ceil mode as one symmetric conv (or_pool.py)
        conv = LoihiConv(weight=window.weight, stride=window.stride, padding=window.padding, groups=src.shape[0],
                         origin=node.origin)  # fmt: skip
        label = name if len(parts) == 1 else f"{name}.{src.name}"
        syn = low.emit(f"{label}.synapse", conv, src.name)
        neuron = LoihiLIF(du=NO_CURRENT, dv=NO_CURRENT, vth=np.asarray(0), **start_reset(src.latency + 1, src.early),
                          origin=node.origin)  # fmt: skip
        shape = conv.infer_shape([src.shape])
        signal = Signal(low.emit(label, neuron, syn), shape, 1.0, 0, src.latency + 1, src.early)
        terms.append(Term(signal, None, term.offset))
        low.layers.append({"name": label, "kind": node.kind, "lowered": "OR layer (ones conv + LIF vth=0)"})
    low.values[name] = terms[0].source if isinstance(value, Signal) else Affine(low.graph.types[name], tuple(terms))


def _rate_max_pool(low: Lowering, name: str, node: Node) -> None:
    raise low.fail(
        name,
        "is a RateMaxPool (max of running spike counts), which Loihi's LIF cannot compute; convert with "
        "maxpool='spikes' (spikec.convert.convert(..., maxpool='spikes')), which quantize lowers to an OR layer",
    )


def _neuron(low: Lowering, name: str, node: Node) -> None:
    try:
        spec = NEURONS[type(node)](node, low.graph.dt, low.options.reset_to_zero)
    except (NeuronMappingError, ValueError) as err:
        raise low.fail(name, str(err)) from None
    edges = low.graph.in_edges(name)
    fed_by = low.graph.nodes[edges[0].src]
    syn_name = edges[0].src if len(edges) == 1 and isinstance(fed_by, ann.Conv | ann.Dense) else f"{name}.in"
    low.values[name] = lower_neuron(low, _affine(low, name), name, spec, syn_name)


HANDLERS: dict[type[Node], Callable[[Lowering, str, Node], None]] = {
    Input: _input,
    Output: _output,
    ann.MaxPool: _max_pool,
    spatial.Pool: _pool,
    snn.RateMaxPool: _rate_max_pool,
    **{kind: _linear for kind in LINEAR if kind is not spatial.Pool},
    **{kind: _neuron for kind in NEURONS},
}


def _latency(graph: Graph) -> int:
    """Synapses on the longest input->output path: Loihi delivers each synapse's output one step late."""
    depth: dict[str, int] = {}
    for name in graph.order:
        node = graph.nodes[name]
        before = max((depth[e.src] for e in graph.in_edges(name) if not e.recurrent), default=0)
        delay = 0
        if isinstance(node, LoihiDense) and node.delay is not None:
            delay = int(np.max(node.delay))
        elif isinstance(node, LoihiConv):
            delay = node.delay
        depth[name] = before + int(isinstance(node, LoihiConv | LoihiDense)) + delay
    return max((depth[n] for n in graph.outputs), default=0)


def _already_loihi(graph: Graph) -> bool:
    return all(n.level in (Level.FIXED, Level.STRUCTURE) or isinstance(n, Flatten) for n in graph.nodes.values())


def quantize_loihi2(graph: Graph, options: QuantizeOptions) -> QuantizeResult:
    """Lower the float SNN ``graph`` to the Loihi dialect; the report lists every layer (module docstring)."""
    if not 2 <= options.weight_bits <= 8:
        raise QuantizationError(f"quantize: weight_bits={options.weight_bits} must be 2..8 (Loihi's weight mantissas)")
    if options.align not in ALIGN_CHOICES:
        raise QuantizationError(f"quantize{{target=loihi2}}: align={options.align!r} is not one of "
                                f"{', '.join(ALIGN_CHOICES)} (targets/loihi2/alignment.py)")  # fmt: skip
    from spikec.targets.loihi2.exact import is_exact_snn, quantize_exact

    if is_exact_snn(graph):  # the exact method's SNN: graded spikes and sigma-delta neurons (exact.py)
        return quantize_exact(graph, options)
    if _already_loihi(graph):
        report = {"target": "loihi2", "unchanged": True, "layers": []}
        return QuantizeResult(graph, False, report, tuple(report_lines(report)))

    def lower(arrival: bool, relay_budget: int | None) -> Lowering:
        low = Lowering(graph, options, arrival, relay_budget)
        low.shared = shared_parts(graph) if arrival else {}
        walk_by_kind(graph, HANDLERS, low, low.fail, recurrent="quantize{target=loihi2} lowers feed-forward SNNs",
                     unknown="has no Loihi lowering")  # fmt: skip
        return low

    low, alignment = lower_aligned(graph, options.align, lower, lambda low: low.relay_neurons)
    lowered = Graph(low.nodes, low.edges, dt=graph.dt)
    readouts = [layer["name"] for layer in low.layers if layer.get("readout")]
    inputs = [v for n, v in low.values.items() if graph.nodes[n].graph_input and isinstance(v, Signal)]
    report = {
        "target": "loihi2", "unchanged": False, "latency_steps": _latency(lowered), "input_max": options.input_max,
        "input_message_bits": next((s.message_bits for s in inputs), 0),
        "readouts": readouts, "outputs": low.outputs, "alignment": alignment, "layers": low.layers,
    }  # fmt: skip
    parts = [layer["name"] for layer in low.layers if layer.get("shared_part")]
    if parts:
        report["shared_parts"] = {"parts": len(parts), "relay_neurons": low.shared_neurons}
    return QuantizeResult(lowered, True, report, tuple(report_lines(report)))
