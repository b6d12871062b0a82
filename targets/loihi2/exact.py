r"""The exact method's SNN on Loihi 2: ST-BIF, Accumulate and Difference as graded spikes and sigma-delta neurons.

``spikec compile --method exact`` makes an SNN whose tensors carry at each step the *increment* of a quantized
ANN's value (spikec/convert_exact.py). Loihi 2 carries such increments as graded (integer) spikes, and
Lava 0.10's fixed-point sigma-delta processes compute on them exactly (``quantize_exact``):

* a graph input's ``Difference`` is a ``LoihiDelta`` (vth 0): the host feeds the sample every step, the
  network sees its change, :math:`y_t = x_t - x_{t-1}`; inputs are integers (values as the model takes them);
* every additive node (Dense, Conv, Add, Concat, Reshape, Transpose, a product with a constant, …) and every
  constant fed once (a split-off bias) stays a *current*, :math:`I = \sum_k A_k s_k + b` over the running sums
  :math:`s_k` of integer sources: it exists on Loihi only as the synapses of the neurons that read it
  (``exact_fit``: exponents ≥ 0, so every synapse is exact integer arithmetic);
* an ``STBIF`` (θ, lo..hi) becomes, with :math:`2^p` units per level (``exact_fit.fit_quantizer``: the
  resolution its weights need, p ≤ 16)::

      synapses → SigmaDelta(relu, 2n: biases c − 2^p·lo and that − top) → Dense [I, −I] → Sigma
               → Dense(I, weight_exp −p) → Delta(vth 0)

  the ReLU pair clips the accumulated input to [0, top], top = (hi − lo)·2^p, the sigma holds the clipped
  value, the floor shift divides it into levels, and the delta sends the level's changes:
  :math:`\sum_t y_t = q - lo` with :math:`q = \mathrm{clip}(\lfloor(\sigma + c)/2^p\rfloor, lo, hi)`, the
  quantizer of ``Quantize`` in integers (``c`` holds the bias and the half level of ST-BIF's
  :math:`v_0 = θ/2`). Lava's weight exponent reaches −8, so p > 8 takes two floor shifts, the value relayed
  whole between them (Delta → Dense(I) → Sigma). The constant ``lo`` goes on to the next current;
* Σ → max-pool → Δ is a tree of comparisons, :math:`\max(a, b) = a + \mathrm{relu}(b - a)`, one
  ``SigmaDelta(relu, vth 0)`` layer per level, exact (``_max_pool``);
* a graph output reading a current is a ``SigmaDelta(unit, vth 0)`` readout whose spikes sum to the current.

The sigma-delta neurons send each change whole in the step it occurs, so an ST-BIF reaches its level in one
step (``max_spikes`` ≥ hi − lo); one paced to fewer spikes per step (the default ``max_spikes=1``) runs
unpaced on Loihi, with the same sums once settled (the report's ``approximations``). Every other function
the exact SNN wraps as Σ → f → Δ (Softmax, LayerNorm, GELU, a product of two spiking tensors, …) has no
Loihi neuron: ``host_function_error`` names each with what Loihi's arithmetic lacks. Maps and synapses are
dense matrices (emitted as Lava ``Sparse``) up to ``MAX_ENTRIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np

from spikec.interp import evaluate
from spikec.ir import Flatten, Graph, Input, ann, exact, spatial, tensor
from spikec.ir.node import Node
from spikec.ir.structure import Output
from spikec.passes._exact_rules import is_additive, raw_constant_edges
from spikec.passes.quantize import QuantizationError, QuantizeResult
from spikec.targets.loihi2.dialect import ActMode, LoihiDelta, LoihiDense, LoihiSigma, LoihiSigmaDelta, SignMode
from spikec.targets.loihi2.exact_fit import (
    MAX_SHIFT,
    STATE_MAX,
    Current,
    GradedFields,
    QuantizerFields,
    Spikes,
    Synapses,
    fit_graded,
    fit_quantizer,
    message_bits,
)
from spikec.targets.loihi2.quantize_report import QuantizeOptions

EXACT_KINDS = (exact.STBIF, exact.Accumulate, exact.Difference)
MAX_ENTRIES = 1 << 26  # maps and synapse matrices are built densely (emitted as Lava Sparse) up to this size
RESHAPES = (ann.Identity, ann.Flatten, ann.Reshape)  # keep the flat (C-order) values: nothing to compute

PRODUCT = (
    "a product of two spiking tensors (Loihi's synapses multiply a spike by a fixed weight; spikec's Loihi dialect "
    "has no product neuron)"
)
NEEDS: dict[type[Node], str] = {
    tensor.Softmax: "exp and a division by the row's sum",
    tensor.LayerNorm: "a mean, a variance and a reciprocal square root over the channels",
    tensor.GELU: "erf",
    tensor.MatMul: PRODUCT,
    tensor.Binary: f"{PRODUCT} or a quotient",
    tensor.Unary: "a non-linear elementwise function",
    tensor.Reduce: "a max, min or product over an axis",
}
# max-pooling on Loihi: the additive pool with the same windows gives each output's members
WINDOWS: dict[type[Node], Callable[[Any], Node]] = {
    ann.MaxPool: lambda n: ann.SumPool(kernel_size=n.kernel_size, stride=n.stride, padding=n.padding),
    spatial.Pool: lambda n: n.replace(mode="avg", count_include_pad=0),
}
ARITHMETIC = (
    "Loihi 2's neurons as Lava 0.10 models them (LIF, Sigma, Delta, SigmaDelta) add weighted integer spikes, "
    "shift right and apply ReLU, nothing else"
)


def is_exact_snn(graph: Graph) -> bool:
    """True when ``graph`` is the exact method's SNN (it has ST-BIF, Accumulate or Difference nodes)."""
    return any(isinstance(node, EXACT_KINDS) for node in graph.nodes.values())


def host_functions(graph: Graph) -> list[str]:
    """The nodes the exact SNN runs as Σ → f → Δ (an ``Accumulate`` feeds them) that no Loihi neuron computes
    (all but max-pooling, ``WINDOWS``)."""

    def wrapped(name: str) -> bool:
        return any(isinstance(graph.nodes[e.src], exact.Accumulate) for e in graph.in_edges(name))

    return [n for n in graph.order if wrapped(n) and type(graph.nodes[n]) not in WINDOWS]


def host_function_error(graph: Graph, names: list[str]) -> QuantizationError:
    """One line naming each host function, what it needs, what Loihi's arithmetic offers and what to do."""
    by_kind: dict[type[Node], list[str]] = {}
    for n in names:
        by_kind.setdefault(type(graph.nodes[n]), []).append(n)
    listed = "; ".join(
        f"{kind.kind} {', '.join(_named(graph, n) for n in nodes)} needs {NEEDS.get(kind, 'a non-linear function')}"
        for kind, nodes in by_kind.items()
    )
    return QuantizationError(
        f"quantize{{target=loihi2}}: the exact SNN computes {len(names)} node(s) as accumulate -> f -> difference, "
        f"which no Loihi neuron can: {listed}. {ARITHMETIC}: on Loihi the exact method runs networks whose "
        "non-linearities are ReLUs and max-pools (Linear/Conv + ReLU, pooling; small inputs). Run this model with "
        "--target interp (spikec eval --method exact measures it), or, for Loihi, build it from spiking "
        "transformer blocks (spikec.blocks; targets/loihi2/docs/loihi2-target.md)"
    )


class _Accumulated:
    """The running sum (``Accumulate``) of a current: the value a wrapped function (max-pooling) reads whole."""

    def __init__(self, current: Current) -> None:
        self.current = current


Value: TypeAlias = "Spikes | Current | np.ndarray | _Accumulated | None"  # None: a graph input (its Difference)


def _named(graph: Graph, name: str) -> str:
    origin = graph.nodes[name].origin
    return f"'{name}'" if not origin or origin.endswith(f":{name}") else f"'{name}' ({origin})"


class _ExactLowering:
    """Walks the exact SNN in order; ``values`` holds what each node became (module docstring)."""

    def __init__(self, graph: Graph, options: QuantizeOptions) -> None:
        self.graph, self.options = graph, options
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.values: dict[str, Value] = {}
        self.layers: list[dict[str, Any]] = []
        self.outputs: dict[str, dict[str, Any]] = {}
        self.taken: set[str] = set(graph.nodes)

    def fresh(self, base: str) -> str:
        """``base`` (or ``base.1``, …): a name no node of the SNN nor of the lowered graph has."""
        name, i = base, 0
        while name in self.taken:
            i += 1
            name = f"{base}.{i}"
        self.taken.add(name)
        return name

    def emit(self, name: str, node: Node, *sources: str) -> str:
        self.nodes[name] = node
        self.taken.add(name)
        self.edges += [(src, name) for src in sources]
        return name

    def fail(self, name: str, why: str) -> QuantizationError:
        return QuantizationError(f"quantize{{target=loihi2}}: {self.graph.describe(name)} {why}")

    def source(self, name: str) -> str:
        (edge,) = self.graph.in_edges(name)
        return edge.src

    def dense(self, name: str, rows: int, cols: int, what: str) -> None:
        """Refuse a dense matrix beyond ``MAX_ENTRIES`` (before building it), naming the node."""
        if rows * cols > MAX_ENTRIES:
            raise self.fail(name, f"needs a {rows} x {cols} {what}; the exact Loihi lowering builds maps and synapses "
                                  f"as dense matrices up to {MAX_ENTRIES} entries (Lava Conv synapses for large "
                                  "convolutions are not done): use a smaller input or fewer channels")  # fmt: skip

    def current(self, name: str, src: str) -> Current:
        value = self.values[src]
        if isinstance(value, Spikes):
            self.dense(name, 2 * value.size, value.size, "synapse matrix (two rows per neuron of a quantizer)")
            return Current.of(value)
        if isinstance(value, Current):
            return value
        raise self.fail(name, f"reads {self.graph.describe(src)}, which is not a spike source or a current on Loihi")


Handler = Callable[[_ExactLowering, str, Node], None]


# -- handlers ---------------------------------------------------------------------------------------------
def _input(low: _ExactLowering, name: str, node: Node) -> None:
    low.emit(name, node)
    low.values[name] = None


def _constant(low: _ExactLowering, name: str, node: Node) -> None:
    low.values[name] = np.asarray(node.value, np.float64)  # type: ignore[attr-defined]


def _difference(low: _ExactLowering, name: str, node: Node) -> None:
    """Of a graph input: a Delta neuron (vth 0); of a Constant: its value, fed once; of a max-pool: its value."""
    src = low.source(name)
    value = low.values[src]
    if value is None:
        delta = low.emit(name, LoihiDelta(vth=np.asarray(0), origin=node.origin), src)
        shape = low.graph.types[name]
        shown = low.emit(low.fresh(f"{name}.flat"), Flatten(origin=node.origin), delta) if len(shape) > 1 else delta
        n, x = int(np.prod(shape)), float(low.options.input_max)
        low.values[name] = Spikes(shown, np.ones(n), np.zeros(n), np.full(n, -x), np.full(n, x), 2 * x)
    elif isinstance(value, np.ndarray):
        low.values[name] = Current.constant(np.broadcast_to(value, low.graph.types[name]))
    elif isinstance(value, Spikes | Current):  # after a function computed on chip: its value, as it is
        low.values[name] = value
    else:
        raise low.fail(name, f"takes the change of {low.graph.describe(src)}, which has no Loihi form")


def _accumulate(low: _ExactLowering, name: str, node: Node) -> None:
    low.values[name] = _Accumulated(low.current(name, low.source(name)))


def _max_pool(low: _ExactLowering, name: str, node: Node) -> None:
    r"""Σ → max over each window → Δ as a tree of comparisons, :math:`\max(a, b) = a + \mathrm{relu}(b - a)`: one
    SigmaDelta ReLU layer per level of the tree (all pairs of the level side by side). A window's values are
    levels of one quantizer, so every difference is a whole number of steps and the ReLUs are exact."""
    value = low.values[low.source(name)]
    if not isinstance(value, _Accumulated):
        raise low.fail(name, "is a max-pool outside accumulate -> max -> difference, which the exact SNN never makes")
    (members,) = linear_maps(low, name, [0], WINDOWS[type(node)](node))
    lists = [np.flatnonzero(row) for row in members != 0]
    n = len(lists)
    # slot j: each window's j-th member (a shorter window repeats its last)
    width = max(map(len, lists))
    slots = [value.current.select(np.array([m[min(j, len(m) - 1)] for m in lists])) for j in range(width)]
    while len(slots) > 1:
        pairs = list(zip(slots[0::2], slots[1::2], strict=False))
        gains = Current.stack([b.minus(a) for a, b in pairs])
        relu = _graded(low, name, gains, ActMode.RELU, low.fresh(f"{name}.max"), "max")
        odd = slots[2 * len(pairs) :]
        slots = [a.plus(Current.of(relu, np.arange(i * n, (i + 1) * n))) for i, (a, _) in enumerate(pairs)] + odd
    low.values[name] = slots[0]


def _quantizer(low: _ExactLowering, name: str, node: Node) -> None:
    """ST-BIF → the level resolution its weights need and its integers allow (``fit_quantizer``), then its neurons."""
    assert isinstance(node, exact.STBIF)
    current = low.current(name, low.source(name))
    theta = np.broadcast_to(np.asarray(node.v_threshold, np.float64), low.graph.types[name]).ravel()
    for term in current.terms:
        low.dense(name, 2 * theta.size, term.source.size, "synapse matrix (two rows per neuron)")
    fields, why = fit_quantizer(current, theta, node.lo, node.hi, low.options.weight_bits)
    if fields is None:
        raise low.fail(name, f"has no Loihi form at any of 0..{MAX_SHIFT} bits per level: {why}. Its level "
                             f"(θ = {float(np.min(theta)):.3g}) is small against one unit of what feeds it, and "
                             "Loihi's inputs are integers: scale a model's real-valued inputs up to integers "
                             "(e.g. pixels 0..255, with quantize.input_max=255)")  # fmt: skip
    _check_precision(low, name, fields.synapses, f"{2**fields.shift} units per level")
    bias = _emit_quantizer(low, name, node.origin, current, fields)
    levels = float(node.hi - node.lo)
    n = theta.size
    low.values[name] = Spikes(name, theta, node.lo * theta, np.zeros(n), np.full(n, levels), levels)
    paced = node.max_spikes < node.hi - node.lo
    note = (f"paced at max_spikes={node.max_spikes} in the SNN, unpaced on Loihi (a sigma-delta neuron sends a "
            "change whole): the same sums once settled") if paced else ""  # fmt: skip
    low.layers.append(_layer(name, "STBIF", fields.synapses, bias, [node.lo, node.hi], note, shift=fields.shift,
                             bias_spike_exp=fields.spike_exp, top=fields.top))  # fmt: skip


def _emit_quantizer(
    low: _ExactLowering, name: str, origin: str, current: Current, fields: QuantizerFields
) -> np.ndarray:
    """Synapses → clip pair → merge → Sigma → floor shift(s) → Delta (module docstring); the clip biases as Lava
    applies them."""
    n = current.bias.size
    clip = low.fresh(f"{name}.clip")
    synapses = _synapses(low, clip, current, fields.synapses, copies=2)
    low.emit(clip, LoihiSigmaDelta(vth=np.asarray(0), bias=fields.bias, spike_exp=fields.spike_exp,
                                   act_mode=ActMode.RELU.value, origin=origin), *synapses)  # fmt: skip
    bias = fields.bias * 2**fields.spike_exp  # Lava's SigmaDelta scales its bias field by 2^spike_exp
    largest_change = float(np.max(fields.synapses.sigma_high + bias[:n], initial=0.0))
    # a mixed-sign 8-bit weight keeps only even values in Lava: [2I, -2I], then a right shift by 1 (the sum is even)
    pair = np.hstack([2 * np.eye(n), -2 * np.eye(n)]).astype(np.int64)
    merge = low.emit(low.fresh(f"{name}.merge"), LoihiDense(
        weight=pair, weight_exp=-1, sign_mode=SignMode.MIXED.value, num_message_bits=message_bits(largest_change),
        origin=origin), clip)  # fmt: skip
    last = low.emit(low.fresh(f"{name}.sum"), LoihiSigma(origin=origin), merge)  # the clipped sum, whole
    largest = fields.top
    for k, shift in enumerate(fields.floors):
        if k:  # a value relayed whole to the next floor: its changes (Delta), summed back up (Sigma)
            change = low.emit(low.fresh(f"{name}.change"), LoihiDelta(vth=np.asarray(0), origin=origin), last)
            relay = low.emit(low.fresh(f"{name}.relay"), _identity(n, largest, origin), change)
            last = low.emit(low.fresh(f"{name}.sum"), LoihiSigma(origin=origin), relay)
        last = low.emit(low.fresh(f"{name}.floor"), _identity(n, largest, origin, -shift), last)
        largest >>= shift
    low.emit(name, LoihiDelta(vth=np.asarray(0), origin=origin), last)
    return bias


def _identity(n: int, largest: int, origin: str, exponent: int = 0) -> LoihiDense:
    """A one-to-one graded synapse (weight 1, shifted right by ``-exponent``: a floor division)."""
    return LoihiDense(weight=np.eye(n, dtype=np.int64), weight_exp=exponent, sign_mode=SignMode.EXCITATORY.value,
                      num_message_bits=message_bits(largest), origin=origin)  # fmt: skip


def _output(low: _ExactLowering, name: str, node: Node) -> None:
    """Spikes leave as they are (value = scale·Σy + offset); a current through a readout SigmaDelta (unit)."""
    src = low.source(name)
    value = low.values[src]
    if isinstance(value, Current):
        readout = src if src not in low.nodes else low.fresh(src)  # a current is no node: the readout takes its name
        value = _graded(low, name, value, ActMode.UNIT, readout, "readout")
    if not isinstance(value, Spikes):
        raise low.fail(name, f"shows {low.graph.describe(src)}, which has no Loihi form")
    low.emit(name, Output(origin=node.origin), value.node)
    low.outputs[name] = {
        "node": value.node, "shape": list(low.graph.types[name]), "scale": _compact(value.scale),
        "offset": _compact(value.offset), "decode": "value = scale * (sum of the output over steps) + offset",
    }  # fmt: skip


def _linear(low: _ExactLowering, name: str, node: Node) -> None:
    """An additive node: its flat linear map applied to the currents it reads (reshapes keep them as they are)."""
    edges = low.graph.in_edges(name)
    if isinstance(node, RESHAPES):
        low.values[name] = low.values[edges[0].src]
        return
    raw = raw_constant_edges(low.graph, name)
    dynamic = [j for j in range(len(edges)) if j not in raw]
    shape = low.graph.types[name]
    summed = [j for j in dynamic if isinstance(node, ann.Add) and low.graph.types[edges[j].src] == shape]
    result = Current.constant(np.zeros(int(np.prod(shape))))
    for j in summed:  # an operand of an Add that needs no broadcast passes as it is
        result = result.plus(low.current(name, edges[j].src))
    mapped = [j for j in dynamic if j not in summed]
    for j, matrix in zip(mapped, linear_maps(low, name, dynamic, wanted=mapped), strict=True):
        result = result.plus(low.current(name, edges[j].src).mapped(matrix))
    low.values[name] = result


HANDLERS: dict[type[Node], Handler] = {
    Input: _input,
    Output: _output,
    tensor.Constant: _constant,
    exact.Difference: _difference,
    exact.STBIF: _quantizer,
    exact.Accumulate: _accumulate,
    **{kind: _max_pool for kind in WINDOWS},
}


# -- pieces -----------------------------------------------------------------------------------------------
def linear_maps(
    low: _ExactLowering, name: str, dynamic: list[int], node: Node | None = None, wanted: list[int] | None = None
) -> list[np.ndarray]:
    """The flat matrix (outputs × inputs) of ``name`` (or of ``node`` in its place) in each operand of ``wanted``
    (default ``dynamic``; the operands not in ``dynamic`` are raw Constants): the node run by the interpreter on
    the identity basis, the other operands 0."""
    graph = low.graph
    edges = graph.in_edges(name)
    nodes: dict[str, Node] = {}
    for j, edge in enumerate(edges):
        nodes[f"operand{j}"] = Input(shape=graph.types[edge.src]) if j in dynamic else graph.nodes[edge.src]
    nodes |= {"node": node or graph.nodes[name], "out": Output()}
    mini = Graph(nodes, [(f"operand{j}", "node") for j in range(len(edges))] + [("node", "out")])
    size = int(np.prod(graph.types[name]))
    maps = []
    for j in dynamic if wanted is None else wanted:
        width = int(np.prod(graph.types[edges[j].src]))
        low.dense(name, size, width, "linear map")
        feeds = {f"operand{k}": np.zeros((width, *graph.types[edges[k].src])) for k in dynamic}
        feeds[f"operand{j}"] = np.eye(width).reshape(width, *graph.types[edges[j].src])
        maps.append(evaluate(mini, feeds).outputs["out"].reshape(width, size).T)
    return maps


def _synapses(low: _ExactLowering, into: str, current: Current, fitted: Synapses, copies: int) -> list[str]:
    """One LoihiDense per source of ``current`` into neuron ``into`` (its rows repeated ``copies`` times)."""
    names = []
    for term, mantissa, exponent, mode in zip(current.terms, fitted.mantissas, fitted.exponents, fitted.modes,
                                              strict=True):  # fmt: skip
        base = f"{into}.syn" if len(current.terms) == 1 else f"{into}.syn.{term.source.node}"
        dense = LoihiDense(weight=np.vstack([mantissa] * copies), weight_exp=exponent,
                           num_weight_bits=low.options.weight_bits, sign_mode=mode.value,
                           num_message_bits=term.source.message_bits)  # fmt: skip
        names.append(low.emit(low.fresh(base), dense, term.source.node))
    return names


def _graded(low: _ExactLowering, name: str, current: Current, mode: ActMode, emit_as: str, kind: str) -> Spikes:
    """A SigmaDelta (vth 0) whose spikes are the increments of f(σ + bias), f = ``mode``."""
    if not current.terms:
        raise low.fail(name, "is a constant; Loihi has no neuron without inputs to send it")
    fields: GradedFields | None
    fields, why = fit_graded(current, low.options.weight_bits)
    if fields is None:
        raise low.fail(name, f"has no Loihi form: {why}")
    _check_precision(low, name, fields.synapses, f"scale {fields.rows:.4g} units per unit")
    synapses = _synapses(low, emit_as, current, fields.synapses, copies=1)
    origin = low.graph.nodes[name].origin
    low.emit(emit_as, LoihiSigmaDelta(vth=np.asarray(0), bias=fields.bias, act_mode=mode.value, origin=origin),
             *synapses)  # fmt: skip
    top, bottom = fields.synapses.sigma_high + fields.bias, fields.synapses.sigma_low + fields.bias
    if mode == ActMode.RELU:
        top, bottom = np.maximum(top, 0.0), np.maximum(bottom, 0.0)
    n = current.bias.size
    low.layers.append(_layer(emit_as, kind, fields.synapses, fields.bias, None, "", scale=fields.rows))
    return Spikes(emit_as, np.full(n, 1.0 / fields.rows), np.zeros(n), bottom, top, float(np.max(top - bottom)))


def _check_precision(low: _ExactLowering, name: str, fitted: Synapses, at: str) -> None:
    if fitted.max_rel_error > low.options.max_rel_error:
        raise low.fail(name, f"reads weights that Loihi's {low.options.weight_bits}-bit mantissas with exponents "
                             f"0..7 hold only to {fitted.max_rel_error:.3g} of the largest (at {at}; max_rel_error="
                             f"{low.options.max_rel_error}): raise max_rel_error or rescale the layer")  # fmt: skip


def _layer(name: str, kind: str, fitted: Synapses, bias: np.ndarray, levels: list[int] | None, note: str,
           **fields: Any) -> dict[str, Any]:  # fmt: skip
    sigma = max(float(np.max(np.abs(fitted.sigma_low))), float(np.max(np.abs(fitted.sigma_high))))
    peak = max(sigma, float(np.max(fitted.sigma_high + bias[: fitted.sigma_high.size])), 1.0)
    return {
        "name": name, "kind": kind, **fields, "levels": levels, "weight_exp": list(fitted.exponents),
        "mantissa_range": [int(min((m.min() for m in fitted.mantissas), default=0)),
                           int(max((m.max() for m in fitted.mantissas), default=0))],
        "max_rel_weight_error": fitted.max_rel_error, "mean_rel_weight_error": fitted.mean_rel_error,
        "bias": [int(np.min(bias)), int(np.max(bias))], "sigma_bound": sigma,
        "headroom_bits": float(np.log2(STATE_MAX / peak)),
        "approximations": [note] if note else [],
    }  # fmt: skip


def _compact(values: np.ndarray) -> float | list[float]:
    return float(values[0]) if np.all(values == values[0]) else [float(v) for v in values]


def report_lines(report: dict[str, Any]) -> list[str]:
    """One line per stage: its integers, weight errors and headroom; then the outputs' decoding."""
    lines = [f"  target loihi2 (exact method): input_max {report['input_max']:g}, latency {report['latency_steps']} "
             f"steps; sums settled after {report['settled_after_steps']} steps"]  # fmt: skip
    for layer in report["layers"]:
        units = f"2^{layer['shift']}/level" if "shift" in layer else f"scale {layer['scale']:.4g}"
        lines.append(
            f"  {layer['name']:<28} {layer['kind']:<8} {units:<14} exp {layer['weight_exp']} mant "
            f"{layer['mantissa_range']} err max {layer['max_rel_weight_error']:.2%} mean "
            f"{layer['mean_rel_weight_error']:.2%} bias {layer['bias']} headroom {layer['headroom_bits']:.1f} bits"
        )
        lines += [f"  {'':<28} {note}" for note in layer["approximations"]]
    for name, out in report["outputs"].items():
        lines.append(f"  output {name}: {out['node']} (value = {out['scale']} * sum over steps + {out['offset']})")
    return lines


def quantize_exact(graph: Graph, options: QuantizeOptions) -> QuantizeResult:
    """Lower the exact method's SNN to the Loihi dialect (module docstring); the report lists every stage."""
    from spikec.targets.loihi2.quantize import _latency

    hosted = host_functions(graph)
    if hosted:
        raise host_function_error(graph, hosted)
    low = _ExactLowering(graph, options)
    by_kind = {key.kind: fn for key, fn in HANDLERS.items()}
    for name in graph.order:
        node = graph.nodes[name]
        if any(e.recurrent for e in graph.in_edges(name)):
            raise low.fail(name, "has a recurrent input; the exact method's SNNs are feed-forward")
        handler = by_kind.get(node.kind)
        if handler is None and is_additive(graph, name):
            handler = _linear
        if handler is None:
            raise low.fail(name, f"is a {node.kind}, which has no Loihi lowering in an exact SNN")
        handler(low, name, node)
    lowered = Graph(low.nodes, low.edges, dt=graph.dt)
    latency = _latency(lowered)
    report = {
        "target": "loihi2", "unchanged": False, "method": "exact", "input_max": options.input_max,
        "latency_steps": latency, "settled_after_steps": latency + 1, "layers": low.layers, "outputs": low.outputs,
    }  # fmt: skip
    return QuantizeResult(lowered, True, report, tuple(report_lines(report)))
