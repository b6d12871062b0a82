"""Lower bounds on the cores a model needs, reported beside the core count.

``resource_bound`` is the issue's bound: ``max over resources ⌈total demand / per-core capacity⌉``,
with each layer's demand taken as one whole (every weight stored once, every presynaptic neuron
read once, one output axon per (neuron, consumer layer) pair, one per readout neuron).

``tile_bound`` is tighter where a layer cannot be cut without duplicating something: a
convolution's tiles overlap on their input (halo: more input axons) and a Dense layer applied to
every token needs its weight rows on every core holding those tokens (weight sharing). For each
layer and resource it takes the least demand per neuron over the maximal core-sized tiles
(``_placement.tile_candidates``) and sums ``neurons × that ratio`` over layers:
``max over resources ⌈Σ_layers size · min_tiles(demand / neurons) / capacity⌉``. It bounds every
placement that cuts layers into boxes of the searched shapes, not arbitrary neuron sets.
"""

from __future__ import annotations

from collections.abc import Sequence

from spikec.demand import LayerDemand
from spikec.passes._placement import OUTPUT_AXONS, Fanout, consumers, interior, tile_candidates
from spikec.regions import volume
from spikec.resources import CORE_RESOURCES


def _output_axons(layers: Sequence[LayerDemand]) -> int:
    """One output axon per (neuron, consumer connection) pair, and one per readout neuron."""
    names = {layer.name for layer in layers}
    fed = consumers(layers)
    total = sum(layer.size for layer in layers if not fed[layer.name])
    for layer in layers:
        for conn in layer.connections:
            if conn.source in names:
                total += volume(conn.back(layer.box))
    return total


def _ceil_div(totals: Sequence[float], capacity: Sequence[int]) -> dict[str, int]:
    return {r: max(0, -int(-t // c)) for r, t, c in zip(CORE_RESOURCES, totals, capacity, strict=True)}


def resource_bound(layers: Sequence[LayerDemand], capacity: Sequence[int]) -> dict[str, int]:
    """Resource -> ⌈total demand / capacity⌉ with every layer taken whole."""
    totals = [0.0] * len(CORE_RESOURCES)
    for layer in layers:
        for r, d in enumerate(layer.demand(layer.box, 0)):
            totals[r] += d
    totals[OUTPUT_AXONS] = _output_axons(layers)
    return _ceil_div(totals, capacity)


def tile_bound(layers: Sequence[LayerDemand], capacity: Sequence[int], fanout: Sequence[Fanout]) -> dict[str, int]:
    """Resource -> ⌈Σ_layers size · least demand per neuron over maximal fitting tiles / capacity⌉."""
    totals = [0.0] * len(CORE_RESOURCES)
    for layer, f in zip(layers, fanout, strict=True):
        best = [float("inf")] * len(CORE_RESOURCES)
        for _, _, tile in tile_candidates(layer, f, capacity):
            for box in (interior(layer.shape, tile), tuple((0, t) for t in tile)):  # inside, and at the padded edge
                k = volume(box)
                for r, d in enumerate(layer.demand(box, 0)):
                    best[r] = min(best[r], d / k)
        for r in range(len(CORE_RESOURCES)):
            if best[r] < float("inf"):
                totals[r] += best[r] * layer.size
    totals[OUTPUT_AXONS] = _output_axons(layers)
    return _ceil_div(totals, capacity)
