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
from spikec.regions import Box, even_sizes, tile_count, tiles, volume
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
    n0 = layer.shape[0]
    for _, _, tile in tile_candidates(layer, fanout, capacity)[:MAX_TILE_TRIES]:
        # Sized on one interior tile; where demand varies along the layer (sparse rows, uneven fan-out),
        # cut axis 0 into more parts until every tile fits.
        parts = -(-n0 // tile[0])
        while parts <= n0:
            shape = (-(-n0 // parts), *tile[1:])
            if all(fits(layer.demand(box, fanout), capacity) for box in tiles(layer.shape, shape)):
                return shape
            parts += max(1, parts // 8)
    return (1,) * len(layer.shape)  # one neuron per tile fits (checked above)


def destinations(layers: Sequence[LayerDemand], index: int, shapes: Mapping[int, tuple[int, ...]]) -> np.ndarray:
    """Per neuron of ``layers[index]``: how many consumer tiles read it (its destination cores if no two
    share a core; 1 for a readout, whose spikes go to the host). Consumers with no tile shape in
    ``shapes`` yet (a recurrent edge, first round) count one destination per connection."""
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
    cap = np.asarray(capacity, dtype=np.int64)
    used = np.zeros((16, len(capacity)), dtype=np.int64)  # per core, grown by doubling
    for index, (layer, tile) in enumerate(zip(layers, shapes, strict=True)):
        for box in tiles(layer.shape, tile):
            demand = np.asarray(layer.demand(box, fanout[index]), dtype=np.int64)
            room = np.flatnonzero(np.all(used[: len(cores)] + demand <= cap, axis=1))
            if room.size:
                c = int(room[0])
            else:
                c = len(cores)
                cores.append(Core())
                if c == len(used):
                    used = np.concatenate([used, np.zeros_like(used)])
            cores[c].slices.append((index, box))
            used[c] += demand
    for core, row in zip(cores, used, strict=False):
        core.used = [int(v) for v in row]
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
    consumed = [False] * len(layers)
    total = inter_core = inter_chip = 0.0
    lows = [np.asarray([[lo for lo, _ in box] for _, box in w], dtype=np.int64).reshape(len(w), -1) for w in where]
    highs = [np.asarray([[hi for _, hi in box] for _, box in w], dtype=np.int64).reshape(len(w), -1) for w in where]
    on_core = [np.asarray([c for c, _ in w], dtype=np.int64) for w in where]
    out_axons = [np.zeros(len(w), dtype=np.int64) for w in where]  # per layer, per tile
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
                r_lo = np.asarray([lo for lo, _ in read])
                r_hi = np.asarray([hi for _, hi in read])
                extent = np.minimum(highs[src], r_hi) - np.maximum(lows[src], r_lo)
                overlaps = np.prod(np.clip(extent, 0, None), axis=1)
                out_axons[src] += overlaps
                total += float(overlaps.sum()) * rate
                inter_core += float(overlaps[on_core[src] != y].sum()) * rate
                inter_chip += float(overlaps[on_core[src] // cores_per_chip != y // cores_per_chip].sum()) * rate
    usage = [[0] * len(CORE_RESOURCES) for _ in cores]
    fanout_seen: dict[str, float] = {}
    for index, layer in enumerate(layers):
        seen = 1.0
        for t, (x, box) in enumerate(where[index]):
            k = volume(box)
            axons = int(out_axons[index][t]) if consumed[index] else k  # a readout sends to the host
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
