r"""What ``quantize{target=loihi2}`` tracks per lowered node: spike signals, their terms and latencies, and the
synaptic currents a neuron sums (membrane shortcuts).

On Loihi a value travels only as a neuron's spikes (or a graded input) through a synapse into a neuron. A float
graph's ``Add``/``Concat`` of spike trains therefore survives only as *terms* the reading synapses split over,
and an ``Add`` of currents (a Dense's output plus a residual stream, as in Spikingformer's membrane shortcuts)
only as the synapses of the neuron that reads it: :math:`I = \sum_k W_k s_k + b`, one synapse per source
:math:`s_k` (a source reached along several paths gets the sum of their weights).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from spikec.ir import Graph, ann
from spikec.targets.loihi2.pooling import Pooled


@dataclasses.dataclass(frozen=True)
class Signal:
    """What a lowered node sends: its new name, the largest |value| per step, and Loihi message bits.

    ``latency``: the step at which the value for input step 0 appears (each synapse delays by one step,
    plus its synaptic delay). ``terms``: a sum (``Add``) or concatenation (``Concat``) of spike sources,
    which exists on Loihi only as the synapses that read it: a Dense reading it becomes one synapse per term.
    """

    name: str
    max_abs: float
    message_bits: int  # 0: binary spikes
    pool: Pooled | None = None  # a sum/avg pool still to be folded into the next synapse
    latency: int = 0
    terms: tuple[Term, ...] = ()


@dataclasses.dataclass(frozen=True)
class Term:
    """One spike source of a composite signal: it drives columns ``[offset, offset + width)`` of the reader."""

    offset: int
    width: int
    signal: Signal


def terms_of(signal: Signal, width: int) -> tuple[Term, ...]:
    """The spike sources a reader of ``signal`` (``width`` values) gets: itself, or the composite's terms."""
    return signal.terms or (Term(0, width, signal),)


@dataclasses.dataclass(frozen=True)
class Currents:
    """The synaptic input of a neuron as one Dense over the concatenation of its sources' terms."""

    weight: np.ndarray  # (out, Σ widths)
    bias: np.ndarray  # (out,)
    source: Signal  # composite: one term per source, at its columns of ``weight``


def currents_into(
    graph: Graph, signals: Mapping[str, Signal], name: str, fail: Callable[[str, str], Exception]
) -> Currents:
    """Expand node ``name`` (an ``Add`` of Dense outputs, spike sources and further sums) into per-source
    weights: a Dense contributes W (split over its source's terms), a spike source or graded input the identity."""
    width = int(np.prod(graph.types[name]))
    weights: dict[str, np.ndarray] = {}
    sources: dict[str, Signal] = {}
    bias = np.zeros(width)

    def add(term_signal: Signal, w: np.ndarray) -> None:
        key = term_signal.name
        weights[key] = weights[key] + w if key in weights else w
        sources[key] = term_signal

    def walk(node_name: str) -> None:
        nonlocal bias
        node = graph.nodes[node_name]
        if node_name in signals:  # spikes (or the graded input) as they are: the identity's columns per term
            for t in terms_of(signals[node_name], width):
                add(t.signal, np.eye(width)[:, t.offset : t.offset + t.width])
        elif isinstance(node, ann.Dense) and len(graph.types[node_name]) == 1:
            (edge,) = graph.in_edges(node_name)
            if edge.src not in signals:
                raise fail(node_name, f"reads {graph.describe(edge.src)}, which is not a spike source on Loihi")
            weight = np.asarray(node.weight, np.float64)
            for t in terms_of(signals[edge.src], weight.shape[1]):
                add(t.signal, weight[:, t.offset : t.offset + t.width])
            bias = bias + (0.0 if node.bias is None else np.asarray(node.bias, np.float64))
        elif isinstance(node, ann.Add):
            for edge in graph.in_edges(node_name):
                walk(edge.src)
        else:
            raise fail(node_name, f"is a {node.kind} in a sum of currents; on Loihi a neuron sums Dense synapses only")

    walk(name)
    terms, offset = [], 0
    for key, w in weights.items():
        terms.append(Term(offset, w.shape[1], sources[key]))
        offset += w.shape[1]
    peak = sum(t.signal.max_abs for t in terms)
    source = Signal(name, peak, max(t.signal.message_bits for t in terms), terms=tuple(terms))
    return Currents(np.hstack(list(weights.values())), bias, source)
