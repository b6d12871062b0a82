"""Placing neuron layers on cores: cut each layer into core-sized boxes (tiles), pack the tiles, count exactly.

1. ``choose_tile``: for each layer the tile shape that needs the fewest tiles, each fitting an empty
   core in every resource. Axes 1.. take the sizes that cut them into k nearly equal parts
   (``regions.even_sizes``: O(√n) per axis); axis 0 takes the largest size that still fits (binary
   search), evened out. Ties go to the least input-axon total (least halo duplication). A (C, H, W)
   layer thus gets spatial tiles of many channels when its fan-in is wide (input axons bind), or
   channel blocks when weights bind; a (tokens, features) layer gets token × feature blocks.
2. ``pack``: first fit over the open cores, so small layers share cores: tiles in topological order,
   or layers last to first (a tile's consumers placed, so its output axons exact), optionally cut into
   uneven slabs that fill the open cores' room (``_fill``).
3. ``account``: what the placement really uses. A neuron needs one output axon, and sends one
   message per step it spikes, for every core holding a tile that reads it (found by mapping each
   consumer tile back onto its source, ``Connection.back``, and counting the union per core).

Everything is deterministic and bounded: O(tiles · cores) fit checks and O(Σ√n · log n) demand
evaluations per layer for the tile choice.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from spikec.demand import Demand, LayerDemand
from spikec.regions import Box, BoxUnion, even_sizes, tile_count, tiles, volume
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


def probe_tiles(layer: LayerDemand, tile: tuple[int, ...]) -> list[Box]:
    """Tiles of shape ``tile`` that stand for all of ``layers``'s: an interior one, and at the same position
    the tile of the axis-0 grid holding each ``probe_channels`` channel (a concatenation's parts read
    different sources, and a tile across two parts reads both)."""
    n0, t = layer.shape[0], tile[0]
    inner = interior(layer.shape, tile)
    starts = {inner[0][0]} | {p // t * t for p in layer.probe_channels()}
    return [((s, min(s + t, n0)), *inner[1:]) for s in sorted(starts)]


def _largest_axis0(layer: LayerDemand, rest: tuple[int, ...], fanout: Fanout, capacity: Sequence[int]) -> int:
    """The largest axis-0 size t whose ``probe_tiles`` (t, *rest) fit an empty core (0: none)."""
    n0 = layer.shape[0]

    def ok(t: int) -> bool:
        return all(fits(layer.demand(box, fanout), capacity) for box in probe_tiles(layer, (t, *rest)))

    if ok(n0):
        return n0
    lo, hi = 0, n0  # ok(lo) (or lo = 0), not ok(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    aligned = part_width(layer)  # tiles across a part boundary read both parts: ok is not monotone there
    while aligned > lo and not ok(aligned):
        aligned = next((d for d in range(aligned // 2, 0, -1) if aligned % d == 0), 0)
    return max(lo, aligned)


def part_width(layer: LayerDemand) -> int:
    """The widest axis-0 size whose grid never cuts across a concatenation's parts (the gcd of where they
    start; 0 for a layer that is not a concatenation of parts)."""
    return math.gcd(*layer.part_starts)


def check_one_neuron(layers: Sequence[LayerDemand], index: int, fanout: Fanout, capacity: Sequence[int]) -> None:
    layer = layers[index]
    one = layer.one_neuron(interior(layer.shape, (1,) * len(layer.shape)), fanout)
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
    aligned = part_width(layer)
    found = []
    for rest in itertools.product(*(even_sizes(n) for n in layer.shape[1:])):
        t0 = _largest_axis0(layer, rest, fanout, capacity)
        if t0 == 0:
            continue
        if t0 != aligned:
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


Placed = list[list[tuple[int, Box]]]  # per layer: (core, box) of each placed tile


def reads_by_core(layers: Sequence[LayerDemand], index: int, placed: Placed) -> dict[int, list[Box]]:
    """Per core: the boxes of ``layers[index]`` that the placed tiles on that core read (all consumers)."""
    name = layers[index].name
    groups: dict[int, list[Box]] = {}
    for j, consumer in enumerate(layers):
        for conn in consumer.connections:
            if conn.source != name:
                continue
            for core, box in placed[j]:
                read = conn.back(box)
                if read is not None:
                    groups.setdefault(core, []).append(read)
    return groups


def _bounds_of(boxes: Sequence[Box]) -> tuple[np.ndarray, np.ndarray]:
    lows = np.asarray([[lo for lo, _ in box] for box in boxes], dtype=np.int64).reshape(len(boxes), -1)
    highs = np.asarray([[hi for _, hi in box] for box in boxes], dtype=np.int64).reshape(len(boxes), -1)
    return lows, highs


def _slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(lo, hi) for lo, hi in box)


def coverage(shape: Sequence[int], groups: Iterable[Sequence[Box]]) -> np.ndarray:
    """Per neuron of a layer of ``shape``: how many of the unions ``groups`` (one per core) contain it.

    Each group's boxes are painted once with a stamp array, so a neuron two boxes of one group read
    counts once: ``cover[n] = #{cores y : n ∈ U_y}``, in O(Σ box volumes)."""
    cover = np.zeros(tuple(shape), dtype=np.int32)
    stamp: np.ndarray | None = None
    for y, reads in enumerate(groups):
        if len(reads) == 1:
            cover[_slices(reads[0])] += 1
            continue
        if stamp is None:
            stamp = np.full(tuple(shape), -1, dtype=np.int32)
        for box in reads:
            region = _slices(box)
            fresh = stamp[region] != y
            cover[region] += fresh
            stamp[region][fresh] = y
    return cover


class BoxSums:
    """Sums of a layer-shaped integer array over query boxes: a summed-area table S (one more row per
    axis), ``Σ_{n ∈ q} a[n] = Σ_corners (-1)^(#lo corners) S[corner]``, O(2^d) per box."""

    def __init__(self, values: np.ndarray) -> None:
        table = np.zeros(tuple(n + 1 for n in values.shape), dtype=np.int64)
        table[tuple(slice(1, None) for _ in values.shape)] = values
        for axis in range(values.ndim):
            np.cumsum(table, axis=axis, out=table)
        self.table = table

    def sum(self, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
        total = np.zeros(len(lows), dtype=np.int64)
        for corner in itertools.product((0, 1), repeat=self.table.ndim):
            index = tuple(lows[:, d] if low else highs[:, d] for d, low in enumerate(corner))
            total += (-1) ** sum(corner) * self.table[index]
        return total

    def box(self, box: Box) -> int:
        """The sum over one box (the corners read one by one: no arrays for a single query)."""
        total = 0
        for corner in itertools.product((0, 1), repeat=len(box)):
            index = tuple(lo if low else hi for (lo, hi), low in zip(box, corner, strict=True))
            total += (-1) ** sum(corner) * int(self.table[index])
        return total


class DestinationReads:
    """Which neurons of a source layer each destination core reads: one output axon per (neuron, core).

    ``count(lows, highs)`` gives, per query box, ``Σ_cores |box ∩ U_core|`` with ``U_core`` the union
    of the boxes the tiles on that core read: the sum over the box of each neuron's destination cores
    (``coverage``), read from one summed-area table (``BoxSums``), so a query costs the same however
    many cores read the layer.
    """

    def __init__(self, shape: Sequence[int], groups: Mapping[int, Sequence[Box]]) -> None:
        self.sums = BoxSums(coverage(shape, groups.values()))

    def count(self, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
        return self.sums.sum(lows, highs)

    def count_box(self, box: Box) -> int:
        return self.sums.box(box)


def _unplaced_destinations(
    layers: Sequence[LayerDemand], index: int, shapes: Sequence[tuple[int, ...]], placed: Placed
) -> np.ndarray:
    """Per neuron: consumer tiles not placed yet that read it (a recurrent edge in reverse order)."""
    layer = layers[index]
    counts = np.zeros(layer.shape, dtype=np.int64)
    for j, consumer in enumerate(layers):
        if placed[j]:
            continue
        for conn in consumer.connections:
            if conn.source == layer.name:
                for box in tiles(consumer.shape, shapes[j]):
                    read = conn.back(box)
                    if read is not None:
                        counts[tuple(slice(lo, hi) for lo, hi in read)] += 1
    return counts


class _Cores:
    """Open cores and their room while packing (rows grown by doubling).

    First fit over thousands of cores: the cores are grouped in blocks of ``BLOCK`` with each block's
    most room per resource, so a query checks the blocks' maxima, then only the cores of blocks that
    could hold the demand (the same core as a scan over all of them)."""

    BLOCK = 64

    def __init__(self, layers: int, capacity: Sequence[int]) -> None:
        self.cores: list[Core] = []
        self.cap = np.asarray(capacity, dtype=np.int64)
        self.room = np.full((self.BLOCK, len(capacity)), -1, dtype=np.int64)  # unopened rows: less than none
        self.block_room = np.full((1, len(capacity)), -1, dtype=np.int64)
        self.placed: Placed = [[] for _ in range(layers)]
        self._first: dict[bytes, int] = {}  # demand -> the core its last first-fit search found

    def first_with_room(self, demand: np.ndarray) -> int:
        """The first open core ``demand`` fits on; a new empty one when none has room.

        Rooms only shrink, so the first fit for a demand never moves back: the search for a demand seen
        before starts at its last answer (a layer's tiles mostly share one demand)."""
        b = self.BLOCK
        key = demand.tobytes()
        start = self._first.get(key, 0)
        first_block = start // b
        blocks = np.flatnonzero(np.all(self.block_room[first_block:] >= demand, axis=1)) + first_block
        if blocks.size:
            rows = self.room.reshape(-1, b, len(self.cap))[blocks]
            hit = np.all(rows >= demand, axis=2)
            hit[blocks == first_block, : start - first_block * b] = False
            flat = np.flatnonzero(hit)
            if flat.size:
                core = int(blocks[flat[0] // b] * b + flat[0] % b)
                self._first[key] = core
                return core
        core = len(self.cores)
        self.cores.append(Core())
        if core == len(self.room):
            self.room = np.concatenate([self.room, np.full_like(self.room, -1)])
            self.block_room = np.concatenate([self.block_room, np.full_like(self.block_room, -1)])
        self.room[core] = self.cap
        self.block_room[core // b] = self.cap
        self._first[key] = core
        return core

    def fits(self, core: int, demand: np.ndarray) -> bool:
        return bool(np.all(self.room[core] >= demand))

    def place(self, core: int, index: int, box: Box, demand: np.ndarray) -> None:
        self.cores[core].slices.append((index, box))
        self.placed[index].append((core, box))
        self.room[core] -= demand
        block = core // self.BLOCK
        self.block_room[block] = self.room[block * self.BLOCK : (block + 1) * self.BLOCK].max(axis=0)

    def done(self) -> list[Core]:
        for core, row in zip(self.cores, self.cap - self.room, strict=False):
            core.used = [int(v) for v in row]
        return self.cores


def _demand_function(
    layers: Sequence[LayerDemand],
    index: int,
    shapes: Sequence[tuple[int, ...]],
    fanout: Fanout,
    placed: Placed | None,
) -> Callable[[Box], np.ndarray]:
    """Demand of a box of ``layers[index]``; with ``placed`` (consumers placed first) its output axons
    are exact per destination core, plus one per tile of consumers not placed yet (recurrent)."""
    layer = layers[index]
    if placed is None or index not in consumers_of(layers):
        return lambda box: np.asarray(layer.demand(box, fanout), dtype=np.int64)
    reads = DestinationReads(layer.shape, reads_by_core(layers, index, placed))
    unplaced = _unplaced_destinations(layers, index, shapes, placed)
    late: Fanout = unplaced if unplaced.any() else 0

    def demand(box: Box) -> np.ndarray:
        out = np.asarray(layer.demand(box, late), dtype=np.int64)
        out[OUTPUT_AXONS] += reads.count_box(box)
        return out

    return demand


def _fill(
    cores: _Cores, index: int, shape: tuple[int, ...], tile: tuple[int, ...], demand: Callable[[Box], np.ndarray]
) -> None:
    """Cut ``layers[index]`` into slabs along its first cut axis (the grid of ``tile`` on the other
    axes), each slab as long as fits the first core with room: uneven tiles filling the gaps."""
    axis = next((a for a, (n, t) in enumerate(zip(shape, tile, strict=True)) if t < n), 0)
    n = shape[axis]
    for cell in tiles(shape, tuple(n if a == axis else t for a, t in enumerate(tile))):
        _fill_cell(cores, index, cell, axis, demand)


def _fill_cell(cores: _Cores, index: int, cell: Box, axis: int, demand: Callable[[Box], np.ndarray]) -> None:
    """Slabs of ``cell`` along ``axis``, each as long as fits the first core with room. Where a slab one
    neuron thick overflows even an empty core (its neurons feed more cores than the tiling estimated:
    the consumers' slabs are uneven), the rest of the cell is halved along its longest other axis and
    each half filled the same way."""
    start, end = cell[axis]
    while start < end:

        def slab(size: int, start: int = start) -> Box:
            return (*cell[:axis], (start, start + size), *cell[axis + 1 :])

        one = demand(slab(1))
        if not np.all(one <= cores.cap):
            rest = slab(end - start)
            others = [a for a, (lo, hi) in enumerate(rest) if a != axis and hi - lo > 1]
            if others:
                other = max(others, key=lambda a: rest[a][1] - rest[a][0])
                lo, hi = rest[other]
                for half in ((lo, (lo + hi) // 2), ((lo + hi) // 2, hi)):
                    _fill_cell(cores, index, (*rest[:other], half, *rest[other + 1 :]), axis, demand)
                return
        c = cores.first_with_room(one)
        lo, hi = 1, end - start + 1  # fits(lo), not fits(hi)
        if cores.fits(c, demand(slab(end - start))):
            lo = end - start
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if cores.fits(c, demand(slab(mid))) else (lo, mid)
        box = slab(lo)
        cores.place(c, index, box, demand(box))
        start += lo


def pack(
    layers: Sequence[LayerDemand],
    shapes: Sequence[tuple[int, ...]],
    capacity: Sequence[int],
    fanout: Sequence[Fanout],
    *,
    reverse: bool = False,
    fill: bool = False,
) -> list[Core]:
    """Every layer's tiles on the first core with room (a new one when none has).

    In topological order a tile's output axons are the estimate ``fanout`` (one per consumer tile).
    With ``reverse`` the layers go last to first, so a tile's consumers are already placed and its
    output axons are exact: one per (neuron, destination core), consumer tiles sharing a core share
    it. Consumers not placed yet (recurrent edges) count one per tile. With ``fill`` (reverse only)
    a layer is cut into uneven slabs that fill the open cores' room first (``_fill``).
    """
    cores = _Cores(len(layers), capacity)
    order = reversed(range(len(layers))) if reverse else range(len(layers))
    for index in order:
        layer = layers[index]
        demand = _demand_function(layers, index, shapes, fanout[index], cores.placed if reverse else None)
        if fill and reverse:
            _fill(cores, index, layer.shape, shapes[index], demand)
            continue
        for box in tiles(layer.shape, shapes[index]):
            need = demand(box)
            cores.place(cores.first_with_room(need), index, box, need)
    return cores.done()


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


def consumers_of(layers: Sequence[LayerDemand]) -> list[int]:
    """Indices of the layers some layer reads (the others are readouts: they send to the host)."""
    names = {c.source for layer in layers for c in layer.connections}
    return [i for i, layer in enumerate(layers) if layer.name in names]


def _local_reads(
    shape: Sequence[int],
    groups: Mapping[int, Sequence[Box]],
    on_core: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    cores_per_group: int,
    every: np.ndarray,
) -> np.ndarray:
    """Per box (held by core ``on_core[i]``): ``Σ |box ∩ U_y|`` over the reading cores ``y`` in the box's own
    group of ``cores_per_group`` cores (1: its own core; a chip's cores: its chip); ``every`` is that sum
    over all reading cores (the answer where they all lie in the group)."""
    local = np.zeros(len(lows), dtype=np.int64)
    where = on_core // cores_per_group
    by_group: dict[int, dict[int, Sequence[Box]]] = {}
    for y, reads in groups.items():
        by_group.setdefault(y // cores_per_group, {})[y] = reads
    for g in np.unique(where):
        readers = by_group.get(int(g))
        if not readers:
            continue
        mine = where == g
        if len(readers) == len(groups):
            local[mine] = every[mine]
        elif len(readers) == 1:
            (reads,) = readers.values()
            local[mine] = BoxUnion(reads).overlaps(lows[mine], highs[mine])
        else:
            local[mine] = DestinationReads(shape, readers).count(lows[mine], highs[mine])
    return local


def account(
    layers: Sequence[LayerDemand], cores: Sequence[Core], cores_per_chip: int, rates: Mapping[str, float]
) -> Accounting:
    """Exact usage of a placement (output axons from the consumers' real cores) and its spike traffic.

    A source neuron needs one output axon, and sends one message per spike, per destination core:
    the cores holding a tile that reads it, however many tiles or layers there read it. A readout
    neuron needs one (to the host).
    """
    placed: Placed = [[] for _ in layers]
    for c, core in enumerate(cores):
        for index, box in core.slices:
            placed[index].append((c, box))
    consumed = set(consumers_of(layers))
    total = inter_core = inter_chip = 0.0
    usage = [[0] * len(CORE_RESOURCES) for _ in cores]
    fanout_seen: dict[str, float] = {}
    for index, layer in enumerate(layers):
        boxes = [box for _, box in placed[index]]
        on_core = np.asarray([c for c, _ in placed[index]], dtype=np.int64)
        if index in consumed:
            lows, highs = _bounds_of(boxes)
            groups = reads_by_core(layers, index, placed)
            axons = DestinationReads(layer.shape, groups).count(lows, highs)
            rate = rates.get(layer.name, 1.0)
            same_core = _local_reads(layer.shape, groups, on_core, lows, highs, 1, axons)
            same_chip = _local_reads(layer.shape, groups, on_core, lows, highs, cores_per_chip, axons)
            total += float(axons.sum()) * rate
            inter_core += float((axons - same_core).sum()) * rate
            inter_chip += float((axons - same_chip).sum()) * rate
        else:
            axons = np.asarray([volume(box) for box in boxes], dtype=np.int64)  # a readout sends to the host
        seen = 1.0
        for (x, box), a in zip(placed[index], axons, strict=True):
            seen = max(seen, int(a) / volume(box))
            demand = list(layer.demand(box, 0))
            demand[OUTPUT_AXONS] = int(a)
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
