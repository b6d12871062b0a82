r"""One neuron layer of ``quantize{target=loihi2}``: the value it reads (an ``Affine``), realized as Loihi synapses,
quantized at one scale σ with the neuron (targets/loihi2/quantize.py's docstring gives the bounds).

Each term of the value becomes a synapse from its source: into a (C, H, W) layer a ``LoihiConv`` (its map as
one correlation, groups found again after composition; Lava ``Conv``), into a flat layer a ``LoihiDense`` (its
map as a matrix over the flattened source; Lava ``Dense``/``Sparse``). Terms of one source with the same geometry
are summed into one synapse. Every synapse of the layer arrives in the same step: a source that is ahead is held
back by a synaptic delay (``LoihiDense.delay``: Lava ``DelayDense``/``DelaySparse``; ``LoihiConv.delay``: Lava
``DelaySparse`` over the conv's connectivity), at most ``MAX_DELAY`` steps, or by relay layers; or, reading on
arrival, each is read as it comes (targets/loihi2/alignment.py chooses).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from spikec.ir import Flatten, Graph
from spikec.ir.node import Node
from spikec.passes.quantize import QuantizationError
from spikec.targets.loihi2 import delay_relay
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, LoihiLIF, SignMode, sign_mode_of
from spikec.targets.loihi2.fixed import BIAS_EXP_MAX, BIAS_MANT_MAX, Grid, bias_fields, mantissa_grid, quantize_weights
from spikec.targets.loihi2.linear import ConvMap, MatrixMap, as_matrix, identity, regroup
from spikec.targets.loihi2.neurons import NeuronSpec
from spikec.targets.loihi2.quantize_report import STATE_MAX, QuantizeOptions, layer_report
from spikec.targets.loihi2.signals import Affine, Signal, Value

VTH_MAX = 1 << 17
ACT = 1 << 6  # a_in enters u as a_in << 6; vth enters as vth << 6
MAX_DELAY = 62  # Lava DelayDense / DelaySparse / netx: 6-bit synaptic delays
START_INTERVAL = 1 << 24  # a neuron's one reset, when its first input arrives, recurs after this many steps


def start_reset(latency: int, early: bool) -> dict[str, int]:
    """LoihiLIF fields that zero u and v once, in the step the first input arrives (1-based ``latency + 1``), for a
    layer that something ``early`` reaches before then (its own bias, or spikes of an early source).

    Loihi delivers a layer's input ``latency`` steps late but adds its bias from step 0: without the reset a
    layer would start with ``latency`` steps of bias in v (and fire on it). Reset there, every layer runs as the
    float neuron does from its step 0, shifted by its latency; the spikes it sent before reach the next layer
    before that one's own reset. (lava-dl's ``Network(reset_interval, reset_offset)`` staggers resets the same way.)
    """
    return {"reset_interval": START_INTERVAL, "reset_offset": latency + 1} if early else {}


class Lowering:
    """The lowered graph being built, node by node, and what each float node's value is on Loihi."""

    def __init__(self, graph: Graph, options: QuantizeOptions, arrival: bool = False,
                 relay_budget: int | None = None) -> None:  # fmt: skip
        self.graph, self.options = graph, options
        self.arrival = arrival  # read every source as it arrives: no aligning delays (targets/loihi2/alignment.py)
        self.relay_budget = relay_budget  # stop (RelaysOutnumberNeurons) when the relays pass this many neurons
        self.relay_neurons = 0
        self.shared: dict[str, int] = {}  # parts computed once, and their readers (shared_relay.py)
        self.shared_neurons = 0
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.values: dict[str, Value] = {}
        self.layers: list[dict[str, Any]] = []
        self.outputs: dict[str, list[dict[str, Any]]] = {}  # float Output -> the lowered Outputs showing its terms
        self.host_bias: dict[str, np.ndarray] = {}  # readout -> the bias per step (v units) the host adds to its v

    def emit(self, name: str, node: Node, src: str | None) -> str:
        self.nodes[name] = node
        if src is not None:
            self.edges.append((src, name))
        return name

    def fail(self, name: str, why: str) -> QuantizationError:
        return QuantizationError(f"quantize{{target=loihi2}}: {self.graph.describe(name)} {why}")


@dataclasses.dataclass
class Synapse:
    """One realized synapse, in float units before quantization: conv weights (O, C/groups, kh, kw) with ``geometry``,
    or a matrix (N, size of the flattened source)."""

    source: Signal
    weight: np.ndarray
    geometry: ConvMap | None = None
    name: str = ""


def realize(value: Affine, shape: tuple[int, ...], fail: Any) -> list[Synapse]:
    """The synapses a neuron layer of ``shape`` reading ``value`` gets (module docstring)."""
    merged: dict[tuple[Any, ...], Synapse] = {}
    for term in value.terms:
        if len(shape) == 3:
            m = term.map if term.map is not None else identity(term.source.shape)
            if not isinstance(m, ConvMap) or m.flat:
                raise fail(f"reads {term.source.name} flattened into a (C, H, W) layer; Loihi's Conv cannot")
            full = np.zeros((shape[0], *m.expanded().shape[1:]))
            full[term.offset : term.offset + m.out_shape[0]] = m.expanded()
            key: tuple[Any, ...] = (term.source.name, full.shape[2:], m.stride, m.padding, m.dilation)
            syn = Synapse(term.source, full, m.replace(weight=full, groups=1))
        else:
            if term.map is None:
                part: np.ndarray = np.eye(term.length)
            elif isinstance(term.map, MatrixMap):
                part = term.map.weight
            else:
                part = as_matrix(term.map)
            full = part
            if part.shape[0] != shape[0]:  # a concatenated part: its rows of the layer
                full = np.zeros((shape[0], part.shape[1]))
                full[term.offset : term.offset + part.shape[0]] = part
            key, syn = (term.source.name,), Synapse(term.source, full)
        if key in merged:
            merged[key].weight = merged[key].weight + syn.weight
        else:
            merged[key] = syn
    synapses = list(merged.values())
    for syn in synapses:
        if syn.geometry is not None:
            weight, groups = regroup(syn.weight)
            syn.weight, syn.geometry = weight, syn.geometry.replace(weight=weight, groups=groups)
    return synapses


# -- quantizing one layer -----------------------------------------------------------------------------------
def _per_channel(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``value`` (broadcastable to the (C, ...) output) as one number per output channel."""
    full = np.broadcast_to(np.asarray(value, np.float64), shape)
    flat = full.reshape(shape[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise ValueError(f"{what} varies within a channel; Loihi's layer fields are per channel here")
    return flat[:, 0].copy()


def _input_sums(weights: list[np.ndarray], sources: list[Signal]) -> tuple[float, float]:
    """Largest positive and negative synaptic input of one neuron in one step (every input at its maximum):
    binary spikes bring only the positive (or negative) weights, graded values of either sign all of them."""
    pos = neg = np.zeros(weights[0].shape[0])
    for weight, source in zip(weights, sources, strict=True):
        rows = weight.reshape(weight.shape[0], -1)
        if source.message_bits != 0:
            both = np.sum(np.abs(rows), axis=1) * source.max_abs
            pos, neg = pos + both, neg + both
        else:
            pos = pos + np.sum(np.maximum(rows, 0), axis=1) * source.max_abs
            neg = neg + np.sum(np.maximum(-rows, 0), axis=1) * source.max_abs
    return float(np.max(pos)), float(np.max(neg))


def weight_grid(low: Lowering, name: str, weight: np.ndarray) -> tuple[Grid, SignMode]:
    """The mantissa grid and sign mode of a layer's weights (``sign_mode`` option: auto, or the one asked, checked)."""
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


def _current_gain(du: int) -> float:
    """How far u can grow over one step's input: 1 without current memory (du = 4095), else the
    geometric sum 4096/(du + 1) of a current decaying by (du + 1)/4096 per step."""
    return 4096.0 / max(du + 1, 1)


def lower_neuron(low: Lowering, value: Affine, name: str, spec: NeuronSpec, syn_name: str,
                 emit_as: str | None = None) -> Signal:  # fmt: skip
    """Synapses + LoihiLIF for float neuron ``name`` (emitted as ``emit_as`` when given) reading ``value``."""
    out_shape = low.graph.types[name] if emit_as is None else value.shape
    synapses = realize(value, out_shape, lambda why: low.fail(name, why))
    conv = len(out_shape) == 3
    try:
        gain = _per_channel(spec.gain, out_shape, "the neuron's input gain")
        bias_lin = np.zeros(out_shape) if value.bias is None else np.broadcast_to(value.bias, out_shape)
        # the synapses' bias: Loihi has no bias on u, so a decaying current's bias enters v at its steady state
        channel = (-1,) + (1,) * (len(out_shape) - 1)
        beta = gain.reshape(channel) * bias_lin * _current_gain(spec.du)
        beta = beta + _per_channel(spec.bias, out_shape, "the neuron's leak bias").reshape(channel)
        theta = None if spec.threshold is None else _per_channel(spec.threshold, out_shape, "v_threshold")
    except ValueError as err:
        raise low.fail(name, str(err)) from None
    weights = [syn.weight * gain.reshape((-1,) + (1,) * (syn.weight.ndim - 1)) for syn in synapses]  # v units
    if not all(np.all(np.isfinite(w)) for w in weights):
        raise low.fail(syn_name, "has NaN or infinite weights, which no fixed-point weight can represent")
    if not np.all(np.isfinite(beta)) or (theta is not None and not np.all(np.isfinite(theta))):
        raise low.fail(name, "has a NaN or infinite bias or threshold")
    every = _joined(weights)
    grid, mode = weight_grid(low, syn_name, every)
    hold = _current_gain(spec.du)
    if hold != 1 and value.bias is not None:
        spec = dataclasses.replace(spec, approximations=(*spec.approximations, "synapse bias at its steady state in v"))
    sources = [syn.source for syn in synapses]
    steps = _steps_held(spec, low.options)
    # a conv keeps exponent 0 (Lava's Conv has none); in a layer that reads a shared part's relay, each 1×1 synapse
    # has its own exponent (a LoihiConv with weight_exp: Lava's Sparse, one weight per neuron; shared_relay.py)
    shared = conv and any(s.shared for s in sources)
    own = [shared and _pointwise(syn) for syn in synapses]
    fit = _fit(low, (syn_name, name), weights, sources, beta, theta, grid, (conv, own), hold, steps)
    host_bias = None
    if fit.problem and theta is None and spec.dv == 0 and np.any(beta):
        # a readout integrator whose constant input leaves its weights no levels in v's 24 bits over T steps
        # (the bias dwarfs what the spikes bring): the bias goes to the host, which adds it when it reads v
        without = _fit(low, (syn_name, name), weights, sources, np.zeros_like(beta), theta, grid, (conv, own), hold,
                       steps)  # fmt: skip
        if without.problem is None:
            fit, host_bias = without, beta * without.sigma
    if fit.problem:
        raise QuantizationError(fit.problem)
    sigma, fields, bound, binding = fit.sigma, fit.fields, fit.bound, fit.binding
    stored = _joined(fields["weight"])
    latency = max(s.latency for s in sources) + 1
    early = bool(np.any(fields["bias_mant"])) or any(s.early for s in sources)
    early = early or (low.arrival and any(s.latency < latency - 1 for s in sources))  # a faster source is early
    names = _emit_synapses(low, syn_name, synapses, fields, mode, latency)
    lif = LoihiLIF(
        du=spec.du, dv=spec.dv, vth=_channel_field(fields["vth"], out_shape),
        bias_mant=_channel_field(fields["bias_mant"], out_shape),
        bias_exp=_channel_field(fields["bias_exp"], out_shape), **start_reset(latency, early),
        origin=low.graph.nodes[name].origin,
    )  # fmt: skip
    neuron = low.emit(emit_as or name, lif, None)
    low.edges += [(syn, neuron) for syn in names]
    view = {**fields, "mantissa": _joined(fields["mantissa"]), "weight": stored}
    layer = layer_report(syn_name, neuron, "Conv" if conv else "Dense", spec, every, view, sigma, bound, binding, mode)
    if len(names) > 1:
        layer["synapses"] = names
    if any(own):  # 1×1 synapses from shared parts' relays, each with its own exponent
        layer["synapse_weight_exp"] = dict(zip(names, (int(e) for e in fields["exponents"]), strict=True))
    if host_bias is not None:
        low.host_bias[neuron] = np.broadcast_to(host_bias, out_shape).reshape(-1)
        layer["bias_on_host"] = True
    low.layers.append(layer)
    return Signal(neuron, tuple(out_shape), 1.0, 0, latency=latency, early=early)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays' values as one vector (a view when there is one: a classifier on a large map is big)."""
    return arrays[0].reshape(-1) if len(arrays) == 1 else np.concatenate([a.ravel() for a in arrays])


def _emit_synapses(low: Lowering, syn_name: str, synapses: list[Synapse], fields: dict[str, Any], mode: SignMode,
                   latency: int) -> list[str]:  # fmt: skip
    """One Loihi synapse per source; a source that is ahead gets a synaptic delay so all arrive together (unless
    ``low.arrival``: each is read as it arrives)."""
    names: list[str] = []
    for syn, mantissa, exponent in zip(synapses, fields["mantissa"], fields["exponents"], strict=True):
        source = syn.source
        delay = 0 if low.arrival else latency - 1 - source.latency
        if delay > MAX_DELAY:
            raise low.fail(syn_name, f"needs a {delay}-step synaptic delay to align its inputs; Loihi's limit is "
                                     f"{MAX_DELAY}: shorten the residual path")  # fmt: skip
        node: Node
        src = source.name
        if syn.geometry is not None:
            g = syn.geometry
            if delay and source.message_bits:
                raise low.fail(syn_name, f"needs a synaptic delay on the graded input {src}, which Lava's "
                                         "DelaySparse does not take: put a layer between")  # fmt: skip
            conv = LoihiConv(
                weight=mantissa, stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups,
                num_message_bits=source.message_bits, delay=delay, weight_exp=int(exponent),
                origin=low.graph.nodes[syn_name].origin
                if syn_name in low.graph.nodes else None,
            )  # fmt: skip
            relays = delay_relay.choose(conv, source, conv.infer_shape([source.shape]), delay)
            if relays:  # the source delayed in relay neurons; the conv keeps its shared kernel
                src = delay_relay.delayed(low, source, delay, relays).name
                conv = dataclasses.replace(conv, delay=0)
            node = conv
        else:
            if len(source.shape) != 1:
                flat = f"{src}.flat"
                if flat not in low.nodes:
                    low.emit(flat, Flatten(), src)
                src = flat
            node = LoihiDense(
                weight=mantissa, weight_exp=fields["exponent"], num_weight_bits=low.options.weight_bits,
                sign_mode=mode.value, num_message_bits=source.message_bits,
                delay=np.asarray(delay) if delay else None,
                origin=low.graph.nodes[syn_name].origin if syn_name in low.graph.nodes else None,
            )  # fmt: skip
        name = syn_name if len(synapses) == 1 else f"{syn_name}.{source.name}"
        while name in low.nodes:
            name += "'"
        names.append(low.emit(name, node, src))
    return names


def _pointwise(syn: Synapse) -> bool:
    """A 1×1 conv synapse, stride 1: stored synapse by synapse it keeps one weight per input a neuron reads."""
    g = syn.geometry
    return g is not None and syn.weight.shape[2:] == (1, 1) and g.stride == (1, 1) and g.padding == (0, 0)


Exponents = tuple[bool, list[bool]]  # (the layer's exponent fixed at 0: a conv, which synapses choose their own)


def _fields(weights: list[np.ndarray], sigma: float, grid: Grid, exponents: Exponents, beta: np.ndarray,
            theta: np.ndarray | None) -> dict[str, Any]:  # fmt: skip
    """Every stored integer of the layer at scale ``sigma`` (plus the float weights they stand for). The weights
    share one exponent (0 for a conv: Lava's Conv has none) but those of the synapses ``exponents`` frees, which
    choose their own (``exponents``: per synapse)."""
    fixed, own = exponents
    shared = [w for w, free in zip(weights, own, strict=True) if not free]
    common = range(0, 1) if fixed else range(-8, 8)
    exponent = 0
    mantissas: list[np.ndarray] = [np.zeros(0) for _ in weights]
    if shared:
        q = quantize_weights(_joined(shared) * (sigma / ACT), grid, common)
        cuts = np.cumsum([w.size for w in shared])[:-1]
        parts = iter(np.split(q.mantissa, cuts))
        exponent = q.exponent
        mantissas = [np.zeros(0) if free else next(parts).reshape(w.shape)
                     for w, free in zip(weights, own, strict=True)]  # fmt: skip
    exps = [exponent] * len(weights)
    for i, (w, free) in enumerate(zip(weights, own, strict=True)):
        if free:
            q = quantize_weights(w.reshape(-1) * (sigma / ACT), grid, range(-8, 8))
            mantissas[i], exps[i] = q.mantissa.reshape(w.shape), q.exponent
    mant, exp = bias_fields(beta * sigma)
    vth = np.full(beta.shape[:1], VTH_MAX) if theta is None else np.clip(np.round(theta * sigma / ACT), 0, VTH_MAX)
    return {"mantissa": mantissas, "exponent": exponent, "exponents": exps,
            "weight": [m * 2.0**e * ACT / sigma for m, e in zip(mantissas, exps, strict=True)],
            "bias_mant": mant, "bias_exp": exp, "vth": vth.astype(np.int64)}  # fmt: skip


def _bounds(fields: dict[str, Any], sources: list[Signal], firing: bool, hold: float, steps: int) -> dict[str, float]:
    """Worst-case |u| and v (integers as stored) for the report and the 24-bit check."""
    stored = [m * 2.0**e for m, e in zip(fields["mantissa"], fields["exponents"], strict=True)]
    pos, neg = (hold * s for s in _input_sums(stored, sources))
    b = fields["bias_mant"] * 2.0 ** fields["bias_exp"]
    u = ACT * max(pos, neg)
    if firing:
        return {"u": u, "v": float(ACT * np.max(fields["vth"]) + ACT * pos + max(float(np.max(b)), 0.0))}
    return {"u": u, "v": steps * (u + float(np.max(np.abs(b))))}


@dataclasses.dataclass(frozen=True)
class Fit:
    """A layer's integers at the largest scale σ its fields and 24-bit state allow, and why they fail to stand for
    the layer (``problem``: the error message), if they do."""

    sigma: float
    fields: dict[str, Any]
    bound: dict[str, float]
    binding: str
    problem: str | None


def _steps_held(spec: NeuronSpec, options: QuantizeOptions) -> int:
    """Steps of input a neuron's v holds at most: one without memory (dv = 4095), else ``timesteps`` (a readout
    integrates all of them; a firing neuron's v is bounded by its threshold instead)."""
    return 1 if spec.dv >= 4095 else options.timesteps


def _fit(low: Lowering, names: tuple[str, str], weights: list[np.ndarray], sources: list[Signal], beta: np.ndarray,
         theta: np.ndarray | None, grid: Grid, exponents: Exponents, hold: float, steps: int) -> Fit:  # fmt: skip
    """σ = the smallest of the limits (quantize.py's docstring), shrunk until the stored integers fit."""
    every = _joined(weights)
    pos, neg = (hold * s for s in _input_sums(weights, sources))
    limits = {"u (24-bit)": STATE_MAX / max(pos, neg, 1e-300)}
    if theta is None:
        per_step = max(pos, neg) + float(np.max(np.abs(beta)))
        limits["readout v over timesteps"] = STATE_MAX / (steps * max(per_step, 1e-300))
    else:
        limits["v (24-bit)"] = STATE_MAX / (np.max(theta) + pos + max(float(np.max(beta)), 0.0))
        limits["vth (17-bit)"] = ACT * VTH_MAX / max(float(np.max(theta)), 1e-300)
    if np.any(beta):
        limits["bias (13-bit mantissa, exp <= 7)"] = BIAS_MANT_MAX * 2**BIAS_EXP_MAX / float(np.max(np.abs(beta)))
    fixed, own = exponents
    if any(own):  # the synapses with exponents of their own reach 2**7 times their mantissas, the others as the layer
        held = [w for w, free in zip(weights, own, strict=True) if not free]
        mantissa_fit = min(grid.fits(_joined(held)) * (1 if fixed else 2**7) if held else np.inf,
                           min(grid.fits(w) * 2**7 for w, free in zip(weights, own, strict=True) if free))  # fmt: skip
    else:
        mantissa_fit = grid.fits(every) * (1 if fixed else 2**7)
    limits["weight mantissa"] = ACT * mantissa_fit
    binding = min(limits, key=lambda k: limits[k])
    for _ in range(40):  # shrink until the stored integers (not just the float estimate) fit
        sigma = min(limits.values()) * 0.999
        fields = _fields(weights, sigma, grid, exponents, beta, theta)
        bound = _bounds(fields, sources, theta is not None, hold, steps)
        if max(bound.values()) <= STATE_MAX:
            break
        limits[binding] = sigma * 0.99  # the stored integers overshoot the float estimate: shrink a little
    problem = _layer_problem(low, names, every, fields, sigma, theta, binding, pos, neg)
    return Fit(sigma, fields, bound, binding, problem)


def _layer_problem(low: Lowering, names: tuple[str, str], w: np.ndarray, fields: dict[str, Any], sigma: float,
                   theta: np.ndarray | None, binding: str, pos: float, neg: float) -> str | None:  # fmt: skip
    """Why the integers at scale ``sigma`` do not stand for the layer (a threshold or every weight rounded to 0,
    or a weight error past ``max_rel_error``), or None."""
    syn, name = names
    where = low.graph.describe(syn) if syn in low.graph.nodes else repr(syn)
    w_max = float(np.max(np.abs(w))) or 1.0
    mantissas = _joined(fields["mantissa"])
    if (theta is not None and np.any(fields["vth"] < 1)) or np.max(np.abs(mantissas)) == 0:
        return (
            f"quantize{{target=loihi2}}: layer {where} -> '{name}' cannot fit Loihi's 24-bit state: "
            f"one step can bring [{-neg:.4g}, {pos:.4g}] (float units, every input at its maximum) against a "
            f"threshold of {float(np.max(theta)) if theta is not None else 0:.4g}; to keep u and v within ±{STATE_MAX} "
            f"({binding} binds) the scale must be <= {sigma:.4g}, where the threshold or the largest weight "
            f"(|w| <= {w_max:.4g}) rounds to 0. Lower input_max (scale graded inputs down), split the layer's fan-in, "
            "or rebalance thresholds higher (threshold-balance with a larger percentile)"
        )
    err = np.abs(_joined(fields["weight"]) - w) / w_max
    if float(np.max(err)) > low.options.max_rel_error:
        quantum = 2.0 ** fields["exponent"] * ACT / sigma
        return (
            f"quantize{{target=loihi2}}: layer {where} has weights in [{np.min(w):.4g}, "
            f"{np.max(w):.4g}] (times the neuron's gain), but at the scale the 24-bit state allows ({binding} binds) "
            f"its {low.options.weight_bits}-bit mantissas hold steps of {quantum:.4g} up to "
            f"{quantum * np.max(np.abs(mantissas)) if np.any(mantissas) else quantum:.4g}: "
            f"the largest weight error is {float(np.max(err)):.3g} of the largest weight (max_rel_error="
            f"{low.options.max_rel_error}). Raise max_rel_error, use more weight_bits, or lower input_max/timesteps"
        )
    return None


def _channel_field(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A field broadcastable to the neuron's (C, ...) shape: one scalar when all agree, one value per channel when
    each channel's agree, else per neuron (a bias that differs at a map's borders, from a padded conv's bias)."""
    values = np.asarray(values, np.int64)
    flat = values.reshape(-1)
    if np.all(flat == flat[0]):
        return np.asarray(flat[0])
    if values.ndim == 1 and values.shape[0] == shape[0]:
        return values.reshape((-1,) + (1,) * (len(shape) - 1))
    full = np.broadcast_to(values, shape).reshape(shape[0], -1)
    if np.all(full == full[:, :1]):
        return full[:, :1].reshape((-1,) + (1,) * (len(shape) - 1)).copy()
    return np.array(np.broadcast_to(values, shape))
