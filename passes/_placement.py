"""Placing neuron layers on cores: cut each layer into core-sized boxes (tiles), pack the tiles, count exactly.

1. ``choose_tile``: for each layer the tile shape that needs the fewest tiles, each fitting an empty
   core in every resource. Axes 1.. take the sizes that cut them into k nearly equal parts
   (``regions.even_sizes``: O(√n) per axis); axis 0 takes the largest size that still fits (binary
   search), evened out. Ties go to the least input-axon total (least halo duplication). A (C, H, W)
   layer thus gets spatial tiles of many channels when its fan-in is wide (input axons bind), or
   channel blocks when weights bind; a (tokens, features) layer gets token × feature blocks.
2. ``pack``: tiles in topological order, first fit over the open cores, so small layers share cores.
3. ``account``: what the placement really uses. A neuron needs one output axon, and sends one
   message per step it spikes, for every core holding a tile that reads it (found by mapping each
   consumer tile back onto its source, ``Connection.back``).

Everything is deterministic and bounded: O(tiles · cores) fit checks and O(Σ√n · log n) demand
evaluations per layer for the tile choice.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from spikec.demand import Demand, LayerDemand
from spikec.regions import Box, even_sizes, intersect, tile_count, tiles, volume
from spikec.resources import CORE_RESOURCES

Slice = tuple[int, Box]  # (layer index, box of its neurons)
Fanout = float | np.ndarray  # destination cores per neuron: one figure, or one per neuron (layer-shaped)
OUTPUT_AXONS = CORE_RESOURCES.index("output_axons")
MAX_TILE_TRIES = 16  # tile shapes tried per layer before the smallest safe one is taken


@dataclasses.dataclass
class Core:
    slices: list[Slice] = dataclasses.field(default_factory=list)
    used: list[int] = dataclasses.field(default_factory=lambda: [0] * len(CORE_RESOURCES))


class OneNeuronTooBig(Exception):
    """A single neuron of ``layer`` exceeds an empty core in ``resource`` (``amount`` > capacity)."""

    def __init__(self, layer: int, resource: int, amount: int) -> None:
        super().__init__(layer, resource, amount)
        self.layer, self.resource, self.amount = layer, resource, amount


def fits(demand: Sequence[int], room: Sequence[int]) -> bool:
    return all(d <= r for d, r in zip(demand, room, strict=True))


def interior(shape: Sequence[int], tile: Sequence[int]) -> Box:
    """A tile away from the layer's low edges (where padding clips a convolution's input least)."""
    return tuple((s, s + t) for n, t in zip(shape, tile, strict=True) for s in [min(t, n - t)])


def _largest_axis0(layer: LayerDemand, rest: tuple[int, ...], fanout: Fanout, capacity: Sequence[int]) -> int:
    """The largest axis-0 size t with an interior tile (t, *rest) fitting an empty core (0: none)."""
    n0 = layer.shape[0]

    def ok(t: int) -> bool:
        return fits(layer.demand(interior(layer.shape, (t, *rest)), fanout), capacity)

    if ok(n0):
        return n0
    lo, hi = 0, n0  # ok(lo) (or lo = 0), not ok(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def check_one_neuron(layers: Sequence[LayerDemand], index: int, fanout: Fanout, capacity: Sequence[int]) -> None:
    layer = layers[index]
    one = layer.demand(interior(layer.shape, (1,) * len(layer.shape)), fanout)
    for r, (amount, cap) in enumerate(zip(one, capacity, strict=True)):
        if amount > cap:
            raise OneNeuronTooBig(index, r, amount)


def tile_candidates(
    layer: LayerDemand, fanout: Fanout, capacity: Sequence[int]
) -> list[tuple[float, int, tuple[int, ...]]]:
    """(estimated cores, tiles needed, tile shape) for every maximal fitting tile, best first.

    The estimate adds to the tile count the cores the inputs' output axons take beyond one per
    input neuron: every tile reads its inputs (halo and channel blocks included) through one output
    axon per input neuron, so tiles that re-read their inputs cost their producers cores.
    """
    n0 = layer.shape[0]
    once = sum(volume(c.back(layer.box)) for c in layer.connections)  # every input neuron read once
    found = []
    for rest in itertools.product(*(even_sizes(n) for n in layer.shape[1:])):
        t0 = _largest_axis0(layer, rest, fanout, capacity)
        if t0 == 0:
            continue
        t0 = -(-n0 // -(-n0 // t0))  # the same number of parts along axis 0, cut evenly
        tile = (t0, *rest)
        count = tile_count(layer.shape, tile)
        reread = max(0, count * layer.input_axons(interior(layer.shape, tile)) - once)
        found.append((count + reread / capacity[OUTPUT_AXONS], count, tile))
    return sorted(found)


def choose_tile(layers: Sequence[LayerDemand], index: int, fanout: Fanout, capacity: Sequence[int]) -> tuple[int, ...]:
    """The tile shape of ``layers[index]`` with the fewest tiles, every one of which fits an empty core."""
    layer = layers[index]
    check_one_neuron(layers, index, fanout, capacity)
    for _, _, tile in tile_candidates(layer, fanout, capacity)[:MAX_TILE_TRIES]:
        if all(fits(layer.demand(box, fanout), capacity) for box in tiles(layer.shape, tile)):
            return tile
    return (1,) * len(layer.shape)  # one neuron per tile fits (checked above)


def destinations(layers: Sequence[LayerDemand], index: int, shapes: Mapping[int, tuple[int, ...]]) -> np.ndarray:
    """Per neuron of ``layers[index]``: how many consumer tiles read it (its destination cores if no two
    share a core; 1 for a readout, whose spikes go to the host). Consumers not tiled yet (a recurrent
    edge) count one destination per connection."""
    layer = layers[index]
    counts = np.zeros(layer.shape, dtype=np.int64)
    fed = False
    for j, consumer in enumerate(layers):
        for conn in consumer.connections:
            if conn.source != layer.name:
                continue
            fed = True
            if j not in shapes:
                counts += 1
                continue
            for box in tiles(consumer.shape, shapes[j]):
                read = conn.back(box)
                if read is not None:
                    counts[tuple(slice(lo, hi) for lo, hi in read)] += 1
    return counts if fed else np.ones(layer.shape, dtype=np.int64)


def pack(
    layers: Sequence[LayerDemand], shapes: Sequence[tuple[int, ...]], capacity: Sequence[int], fanout: Sequence[Fanout]
) -> list[Core]:
    """Every layer's tiles, in topological order, on the first core with room (a new one when none has)."""
    cores: list[Core] = []
    first_open = 0  # cores before it have no room for anything (every resource nearly full)
    for index, (layer, tile) in enumerate(zip(layers, shapes, strict=True)):
        f = fanout[index]
        for box in tiles(layer.shape, tile):
            demand = layer.demand(box, f)
            for core in cores[first_open:]:
                if fits(demand, [c - u for c, u in zip(capacity, core.used, strict=True)]):
                    break
            else:
                core = Core()
                cores.append(core)
            core.slices.append((index, box))
            _add(core.used, demand)
            while first_open < len(cores) and cores[first_open].used[0] >= capacity[0]:
                first_open += 1
    return cores


def _add(used: list[int], demand: Demand | Sequence[int]) -> None:
    for i, d in enumerate(demand):
        used[i] += d


@dataclasses.dataclass(frozen=True)
class Accounting:
    usage: list[list[int]]  # per core, CORE_RESOURCES order, output axons counted exactly
    fanout_seen: dict[str, float]  # per layer: the most output axons per neuron any of its tiles needs
    total: float
    inter_core: float
    inter_chip: float


def account(
    layers: Sequence[LayerDemand], cores: Sequence[Core], cores_per_chip: int, rates: Mapping[str, float]
) -> Accounting:
    """Exact usage of a placement (output axons from the consumers' real cores) and its spike traffic.

    A source tile needs one output axon per (neuron, destination core) pair; two tiles of one consumer
    on the same core reading the same neuron count twice (conservative).
    """
    by_name = {layer.name: i for i, layer in enumerate(layers)}
    where: list[list[tuple[int, Box]]] = [[] for _ in layers]
    for c, core in enumerate(cores):
        for index, box in core.slices:
            where[index].append((c, box))
    out_axons: dict[tuple[int, int, Box], int] = {}
    consumed = [False] * len(layers)
    total = inter_core = inter_chip = 0.0
    for index, layer in enumerate(layers):
        for conn in layer.connections:
            src = by_name.get(conn.source)
            if src is None:
                continue  # a graph input: its spikes come from outside the cores
            consumed[src] = True
            rate = rates.get(conn.source, 1.0)
            for y, box in where[index]:
                read = conn.back(box)
                if read is None:
                    continue
                for x, src_box in where[src]:
                    overlap = volume(intersect(read, src_box))
                    if overlap <= 0:
                        continue
                    key = (src, x, src_box)
                    out_axons[key] = out_axons.get(key, 0) + overlap
                    total += overlap * rate
                    if x != y:
                        inter_core += overlap * rate
                    if x // cores_per_chip != y // cores_per_chip:
                        inter_chip += overlap * rate
    usage = [[0] * len(CORE_RESOURCES) for _ in cores]
    fanout_seen: dict[str, float] = {}
    for index, layer in enumerate(layers):
        seen = 1.0
        for x, box in where[index]:
            k = volume(box)
            axons = out_axons.get((index, x, box), 0) if consumed[index] else k  # a readout sends to the host
            seen = max(seen, axons / k)
            demand = list(layer.demand(box, 0))
            demand[OUTPUT_AXONS] = axons
            _add(usage[x], demand)
        fanout_seen[layer.name] = seen
    return Accounting(usage, fanout_seen, total, inter_core, inter_chip)


def consumers(layers: Sequence[LayerDemand]) -> dict[str, int]:
    """Per layer: how many connections read it (each needs at least one destination core)."""
    count = {layer.name: 0 for layer in layers}
    for layer in layers:
        for conn in layer.connections:
            if conn.source in count:
                count[conn.source] += 1
    return count
