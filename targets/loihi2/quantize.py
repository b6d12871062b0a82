"""``quantize{target=loihi2}``: a float SNN lowered to the Loihi 2 fixed-point dialect (spikec.targets.loihi2.dialect).

Each synapse + neuron pair (``Conv``/``Dense`` with its bias, feeding an ``IF``/``LIF``/``CubaLIF`` or a
readout ``I``) becomes ``LoihiConv``/``LoihiDense`` + ``LoihiLIF`` (targets/loihi2/neurons.py gives the
neuron's decays, input gain γ, bias β and threshold θ). A max-pool of binary spikes becomes an OR
layer: a depthwise ``LoihiConv`` of ones + a ``LoihiLIF`` firing on any input (du = dv = 4095, vth = 0).
``Flatten``/``Reshape`` to 1-d stay. A graph already in the Loihi dialect passes through unchanged.
Sums and concatenations of spike trains, and sums of currents (residuals, membrane shortcuts), become one
synapse per source into the reading neuron, with synaptic delays that align paths of different latency
(targets/loihi2/signals.py; docs/semantics.md, "Spiking-transformer blocks on Loihi").

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

The exponent of a dense layer is the one minimising its squared weight error (targets/loihi2/fixed.py).
The report gives per layer σ, exponent, the relative weight errors, the fields and the headroom
``log2((2²³ − 1)/bound)`` in bits, computed from the integers actually stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.ir import Edge, Flatten, Graph, Input, Level, ann, snn, spatial
from spikec.ir.node import Node
from spikec.ir.structure import Output
from spikec.passes._graphedit import walk_by_kind
from spikec.passes.quantize import QuantizationError, QuantizeResult
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, LoihiLIF, SignMode, sign_mode_of
from spikec.targets.loihi2.fixed import (
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    Grid,
    bias_fields,
    mantissa_grid,
    quantize_weights,
)
from spikec.targets.loihi2.neurons import NEURONS, NO_CURRENT, NeuronMappingError, NeuronSpec
from spikec.targets.loihi2.or_pool import or_conv, or_problem
from spikec.targets.loihi2.pooling import fold_into_conv, fold_into_dense, pool_problem, pooled
from spikec.targets.loihi2.quantize_report import STATE_MAX, QuantizeOptions, layer_report, report_lines
from spikec.targets.loihi2.signals import Signal, Term, currents_into, terms_of

VTH_MAX = 1 << 17
ACT = 1 << 6  # a_in enters u as a_in << 6; vth enters as vth << 6
MAX_DELAY = 62  # Lava DelayDense / netx: 6-bit synaptic delays


class _Lowering:
    """Walks the float graph in order, emitting Loihi nodes; one handler per node kind (HANDLERS)."""

    def __init__(self, graph: Graph, options: QuantizeOptions) -> None:
        self.graph, self.options = graph, options
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.signals: dict[str, Signal] = {}
        self.layers: list[dict[str, Any]] = []
        self.outputs: dict[str, list[dict[str, Any]]] = {}  # float Output -> the lowered Outputs showing its terms
        self.current_sums: set[str] = set()  # Adds of currents: they exist only as the synapses of their readers

    def emit(self, name: str, node: Node, src: str | None) -> str:
        self.nodes[name] = node
        if src is not None:
            self.edges.append((src, name))
        return name

    def source(self, name: str) -> Signal:
        edge = self.single_input(name)
        if edge.src not in self.signals:
            node = self.graph.nodes[edge.src]
            raise QuantizationError(
                f"{self.graph.describe(name)}: its input {self.graph.describe(edge.src)} ({node.kind}) is not a "
                "spike source on Loihi: a synapse (Conv/Dense) must feed a neuron (IF/LIF/CubaLIF/I)"
            )
        return self.signals[edge.src]

    def single_input(self, name: str) -> Edge:
        edges = self.graph.in_edges(name)
        if len(edges) != 1:
            raise self.fail(name, f"has {len(edges)} inputs; quantize{{target=loihi2}} lowers chains of layers")
        return edges[0]

    def fail(self, name: str, why: str) -> QuantizationError:
        return QuantizationError(f"quantize{{target=loihi2}}: {self.graph.describe(name)} {why}")


# -- handlers ---------------------------------------------------------------------------------------------
def _input(low: _Lowering, name: str, node: Node) -> None:
    bits = 0 if low.options.input_max == 1 else int(low.options.input_max).bit_length() + 1
    low.signals[name] = Signal(low.emit(name, node, None), low.options.input_max, bits)


def _output(low: _Lowering, name: str, node: Node) -> None:
    """One Output per spike source: a sum of spike trains leaves the chip as its terms (``name.term``); a sum of
    currents through a non-firing probe LIF without memory (``name.probe``, read its v)."""
    (edge,) = low.graph.in_edges(name)
    if edge.src in low.current_sums:
        probe = NeuronSpec(NO_CURRENT, NO_CURRENT, np.asarray(1.0), np.asarray(0.0), None)
        _lower_currents(low, edge.src, name, probe, emit_as=f"{name}.probe")
        low.emit(name, Output(origin=node.origin), f"{name}.probe")
        latency = low.signals[f"{name}.probe"].latency
        low.outputs[name] = [{"node": name, "probe_v": f"{name}.probe", "latency": latency}]
        return
    src = low.source(name)
    if not src.terms:
        low.emit(name, Output(origin=node.origin), _unpooled(low, name).name)
        low.outputs[name] = [{"node": name, "latency": src.latency}]
        return
    low.outputs[name] = []
    for term in src.terms:
        if term.signal.pool is not None:
            raise low.fail(name, "sums a pool's output; on Loihi a pool must feed a Conv or Dense to fold into")
        if term.signal.latency == 0:  # the graph input itself (no synapse on the way): the host has it
            low.outputs[name].append({"host_input": term.signal.name, "latency": 0})
            continue
        shown = low.emit(f"{name}.{term.signal.name}", Output(origin=node.origin), term.signal.name)
        low.outputs[name].append({"node": shown, "latency": term.signal.latency})


def _sum_of_spikes(low: _Lowering, name: str, node: Node) -> None:
    """Add / Concat of spike sources: kept as terms for the synapses that read it (see ``Signal.terms``).
    An Add with a Dense's output among its inputs is a sum of currents, expanded by the neuron reading it."""
    sources = [e.src for e in low.graph.in_edges(name)]
    if isinstance(node, ann.Add) and any(s not in low.signals for s in sources):
        for src in sources:
            if not (src in low.signals or src in low.current_sums or isinstance(low.graph.nodes[src], ann.Dense)):
                raise low.fail(name, f"sums {low.graph.describe(src)}, which is neither a spike source nor a current")
        low.current_sums.add(name)
        return
    terms: list[Term] = []
    offset = 0
    for edge in low.graph.in_edges(name):
        if edge.src not in low.signals:
            raise low.fail(name, f"reads {low.graph.describe(edge.src)}, which is not a spike source on Loihi")
        width = int(np.prod(low.graph.types[edge.src]))
        terms += [dataclasses.replace(t, offset=t.offset + offset) for t in terms_of(low.signals[edge.src], width)]
        offset += width if isinstance(node, ann.Concat) else 0
    if isinstance(node, ann.Concat) and len(low.graph.types[name]) != 1:
        raise low.fail(name, "concatenates tensors that are not flat; run flatten-tokens (or Flatten) first")
    peaks = [t.signal.max_abs for t in terms]
    max_abs = sum(peaks) if isinstance(node, ann.Add) else max(peaks)
    low.signals[name] = Signal(name, max_abs, max(t.signal.message_bits for t in terms), terms=tuple(terms))


def _unpooled(low: _Lowering, name: str) -> Signal:
    src = low.source(name)
    if src.terms:
        raise low.fail(name, "reads a sum or concatenation of spike trains, which on Loihi only a Dense can read")
    if src.pool is not None:
        raise low.fail(name, "takes a sum/avg pool's output; on Loihi a pool must feed a Conv or Dense to fold into")
    return src


def _sum_pool(low: _Lowering, name: str, node: Node) -> None:
    """SumPool/AvgPool: folded into the synapse that follows (targets/loihi2/pooling.py)."""
    src = _unpooled(low, name)
    edge = low.single_input(name)
    shape = low.graph.types[edge.src]
    problem = pool_problem(node, shape)
    if problem:
        raise low.fail(name, problem)
    low.signals[name] = dataclasses.replace(src, pool=pooled(node, shape))


def _flatten(low: _Lowering, name: str, node: Node) -> None:
    if isinstance(node, ann.Reshape) and len(node.shape) != 1:
        raise low.fail(name, f"reshapes to {node.shape}; Loihi graphs flatten to 1-d only (before a Dense)")
    src = low.source(name)
    if src.terms:
        raise low.fail(name, "flattens a sum or concatenation of spike trains; on Loihi only a Dense can read one")
    low.signals[name] = dataclasses.replace(src, name=low.emit(name, Flatten(origin=node.origin), src.name))


def _pending(low: _Lowering, name: str, node: Node) -> None:
    """Conv/Dense: lowered together with the neuron it feeds (see _neuron)."""
    consumers = [e.dst for e in low.graph.out_edges(name)]
    kinds = [type(low.graph.nodes[c]) for c in consumers]
    one_neuron = len(kinds) == 1 and kinds[0] in NEURONS
    if not one_neuron and not (isinstance(node, ann.Dense) and set(kinds) <= {ann.Add}):
        neurons = [k.kind for k in NEURONS]
        raise low.fail(name, f"feeds {consumers}; on Loihi a Conv/Dense feeds exactly one neuron ({neurons}), "
                             "or a Dense a sum of currents (Add) that neurons read")  # fmt: skip


def _max_pool(low: _Lowering, name: str, node: Node) -> None:
    """Max of binary spikes = OR over the window: ones-kernel depthwise conv + a LIF firing on any input
    (any pads, dilation and ceil mode: targets/loihi2/or_pool.py)."""
    src = _unpooled(low, name)
    if src.message_bits != 0:
        raise low.fail(name, "max-pools graded values; Loihi can max-pool binary spikes only (an OR layer)")
    shape = low.graph.types[low.single_input(name).src]
    problem = or_problem(node, shape)
    if problem:
        raise low.fail(name, problem)
    window = or_conv(node, shape)
    conv = LoihiConv(
        weight=window.weight, stride=window.stride, padding=window.padding, groups=shape[0], origin=node.origin
    )
    syn = low.emit(f"{name}.synapse", conv, src.name)
    neuron = LoihiLIF(du=NO_CURRENT, dv=NO_CURRENT, vth=np.asarray(0), origin=node.origin)
    low.signals[name] = Signal(low.emit(name, neuron, syn), 1.0, 0, latency=src.latency + 1)
    low.layers.append({"name": name, "kind": node.kind, "lowered": "OR layer (ones conv + LIF vth=0)"})


def _rate_max_pool(low: _Lowering, name: str, node: Node) -> None:
    raise low.fail(
        name,
        "is a RateMaxPool (max of running spike counts), which Loihi's LIF cannot compute; convert with "
        "maxpool='spikes' (spikec.convert.convert(..., maxpool='spikes')), which quantize lowers to an OR layer",
    )


def _neuron(low: _Lowering, name: str, node: Node) -> None:
    edge = low.single_input(name)
    synapse = low.graph.nodes[edge.src]
    try:
        spec = NEURONS[type(node)](node, low.graph.dt, low.options.reset_to_zero)
    except (NeuronMappingError, ValueError) as err:
        raise low.fail(name, str(err)) from None
    if isinstance(synapse, ann.Conv | ann.Dense):
        width = int(np.prod(low.graph.types[low.single_input(edge.src).src]))
        _lower_layer(low, edge.src, synapse, low.source(edge.src), width, name, spec)
    elif edge.src in low.current_sums or edge.src in low.signals:  # a membrane shortcut, or spikes read directly
        _lower_currents(low, edge.src, name, spec)
    else:
        raise low.fail(name, f"is fed by {synapse.kind} '{edge.src}'; on Loihi a neuron's input is a Conv or Dense")


def _lower_currents(low: _Lowering, src: str, name: str, spec: NeuronSpec, emit_as: str | None = None) -> None:
    """A neuron reading a sum of currents (or a spike source as it is): one Dense over all its sources."""
    currents = currents_into(low.graph, low.signals, src, low.fail)
    synapse = ann.Dense(weight=currents.weight, bias=currents.bias, origin=low.graph.nodes[src].origin)
    neuron = emit_as or name
    _lower_layer(low, f"{neuron}.in", synapse, currents.source, currents.weight.shape[1], name, spec, emit_as)


HANDLERS: dict[type[Node], Callable[[_Lowering, str, Node], None]] = {
    Input: _input,
    Output: _output,
    ann.Flatten: _flatten,
    ann.Reshape: _flatten,
    ann.Conv: _pending,
    ann.Dense: _pending,
    ann.MaxPool: _max_pool,
    spatial.Pool: _max_pool,
    ann.SumPool: _sum_pool,
    ann.AvgPool: _sum_pool,
    snn.RateMaxPool: _rate_max_pool,
    ann.Add: _sum_of_spikes,
    ann.Concat: _sum_of_spikes,
    **{kind: _neuron for kind in NEURONS},
}


# -- one layer ----------------------------------------------------------------------------------------------
def _per_channel(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``value`` (broadcastable to the (C, ...) output) as one number per output channel."""
    full = np.broadcast_to(np.asarray(value, np.float64), shape)
    flat = full.reshape(shape[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise ValueError(f"{what} varies within a channel; Loihi's layer fields are per channel here")
    return flat[:, 0].copy()


def _input_sums(weight: np.ndarray, terms: tuple[Term, ...]) -> tuple[float, float]:
    """Largest positive and negative synaptic input of one neuron in one step (every input at its maximum):
    binary spikes bring only the positive (or negative) weights, graded values of either sign all of them."""
    flat = weight.reshape(weight.shape[0], -1)
    pos, neg = np.zeros(flat.shape[0]), np.zeros(flat.shape[0])
    for term in terms:
        cols = flat if len(terms) == 1 else flat[:, term.offset : term.offset + term.width]
        x_max = term.signal.max_abs
        if term.signal.message_bits != 0:
            both = np.sum(np.abs(cols), axis=1) * x_max
            pos, neg = pos + both, neg + both
        else:
            pos = pos + np.sum(np.maximum(cols, 0), axis=1) * x_max
            neg = neg + np.sum(np.maximum(-cols, 0), axis=1) * x_max
    return float(np.max(pos)), float(np.max(neg))


def _grid(low: _Lowering, name: str, weight: np.ndarray) -> tuple[Grid, SignMode]:
    if low.options.sign_mode == "auto":
        mode = sign_mode_of(weight)
    else:
        try:
            mode = SignMode[low.options.sign_mode.upper()]
        except KeyError:
            known = "auto, mixed, excitatory, inhibitory"
            raise low.fail(name, f"sign_mode={low.options.sign_mode!r} is not one of {known}") from None
        lo, hi = float(np.min(weight)), float(np.max(weight))
        if (mode == SignMode.EXCITATORY and lo < 0) or (mode == SignMode.INHIBITORY and hi > 0):
            raise low.fail(name, f"has weights in [{lo:g}, {hi:g}], which sign_mode={mode.name.lower()} cannot hold")
    return mantissa_grid(mode, low.options.weight_bits), mode


def _lower_layer(low: _Lowering, syn_name: str, synapse: ann.Conv | ann.Dense, src: Signal, width: int, name: str,
                 spec: NeuronSpec, emit_as: str | None = None) -> None:  # fmt: skip
    """Synapse(s) + LoihiLIF for neuron ``name`` (emitted as ``emit_as`` when given) reading ``src``."""
    terms = terms_of(src, width)
    if src.terms and (not isinstance(synapse, ann.Dense) or any(t.signal.pool for t in terms)):
        raise low.fail(syn_name, "reads a sum or concatenation of spike trains; on Loihi only a Dense (no pool) can")
    if src.pool is not None:
        try:
            fold = fold_into_conv if isinstance(synapse, ann.Conv) else fold_into_dense
            synapse = fold(synapse, src.pool)
        except ValueError as err:
            raise low.fail(syn_name, f"follows a pool it cannot absorb: {err}") from None
    out_shape = low.graph.types[name]
    weight = np.asarray(synapse.weight, np.float64)
    if not np.all(np.isfinite(weight)):
        raise low.fail(syn_name, "has NaN or infinite weights, which no fixed-point weight can represent")
    try:
        gain = _per_channel(spec.gain, out_shape, "the neuron's input gain")
        bias_lin = np.zeros(out_shape[0]) if synapse.bias is None else np.asarray(synapse.bias, np.float64)
        # the synapse's bias: Loihi has no bias on u, so a decaying current's bias enters v at its steady state
        beta = gain * bias_lin * _current_gain(spec.du) + _per_channel(spec.bias, out_shape, "the neuron's leak bias")
        theta = None if spec.threshold is None else _per_channel(spec.threshold, out_shape, "v_threshold")
    except ValueError as err:
        raise low.fail(name, str(err)) from None
    if not np.all(np.isfinite(beta)) or (theta is not None and not np.all(np.isfinite(theta))):
        raise low.fail(name, "has a NaN or infinite bias or threshold")
    w = weight * gain.reshape((-1,) + (1,) * (weight.ndim - 1))  # weights in v units
    conv = isinstance(synapse, ann.Conv)
    grid, mode = _grid(low, syn_name, w)
    hold = _current_gain(spec.du)
    if hold != 1 and np.any(bias_lin):
        spec = dataclasses.replace(spec, approximations=(*spec.approximations, "synapse bias at its steady state in v"))
    pos, neg = (hold * s for s in _input_sums(w, terms))
    limits = {"u (24-bit)": STATE_MAX / max(pos, neg, 1e-300)}
    steps = 1 if spec.dv >= NO_CURRENT else low.options.timesteps  # v a readout holds: one step, or all of them
    if theta is None:
        per_step = max(pos, neg) + float(np.max(np.abs(beta)))
        limits["readout v over timesteps"] = STATE_MAX / (steps * per_step)
    else:
        limits["v (24-bit)"] = STATE_MAX / (np.max(theta) + pos + max(float(np.max(beta)), 0.0))
        limits["vth (17-bit)"] = ACT * VTH_MAX / max(float(np.max(theta)), 1e-300)
    if np.any(beta):
        limits["bias (13-bit mantissa, exp <= 7)"] = BIAS_MANT_MAX * 2**BIAS_EXP_MAX / float(np.max(np.abs(beta)))
    limits["weight mantissa"] = ACT * grid.fits(w) * (1 if conv else 2**7)
    binding = min(limits, key=lambda k: limits[k])
    for _ in range(40):  # shrink until the stored integers (not just the float estimate) fit
        sigma = min(limits.values()) * 0.999
        fields = _fields(w, sigma, grid, conv, beta, theta)
        bound = _bounds(fields, terms, theta is not None, hold, steps)
        if max(bound.values()) <= STATE_MAX:
            break
        limits[binding] = sigma * 0.99  # the stored integers overshoot the float estimate: shrink a little
    _check_layer(low, syn_name, name, w, fields, sigma, theta, binding, pos, neg)
    latency = max(t.signal.latency for t in terms) + 1
    synapses = _emit_synapses(low, syn_name, synapse, terms, fields, mode, latency)
    lif = LoihiLIF(
        du=spec.du,
        dv=spec.dv,
        vth=_channel_field(fields["vth"], out_shape),
        bias_mant=_channel_field(fields["bias_mant"], out_shape),
        bias_exp=_channel_field(fields["bias_exp"], out_shape),
        origin=low.graph.nodes[name].origin,
    )
    neuron = low.emit(emit_as or name, lif, None)
    low.edges += [(syn, neuron) for syn in synapses]
    low.signals[neuron] = Signal(neuron, 1.0, 0, latency=latency)
    layer = layer_report(syn_name, neuron, synapse, spec, w, fields, sigma, bound, binding, mode)
    if len(synapses) > 1:
        layer["synapses"] = synapses
    low.layers.append(layer)


def _emit_synapses(low: _Lowering, syn_name: str, synapse: ann.Conv | ann.Dense, terms: tuple[Term, ...],
                   fields: dict[str, Any], mode: SignMode, latency: int) -> list[str]:  # fmt: skip
    """One Loihi synapse per spike source; a source that is ahead gets a synaptic delay so all arrive together."""
    names = []
    for term in terms:
        delay = latency - 1 - term.signal.latency
        if delay > MAX_DELAY:
            raise low.fail(syn_name, f"needs a {delay}-step synaptic delay to align its inputs; Loihi's limit is "
                                     f"{MAX_DELAY}: shorten the residual path")  # fmt: skip
        syn_node: Node
        if isinstance(synapse, ann.Conv):
            syn_node = LoihiConv(
                weight=fields["mantissa"], stride=synapse.stride, padding=synapse.padding, dilation=synapse.dilation,
                groups=synapse.groups, num_message_bits=term.signal.message_bits, origin=synapse.origin,
            )  # fmt: skip
        else:
            mantissa = fields["mantissa"]
            syn_node = LoihiDense(
                weight=mantissa if len(terms) == 1 else mantissa[:, term.offset : term.offset + term.width],
                weight_exp=fields["exponent"], num_weight_bits=low.options.weight_bits, sign_mode=mode.value,
                num_message_bits=term.signal.message_bits, delay=np.asarray(delay) if delay else None,
                origin=synapse.origin,
            )  # fmt: skip
        name = syn_name if len(terms) == 1 else f"{syn_name}.{term.signal.name}"
        names.append(low.emit(name, syn_node, term.signal.name))
    return names


def _fields(
    w: np.ndarray, sigma: float, grid: Grid, conv: bool, beta: np.ndarray, theta: np.ndarray | None
) -> dict[str, Any]:
    """Every stored integer of the layer at scale ``sigma`` (plus the float weights they stand for)."""
    target = w * sigma / ACT
    q = quantize_weights(target, grid, range(0, 1) if conv else range(-8, 8))
    mant, exp = bias_fields(beta * sigma)
    vth = np.full(beta.shape, VTH_MAX) if theta is None else np.clip(np.round(theta * sigma / ACT), 0, VTH_MAX)
    return {"mantissa": q.mantissa, "exponent": q.exponent, "weight": q.value() * ACT / sigma,
            "bias_mant": mant, "bias_exp": exp, "vth": vth.astype(np.int64)}  # fmt: skip


def _current_gain(du: int) -> float:
    """How far u can grow over one step's input: 1 without current memory (du = 4095), else the
    geometric sum 4096/(du + 1) of a current decaying by (du + 1)/4096 per step."""
    return 4096.0 / max(du + 1, 1)


def _bounds(fields: dict[str, Any], terms: tuple[Term, ...], firing: bool, hold: float, steps: int) -> dict[str, float]:
    """Worst-case |u| and v (integers as stored) for the report and the 24-bit check."""
    stored = fields["mantissa"] * 2.0 ** fields["exponent"]
    pos, neg = (hold * s for s in _input_sums(stored, terms))
    b = fields["bias_mant"] * 2.0 ** fields["bias_exp"]
    u = ACT * max(pos, neg)
    if firing:
        return {"u": u, "v": float(np.max(ACT * fields["vth"] + ACT * pos + np.maximum(b, 0)))}
    return {"u": u, "v": steps * (u + float(np.max(np.abs(b))))}


def _check_layer(low: _Lowering, syn: str, name: str, w: np.ndarray, fields: dict[str, Any], sigma: float,
                 theta: np.ndarray | None, binding: str, pos: float, neg: float) -> None:  # fmt: skip
    w_max = float(np.max(np.abs(w))) or 1.0
    if (theta is not None and np.any(fields["vth"] < 1)) or np.max(np.abs(fields["mantissa"])) == 0:
        raise QuantizationError(
            f"quantize{{target=loihi2}}: layer {low.graph.describe(syn)} -> '{name}' cannot fit Loihi's 24-bit state: "
            f"one step can bring [{-neg:.4g}, {pos:.4g}] (float units, every input at its maximum) against a "
            f"threshold of {float(np.max(theta)) if theta is not None else 0:.4g}; to keep u and v within ±{STATE_MAX} "
            f"({binding} binds) the scale must be <= {sigma:.4g}, where the threshold or the largest weight "
            f"(|w| <= {w_max:.4g}) rounds to 0. Lower input_max (scale graded inputs down), split the layer's fan-in, "
            "or rebalance thresholds higher (threshold-balance with a larger percentile)"
        )
    err = np.abs(fields["weight"] - w) / w_max
    if float(np.max(err)) > low.options.max_rel_error:
        quantum = 2.0 ** fields["exponent"] * ACT / sigma
        raise QuantizationError(
            f"quantize{{target=loihi2}}: layer {low.graph.describe(syn)} has weights in [{np.min(w):.4g}, "
            f"{np.max(w):.4g}] (times the neuron's gain), but at the scale the 24-bit state allows ({binding} binds) "
            f"its {low.options.weight_bits}-bit mantissas hold steps of {quantum:.4g} up to "
            f"{quantum * np.max(np.abs(fields['mantissa'])) if np.any(fields['mantissa']) else quantum:.4g}: "
            f"the largest weight error is {float(np.max(err)):.3g} of the largest weight (max_rel_error="
            f"{low.options.max_rel_error}). Raise max_rel_error, use more weight_bits, or lower input_max/timesteps"
        )


def _channel_field(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-channel field broadcastable to the neuron's (C, ...) shape; one scalar when all channels agree."""
    values = np.asarray(values, np.int64)
    if np.all(values == values[0]):
        return np.asarray(values[0])
    return values.reshape((-1,) + (1,) * (len(shape) - 1))


def _latency(graph: Graph) -> int:
    """Synapses on the longest input->output path: Loihi delivers each synapse's output one step late."""
    depth: dict[str, int] = {}
    for name in graph.order:
        node = graph.nodes[name]
        before = max((depth[e.src] for e in graph.in_edges(name) if not e.recurrent), default=0)
        delay = int(np.max(node.delay)) if isinstance(node, LoihiDense) and node.delay is not None else 0
        depth[name] = before + int(isinstance(node, LoihiConv | LoihiDense)) + delay
    return max((depth[n] for n in graph.outputs), default=0)


def _already_loihi(graph: Graph) -> bool:
    return all(n.level in (Level.FIXED, Level.STRUCTURE) or isinstance(n, Flatten) for n in graph.nodes.values())


def quantize_loihi2(graph: Graph, options: QuantizeOptions) -> QuantizeResult:
    """Lower the float SNN ``graph`` to the Loihi dialect; the report lists every layer (module docstring)."""
    if not 2 <= options.weight_bits <= 8:
        raise QuantizationError(f"quantize: weight_bits={options.weight_bits} must be 2..8 (Loihi's weight mantissas)")
    if _already_loihi(graph):
        report = {"target": "loihi2", "unchanged": True, "layers": []}
        return QuantizeResult(graph, False, report, tuple(report_lines(report)))
    low = _Lowering(graph, options)
    walk_by_kind(graph, HANDLERS, low, low.fail, recurrent="quantize{target=loihi2} lowers feed-forward SNNs",
                 unknown="has no Loihi lowering")  # fmt: skip
    lowered = Graph(low.nodes, low.edges, dt=graph.dt)
    readouts = [layer["name"] for layer in low.layers if layer.get("readout")]
    report = {
        "target": "loihi2", "unchanged": False, "latency_steps": _latency(lowered), "input_max": options.input_max,
        "input_message_bits": next((s.message_bits for n, s in low.signals.items() if graph.nodes[n].graph_input), 0),
        "readouts": readouts, "outputs": low.outputs, "layers": low.layers,
    }  # fmt: skip
    return QuantizeResult(lowered, True, report, tuple(report_lines(report)))
