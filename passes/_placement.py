"""Placing neuron layers on cores: two packing strategies and the exact accounting of a placement.

``fill`` walks the layers in topological order and fills each core before opening the next,
splitting a layer wherever a core is full (a binary search finds the largest slice that still
fits), so neighbouring layers share cores and every closed core is full in some resource.
``balanced`` splits each layer into the fewest equal slices that fit an empty core, then places
the slices first-fit in topological order, so small layers share cores and large ones are cut
evenly (fewer fragments, fewer duplicated input axons). Both are deterministic and run in
O(slices · log(neurons)) demand evaluations.

``account`` then counts what a placement really uses, output axons and spike traffic included:
a neuron sends one message (and needs one output axon) per core holding a slice of a layer it
feeds, found by mapping each consumer slice back onto its source (``Connection.back``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

from spikec.demand import LayerDemand
from spikec.regions import intersect, volume
from spikec.resources import CORE_RESOURCES

Slice = tuple[int, int, int]  # (layer index, start, stop)
OUTPUT_AXONS = CORE_RESOURCES.index("output_axons")


@dataclasses.dataclass
class Core:
    slices: list[Slice] = dataclasses.field(default_factory=list)
    used: list[int] = dataclasses.field(default_factory=lambda: [0] * len(CORE_RESOURCES))


class OneNeuronTooBig(Exception):
    """A single neuron of ``layer`` exceeds an empty core in ``resource`` (``amount`` > capacity)."""

    def __init__(self, layer: int, resource: int, amount: int) -> None:
        super().__init__(layer, resource, amount)
        self.layer, self.resource, self.amount = layer, resource, amount


def _fits(demand: Sequence[int], room: Sequence[int]) -> bool:
    return all(d <= r for d, r in zip(demand, room, strict=True))


def _largest_fit(layer: LayerDemand, start: int, fanout: int, room: Sequence[int]) -> int:
    """The largest k with demand(start, start + k) within ``room`` (demand grows with k)."""
    left = layer.size - start
    if _fits(layer.demand(start, layer.size, fanout), room):
        return left
    lo, hi = 0, left  # fits(lo), not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _fits(layer.demand(start, start + mid, fanout), room):
            lo = mid
        else:
            hi = mid
    return lo


def _check_one(layers: Sequence[LayerDemand], index: int, start: int, fanout: int, capacity: Sequence[int]) -> None:
    one = layers[index].demand(start, start + 1, fanout)
    for r, (amount, cap) in enumerate(zip(one, capacity, strict=True)):
        if amount > cap:
            raise OneNeuronTooBig(index, r, amount)


def _add(used: list[int], demand: Sequence[int]) -> None:
    for i, d in enumerate(demand):
        used[i] += d


def fill(layers: Sequence[LayerDemand], capacity: Sequence[int], fanout: Mapping[str, int]) -> list[Core]:
    """Layers in order; each core filled before the next opens; layers split where a core is full."""
    cores = [Core()]
    for index, layer in enumerate(layers):
        f, start = fanout[layer.name], 0
        while start < layer.size:
            current = cores[-1]
            room = [c - u for c, u in zip(capacity, current.used, strict=True)]
            k = _largest_fit(layer, start, f, room)
            if k == 0:
                if not current.slices:
                    _check_one(layers, index, start, f, capacity)
                cores.append(Core())
                continue
            current.slices.append((index, start, start + k))
            _add(current.used, layer.demand(start, start + k, f))
            start += k
            if start < layer.size:
                cores.append(Core())
    return [c for c in cores if c.slices]


def _greedy_parts(layer: LayerDemand, fanout: int, capacity: Sequence[int], limit: int) -> int:
    """How many slices cutting ``layer`` greedily into the largest fitting pieces takes (stops at ``limit``)."""
    start = parts = 0
    while start < layer.size and parts < limit:
        start += max(1, _largest_fit(layer, start, fanout, capacity))
        parts += 1
    return parts if start >= layer.size else limit


def _equal_split(layer: LayerDemand, index: int, fanout: int, capacity: Sequence[int]) -> list[Slice]:
    """The fewest equal slices of ``layer`` that each fit an empty core (from the greedy count up)."""
    parts = _greedy_parts(layer, fanout, capacity, layer.size)
    while True:
        bounds = [layer.size * i // parts for i in range(parts + 1)]
        slices = [(index, a, b) for a, b in itertools.pairwise(bounds)]
        if parts >= layer.size or all(_fits(layer.demand(a, b, fanout), capacity) for _, a, b in slices):
            return slices
        parts = min(layer.size, parts + max(1, parts // 16))


def balanced(layers: Sequence[LayerDemand], capacity: Sequence[int], fanout: Mapping[str, int]) -> list[Core]:
    """Each layer cut into its fewest equal fitting slices, placed first-fit in topological order."""
    cores: list[Core] = []
    for index, layer in enumerate(layers):
        f = fanout[layer.name]
        _check_one(layers, index, 0, f, capacity)
        for piece in _equal_split(layer, index, f, capacity):
            demand = layer.demand(piece[1], piece[2], f)
            for core in cores:
                if _fits(demand, [c - u for c, u in zip(capacity, core.used, strict=True)]):
                    break
            else:
                core = Core()
                cores.append(core)
            core.slices.append(piece)
            _add(core.used, demand)
    return cores


STRATEGIES = {"fill": fill, "balanced": balanced}


@dataclasses.dataclass(frozen=True)
class Accounting:
    usage: list[list[int]]  # per core, CORE_RESOURCES order, output axons counted exactly
    fanout_seen: dict[str, int]  # per layer: the most destination cores any of its neurons has
    total: float
    inter_core: float
    inter_chip: float


def account(
    layers: Sequence[LayerDemand],
    cores: Sequence[Core],
    cores_per_chip: int,
    rates: Mapping[str, float],
) -> Accounting:
    """Exact usage of a placement (output axons from the consumers' real cores) and its spike traffic."""
    by_name = {layer.name: i for i, layer in enumerate(layers)}
    where: list[list[tuple[int, int, int]]] = [[] for _ in layers]  # per layer: (core, start, stop)
    for c, core in enumerate(cores):
        for index, a, b in core.slices:
            where[index].append((c, a, b))
    pieces = [{(c, a, b): layer.layout.pieces(a, b) for c, a, b in where[i]} for i, layer in enumerate(layers)]
    usage = [[0] * len(CORE_RESOURCES) for _ in cores]
    out_per_slice: dict[tuple[int, int, int, int], int] = {}  # (layer, core, start, stop)
    consumed = [False] * len(layers)
    total = inter_core = inter_chip = 0.0
    for index, layer in enumerate(layers):
        for conn in layer.connections:
            src = by_name.get(conn.source)
            if src is None:
                continue  # a graph input: its spikes come from outside the cores
            consumed[src] = True
            rate = rates.get(conn.source, 1.0)
            for y, a, b in where[index]:
                read = conn.back(layer.box(a, b))
                if read is None:
                    continue
                for x, s, e in where[src]:
                    overlap = sum(volume(intersect(read, p)) for p in pieces[src][(x, s, e)])
                    if overlap <= 0:
                        continue
                    out_per_slice[(src, x, s, e)] = out_per_slice.get((src, x, s, e), 0) + overlap
                    total += overlap * rate
                    if x != y:
                        inter_core += overlap * rate
                    if x // cores_per_chip != y // cores_per_chip:
                        inter_chip += overlap * rate
    fanout_seen: dict[str, int] = {}
    for index, layer in enumerate(layers):
        seen = 1
        for x, a, b in where[index]:
            axons = out_per_slice.get((index, x, a, b), 0) if consumed[index] else b - a  # a readout sends to the host
            usage[x][OUTPUT_AXONS] += axons
            seen = max(seen, -(-axons // (b - a)))
            demand = layer.demand(a, b, 0)
            for r, d in enumerate(demand):
                if r != OUTPUT_AXONS:
                    usage[x][r] += d
        fanout_seen[layer.name] = seen
    return Accounting(usage, fanout_seen, total, inter_core, inter_chip)


def choose_orders(
    layers: Sequence[LayerDemand], capacity: Sequence[int], fanout: Mapping[str, int]
) -> list[LayerDemand]:
    """Each layer in the layout whose equal split needs the fewest cores (ties: the first, C order)."""
    chosen = []
    for layer in layers:
        f = fanout[layer.name]
        best, best_parts = layer, -1
        for layout in layer.layout.candidates():
            candidate = dataclasses.replace(layer, layout=layout)
            if any(a > c for a, c in zip(candidate.demand(0, 1, f), capacity, strict=True)):
                continue
            parts = _greedy_parts(candidate, f, capacity, best_parts if best_parts > 0 else candidate.size)
            if best_parts < 0 or parts < best_parts:
                best, best_parts = candidate, parts
        chosen.append(best)
    return chosen


def consumers(layers: Sequence[LayerDemand]) -> dict[str, int]:
    """Per layer: how many connections read it (each needs at least one destination core)."""
    count = {layer.name: 0 for layer in layers}
    for layer in layers:
        for conn in layer.connections:
            if conn.source in count:
                count[conn.source] += 1
    return count
