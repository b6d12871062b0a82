r"""``split-fanin``: a neuron whose inputs exceed one core is computed from partial sums on several cores.

A Loihi neuron layer N whose single neuron does not fit an empty core (its presynaptic neurons exceed the
core's input axons, or its weight row the synaptic memory; ``resources.toml``) has its wide ``LoihiDense``
synapses S (``a = shift(W s, e)``, ``shift`` Lava's exponent: ``x·2^e``, or ``⌊x / 2^-e⌋`` for e ≤ 0)
rewritten as

.. code-block:: text

    source ─┬─ S.part0 (LoihiPartialDense, W[:, g0], e = 0) ── S.relay0 (LoihiGradedVec, vth 0) ─┐
            ├─ S.part1 ...                                   ── S.relay1 ...                    ─┼─ S.merge ── N
            └─ ...                                                                              ─┘  (identity, e, delay)

Each part holds one contiguous group of at most ``group`` input columns (whole rows or channels of a
flattened source, so its input is a box) with S's weights, bit count and sign mode and exponent 0: it
sends the unshifted integer partial sum :math:`p_g = W_g s`. A ``GradedVec`` relay with ``vth = 0``
forwards :math:`p_g` as a graded spike (24-bit payload) the same step. ``S.merge`` is one identity
``LoihiDense`` (8-bit weight 1, graded input) on whose input port every relay lands: Lava's ports sum
what arrives, so it sees :math:`\sum_g p_g = W s` and applies S's exponent once,
:math:`\mathrm{shift}(W s, e)`, the value S computed, bit for bit (a floor shift of partial sums would
not be). More relays than ``group`` are summed first by identity ``LoihiDense`` (e = 0) + relay stages,
a tree: exact too, one step per stage. Synapses with per-synapse delays are split per delay value
(Lava's ``DelayDense`` shifts each delay slot's sum on its own).

The relays add one step per stage; the added latency is aligned with synaptic delays where paths
meet: every synapse into a neuron whose other inputs now arrive later gets that many more steps of
delay (a LoihiDense only: Lava's Conv has none), up to the resource model's ``max_delay_steps``. A loop
fed by a split neuron runs later as a whole; a loop whose own synapse would be relayed is refused (its
latency would change). Which synapses are relayed: the widest, until the neuron reads at most ``group``
presynaptic neurons directly (relays count one each); recurrent and convolutional synapses stay direct.

``group`` (0: a quarter of a core's input axons) trades the sources' fan-out (fewer, longer rows per
relay core) against relay neurons; ``resources=PATH`` reads another resource file than the target's
(e.g. a smaller core, to test). docs: targets/loihi2/docs/loihi2-mapping.md ("Fan-in splitting").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import DoesNotFit, PassError
from spikec.ir import Flatten, Graph
from spikec.ir.graph import Edge
from spikec.ir.node import Node, Shape
from spikec.pipeline import PassResult
from spikec.resources import ResourceModel, load_resource_model, resource_model
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, SignMode
from spikec.targets.loihi2.fanin_align import align_latency
from spikec.targets.loihi2.fanin_fit import check_fit, column_groups, partial_bound, too_wide
from spikec.targets.loihi2.relay import GRADED_BITS, GRADED_MAX, LoihiGradedVec, LoihiPartialDense

GROUP_SHARE = 4  # group=0: a relay reads at most a quarter of a core's input axons


@dataclasses.dataclass(frozen=True)
class SplitResult(PassResult):
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    lines: tuple[str, ...] = ()


@dataclasses.dataclass
class _Rewrite:
    """Nodes that replace a relayed synapse, the edges among them and into the neuron, and its merges."""

    nodes: dict[str, Node] = dataclasses.field(default_factory=dict)
    edges: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    merges: list[str] = dataclasses.field(default_factory=list)
    stages: int = 0
    relays: int = 0


def split_fanin(graph: Graph, *, group: int = 0, resources: str = "") -> SplitResult:
    """Split the fan-in of every Loihi neuron layer whose one neuron does not fit a core (module docstring).

    ``group``: the most presynaptic neurons one relay reads (0: a quarter of a core's input axons);
    ``resources``: a resource file to fit instead of the loihi2 target's. The graph is unchanged when every
    neuron fits."""
    model = load_resource_model(Path(resources)) if resources else resource_model("loihi2")
    return split_graph(graph, model, group=group)


def split_graph(graph: Graph, model: ResourceModel, *, group: int = 0) -> SplitResult:
    """``split_fanin`` with a resource model object (the API tests and benchmarks call)."""
    limit = group or max(1, model.core["input_axons"].value // GROUP_SHARE)
    if group < 0:
        raise PassError(f"split-fanin: group={group} must be >= 1 (or 0: a quarter of a core's input axons)")
    wide = too_wide(graph, model)
    if not wide:
        return SplitResult(graph, False, {"split": []}, ())
    rewrites: dict[str, _Rewrite] = {}
    layers: list[dict[str, Any]] = []
    for neuron in wide:
        chosen = _choose_synapses(graph, neuron, limit)
        for syn in chosen:
            rewrites[syn] = _relay_synapse(graph, syn, neuron, limit)
        layers.append(_layer_report(graph, neuron, chosen, rewrites))
    split = _assemble(graph, rewrites)
    aligned, added = align_latency(graph, split, {s: (r.merges, r.stages) for s, r in rewrites.items()}, model)
    check_fit(aligned, model, [layer["layer"] for layer in layers], limit)
    report = {"split": layers, "group": limit, "latency_added": added}
    return SplitResult(aligned, True, report, tuple(report_lines(report)))


def _choose_synapses(graph: Graph, neuron: str, limit: int) -> dict[str, int]:
    """The LoihiDense synapses of ``neuron`` to relay: the widest first, until what it reads directly plus
    one axon per relay stays within ``limit`` (a synapse that cannot be split is always read directly). Each
    with its fan-in."""
    direct: dict[str, int] = {}
    fixed = 0
    for edge in graph.in_edges(neuron):
        width = _fan_in(graph, edge.src)
        if _splittable(graph, edge.src, neuron):
            direct[edge.src] = width
        else:
            fixed += width
    relayed: dict[str, int] = {}
    relays = 0
    for syn in sorted(direct, key=lambda s: (-direct[s], s)):
        if fixed + sum(direct.values()) + relays <= limit:
            break
        relays += _final_relays(graph, syn, limit)
        relayed[syn] = direct.pop(syn)
    if not relayed:
        node = graph.nodes[neuron]
        raise DoesNotFit(
            f"resource input_axons: layer {node.describe(neuron)} reads {fixed:,} presynaptic neurons per neuron "
            "through synapses split-fanin cannot split (it splits LoihiDense synapses fed forward; this neuron's "
            "are convolutions, recurrent or shared). To fit, give its layer fewer input channels or a smaller kernel"
        )
    return relayed


def _splittable(graph: Graph, syn: str, neuron: str) -> bool:
    node = graph.nodes[syn]
    return (
        type(node) is LoihiDense
        and bool(node.buffered)
        and [e.dst for e in graph.out_edges(syn)] == [neuron]
        and not any(e.recurrent for e in graph.in_edges(syn))
    )


def _fan_in(graph: Graph, syn: str) -> int:
    """Presynaptic values one neuron reads through ``syn``: a Dense row's span of non-zero columns (the widest),
    a convolution's kernel volume, else everything the node reads."""
    node = graph.nodes[syn]
    if isinstance(node, LoihiDense):
        nonzero = np.asarray(node.weight) != 0
        first = np.argmax(nonzero, axis=1)
        last = nonzero.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
        return int(np.max(np.where(nonzero.any(axis=1), last - first, 0), initial=0))
    if isinstance(node, LoihiConv):
        return int(math.prod(node.weight.shape[1:]))
    return int(math.prod(graph.types[syn]))


def _source_shape(graph: Graph, syn: str) -> Shape:
    """The shape whose C-order flattening the synapse reads (a Flatten's input; else its input as it is)."""
    src = graph.in_edges(syn)[0].src
    while isinstance(graph.nodes[src], Flatten):
        src = graph.in_edges(src)[0].src
    shape = tuple(graph.types[src])
    in_size = int(np.asarray(graph.nodes[syn].weight).shape[1])  # type: ignore[attr-defined]
    return shape if math.prod(shape) == in_size else (in_size,)


def _final_relays(graph: Graph, syn: str, limit: int) -> int:
    """How many relays the neuron reads for ``syn`` once the tree has summed its groups."""
    count = len(column_groups(_source_shape(graph, syn), limit))
    while count > limit:
        count = -(-count // limit)
    return count


def _streams(node: LoihiDense) -> list[tuple[np.ndarray, int]]:
    """(weights, delay) per delay value: Lava's DelayDense shifts each delay slot's sum on its own."""
    weight = np.asarray(node.weight)
    if node.delay is None:
        return [(weight, 0)]
    delay = np.broadcast_to(np.asarray(node.delay, np.int64), weight.shape)
    values = np.unique(delay[weight != 0]) if np.any(weight) else np.zeros(1, np.int64)
    if values.size <= 1:
        return [(weight, int(values[0]) if values.size else 0)]
    return [(np.where(delay == d, weight, 0).astype(weight.dtype), int(d)) for d in values]


def _identity(n: int, exp: int, delay: int, origin: str) -> LoihiDense:
    return LoihiDense(
        weight=np.eye(n, dtype=np.int8), weight_exp=exp, num_weight_bits=8, sign_mode=SignMode.EXCITATORY.value,
        num_message_bits=GRADED_BITS, delay=np.asarray(delay) if delay else None, origin=origin,
    )  # fmt: skip


def _relay_synapse(graph: Graph, syn: str, neuron: str, limit: int) -> _Rewrite:
    """Parts, relays, the summing tree and the merge that replace synapse ``syn`` into ``neuron``."""
    node = graph.nodes[syn]
    assert isinstance(node, LoihiDense)
    out = _Rewrite()
    groups = column_groups(_source_shape(graph, syn), limit)
    mode = node.effective_sign_mode  # the layer's: every part truncates its weights as the whole layer did
    streams = _streams(node)
    finals: list[tuple[str, list[str], int, int]] = []  # (tag, relays the merge reads, delay, stages)
    for weight, delay in streams:
        tag = f"{syn}.d{delay}" if len(streams) > 1 else syn
        level = _parts(graph, syn, node.replace(sign_mode=mode.value), weight, groups, tag, out)
        if not level:
            continue  # no weight in this delay's stream
        stage = 0
        while len(level) > limit:  # sum groups of relays first (exponent 0: exact)
            stage += 1
            summed = []
            for h, chunk in enumerate(_chunks(level, limit)):
                add, relay = f"{tag}.sum{stage}_{h}", f"{tag}.relay{stage}_{h}"
                out.nodes[add] = _identity(weight.shape[0], 0, 0, node.origin)
                out.nodes[relay] = LoihiGradedVec(origin=node.origin)
                out.edges += [(r, add) for r in chunk] + [(add, relay)]
                summed.append(relay)
            out.relays += len(summed)
            level = summed
        finals.append((tag, level, delay, stage + 1))
    out.stages = max((stages for *_, stages in finals), default=0)
    for tag, level, delay, stages in finals:  # a shallower stream waits for the deepest one
        merge = f"{tag}.merge"
        out.nodes[merge] = _identity(node.weight.shape[0], node.weight_exp, delay + out.stages - stages, node.origin)
        out.edges += [(r, merge) for r in level] + [(merge, neuron)]
        out.merges.append(merge)
    return out


def _parts(
    graph: Graph, syn: str, node: LoihiDense, weight: np.ndarray, groups: list[tuple[int, int]], tag: str,
    out: _Rewrite,
) -> list[str]:  # fmt: skip
    """One LoihiPartialDense (exponent 0) and GradedVec relay per group of columns with a non-zero weight;
    ``node`` carries its layer's sign mode explicitly."""
    inputs = [e.src for e in graph.in_edges(syn)]
    relays = []
    for g, (lo, hi) in enumerate(groups):
        block = weight[:, lo:hi]
        if not np.any(block):
            continue
        bound = partial_bound(node, block, GRADED_MAX)
        if bound > GRADED_MAX:
            raise DoesNotFit(
                f"resource graded_spike_bits: the partial sums of {node.describe(syn)} over columns [{lo}, {hi}) "
                f"reach {bound:,}, beyond the {GRADED_BITS}-bit graded spike a relay sends (±{GRADED_MAX:,}). "
                "To fit, split into smaller groups (split-fanin{group=N}) or send fewer message bits"
            )
        part, relay = f"{tag}.part{g}", f"{tag}.relay{g}"
        out.nodes[part] = LoihiPartialDense(
            weight=block, weight_exp=0, num_weight_bits=node.num_weight_bits, sign_mode=node.sign_mode,
            num_message_bits=node.num_message_bits, in_offset=lo, in_size=weight.shape[1], origin=node.origin,
        )  # fmt: skip
        out.nodes[relay] = LoihiGradedVec(origin=node.origin)
        out.edges += [(src, part) for src in inputs] + [(part, relay)]
        relays.append(relay)
    out.relays += len(relays)
    return relays


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    parts = -(-len(items) // size)
    step = -(-len(items) // parts)
    for i in range(0, len(items), step):
        yield items[i : i + step]


def _assemble(graph: Graph, rewrites: dict[str, _Rewrite]) -> Graph:
    """The graph with each relayed synapse replaced, its new nodes where it stood (node order decides ties)."""
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        if name in rewrites:
            nodes |= rewrites[name].nodes
        else:
            nodes[name] = node
    edges: list[Edge | tuple[str, str]] = [e for e in graph.edges if e.src not in rewrites and e.dst not in rewrites]
    for rewrite in rewrites.values():
        edges += rewrite.edges
    return Graph(nodes, edges, dt=graph.dt)


def _layer_report(graph: Graph, neuron: str, chosen: dict[str, int], rewrites: dict[str, _Rewrite]) -> dict[str, Any]:
    return {
        "layer": neuron,
        "kind": graph.nodes[neuron].kind,
        "neurons": int(math.prod(graph.types[neuron])),
        "synapses": [
            {"synapse": s, "fan_in": fan_in, "relays": rewrites[s].relays, "stages": rewrites[s].stages}
            for s, fan_in in chosen.items()
        ],
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """What ``spikec opt`` prints: one line per split layer and synapse, and the latency each output gained."""
    lines = [f"split-fanin: relays read at most {report['group']:,} presynaptic neurons"]
    for layer in report["split"]:
        for s in layer["synapses"]:
            lines.append(
                f"  {layer['layer']} ({layer['neurons']:,} neurons) <- {s['synapse']}: fan-in {s['fan_in']:,} -> "
                f"{s['relays']} relay layers, {s['stages']} step(s) added"
            )
    for out, steps in report["latency_added"].items():
        lines.append(f"  output {out}: {steps} step(s) later")
    return lines
