"""``partition{target=NAME}``: assign every neuron to a core under the target's resource model.

API (what a target's pipeline and ``spikec partition`` call)::

    from spikec.passes.partition import partition_graph
    core_map = partition_graph(graph, target)            # -> spikec.coremap.CoreMap
    core_map.to_json()                                   # core_map.json; CoreMap.from_json reads it back
    core_map.layers["conv1_if"]                          # (Placement(core, chip, box), ...)

As a pass, the graph comes back unchanged and the map as ``PartitionResult.core_map`` (a
``PassResult`` subclass, as ``threshold-balance`` returns its scales; ``PassManager.run(observe=...)``
sees it). Works on float SNNs (IF/LIF/... fed by Dense/Conv/pools) and on a target's fixed-point dialect,
whose kinds bring their demand (spikec.demand).

Steps: each layer's demand (spikec.demand) → a tile shape per layer and a first-fit packing of the
tiles (``_placement``) → exact output-axon and traffic accounting. Layers are tiled last to first, so
each layer knows how many consumer tiles read each of its neurons (its output axons, an upper bound
on the destination cores) before its own tiles are sized. Packing is tried forwards, backwards (exact
output axons: one per (neuron, destination core)) and backwards with uneven slabs filling open cores;
the fewest cores win. The core count is reported against ``max over resources ⌈total demand /
per-core capacity⌉``, the proven bound and the tile bound (``_bounds``). A model that cannot fit
raises ``DoesNotFit`` naming the resource, the layer, the amount and the fix. A target's docs give its resource
model and measured results (the built-in one: targets/<name>/docs).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from spikec.coremap import CoreMap, CoreUse, Placement, Traffic
from spikec.demand import LayerDemand, layer_demands
from spikec.errors import DoesNotFit, PassError, TargetError
from spikec.ir.graph import Graph
from spikec.passes._bounds import proven_bound, resource_bound, tile_bound
from spikec.passes._placement import (
    OUTPUT_AXONS,
    Accounting,
    Core,
    OneNeuronTooBig,
    account,
    choose_tile,
    destinations,
    pack,
    tile_candidates,
)
from spikec.pipeline import PassResult
from spikec.resources import CORE_RESOURCES, ResourceModel, load_resource_model, resource_model

MAX_ROUNDS = 4  # re-tilings with the previous round's tiles for recurrent consumers
SEARCH_TILES = 3  # tile shapes tried per layer and sweep by the joint search

# What to change when one neuron of a layer overflows a core, per resource.
_FIXES = {
    "neurons": "use a neuron kind with fewer compartments",
    "neuron_state_bytes": "use a neuron kind with less state",
    "synaptic_memory_bits": "reduce its fan-in (fewer inputs per neuron: split the layer's input, prune the "
    "weights to a sparse matrix) or quantise the weights to fewer bits (weight_bits=N)",
    "input_axons": "reduce the number of presynaptic neurons it reads (a smaller input, fewer input channels "
    "or a smaller receptive field), e.g. by inserting an intermediate layer",
    "output_axons": "reduce how many cores it feeds (fewer or smaller consumer layers)",
}


def _limit_text(model: ResourceModel, resource: str) -> str:
    lim = model.core[resource]
    note = " (assumed; see the resource file)" if lim.assumption else ""
    return f"{lim.value:,} {lim.unit}{note}"


def _one_neuron_error(model: ResourceModel, layers: Sequence[LayerDemand], err: OneNeuronTooBig) -> DoesNotFit:
    layer, resource = layers[err.layer], CORE_RESOURCES[err.resource]
    one = tuple((0, 1) for _ in layer.shape)
    fan_in = f" (fan-in {layer.input_axons(one):,} presynaptic neurons)" if resource != "neurons" else ""
    return DoesNotFit(
        f"resource {resource}: layer {layer.node.describe(layer.name)} needs {err.amount:,} for a single neuron"
        f"{fan_in}, and a {model.target} core holds {_limit_text(model, resource)}. "
        f"To fit, {_FIXES[resource]}; the limit is {model.core[resource].value:,} per core"
    )


def _too_many_cores(
    model: ResourceModel, chips: int, layers: Sequence[LayerDemand], plan: list[Core], binding: str
) -> DoesNotFit:
    per_layer: dict[int, set[int]] = {}
    for c, core in enumerate(plan):
        for index, _ in core.slices:
            per_layer.setdefault(index, set()).add(c)
    biggest = sorted(per_layer.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:3]
    named = ", ".join(f"'{layers[i].name}' ({len(c)} cores, {layers[i].size:,} neurons)" for i, c in biggest)
    need = -(-len(plan) // model.cores_per_chip)
    return DoesNotFit(
        f"resource neuro-cores: the model needs {len(plan)} cores = {need} chips of {model.cores_per_chip}; the "
        f"system allows {chips} chip(s) = {chips * model.cores_per_chip} cores (bound set by {binding}). "
        f"Largest layers: {named}. Shrink those layers (fewer channels or neurons, sparser or lower-bit "
        f"weights) or allow more chips with partition{{target={model.target},chips={need}}}"
    )


def _best_packing(
    layers: Sequence[LayerDemand],
    shapes: Sequence[tuple[int, ...]],
    capacity: Sequence[int],
    counts: Sequence[np.ndarray],
    cores_per_chip: int,
    rates: Mapping[str, float],
) -> tuple[list[Core], Accounting]:
    """First fit forwards (output axons estimated per consumer tile) and backwards (exact per destination
    core); the one with fewer cores whose output axons fit, then less inter-core traffic, forwards on ties."""
    best: tuple[tuple[int, int, float], list[Core], Accounting] | None = None
    for reverse, fill in ((False, False), (True, False), (True, True)):
        plan = pack(layers, shapes, capacity, counts, reverse=reverse, fill=fill)
        acc = account(layers, plan, cores_per_chip, rates)
        over = int(any(row[OUTPUT_AXONS] > capacity[OUTPUT_AXONS] for row in acc.usage))
        key = (over, len(plan), acc.inter_core)
        if best is None or key < best[0]:
            best = (key, plan, acc)
    assert best is not None
    return best[1], best[2]


def _tile_all(
    layers: Sequence[LayerDemand], capacity: Sequence[int], fixed: Mapping[int, tuple[int, ...]]
) -> tuple[list[tuple[int, ...]], list[np.ndarray]]:
    """Tile shapes last to first: ``fixed`` ones as given, the others the best for their consumers' tiles."""
    chosen: dict[int, tuple[int, ...]] = {}
    fanout: dict[int, np.ndarray] = {}
    for index in reversed(range(len(layers))):
        fanout[index] = destinations(layers, index, chosen)
        chosen[index] = fixed.get(index) or choose_tile(layers, index, fanout[index], capacity)
    return [chosen[i] for i in range(len(layers))], [fanout[i] for i in range(len(layers))]


def _joint_search(layers: Sequence[LayerDemand], capacity: Sequence[int], sweeps: int) -> dict[int, tuple[int, ...]]:
    """Coordinate descent over layers, last to first: fix a layer to one of its ``SEARCH_TILES`` best
    tiles (given its consumers), re-tile its producers for it, re-pack (backwards, with fill), and
    keep it when fewer cores result and every core fits. ``sweeps`` passes at most; deterministic."""
    fixed: dict[int, tuple[int, ...]] = {}
    cap = np.asarray(capacity)

    def cores_for(trial: Mapping[int, tuple[int, ...]]) -> tuple[int, list[tuple[int, ...]]]:
        tiles_, counts = _tile_all(layers, capacity, trial)
        plan = pack(layers, tiles_, capacity, counts, reverse=True, fill=True)
        fits = all(np.all(np.asarray(row) <= cap) for row in account(layers, plan, 1, {}).usage)
        return (len(plan) if fits else sys.maxsize), tiles_

    best, shapes = cores_for(fixed)
    for _ in range(sweeps):
        improved = False
        for index in reversed(range(len(layers))):
            fanout = destinations(layers, index, {j: shapes[j] for j in range(index + 1, len(layers))})
            for _, _, tile in tile_candidates(layers[index], fanout, capacity)[:SEARCH_TILES]:
                if tile == shapes[index]:
                    continue
                try:
                    cores, tiles_ = cores_for({**fixed, index: tile})
                except OneNeuronTooBig:
                    continue
                if cores < best:
                    best, shapes, improved = cores, tiles_, True
                    fixed[index] = tile
        if not improved:
            break
    return fixed


def _plan(
    layers: Sequence[LayerDemand], model: ResourceModel, rates: Mapping[str, float], search: int = 0
) -> tuple[list[tuple[int, ...]], list[np.ndarray], list[Core], Accounting]:
    """Tile layers last to first (a layer's output axons follow from its consumers' tiles), pack, account.

    A recurrent consumer is tiled after its source, so the first round counts it as one destination;
    later rounds (at most ``MAX_ROUNDS``) use the previous round's tiles for it.
    """
    capacity = model.capacity()
    previous: dict[int, tuple[int, ...]] = {}
    for _ in range(MAX_ROUNDS):
        chosen: dict[int, tuple[int, ...]] = {}
        fanout: dict[int, np.ndarray] = {}
        try:
            for index in reversed(range(len(layers))):
                fanout[index] = destinations(layers, index, {**previous, **chosen})
                chosen[index] = choose_tile(layers, index, fanout[index], capacity)
        except OneNeuronTooBig as err:
            raise _one_neuron_error(model, layers, err) from None
        shapes = [chosen[i] for i in range(len(layers))]
        counts = [fanout[i] for i in range(len(layers))]
        plan, acc = _best_packing(layers, shapes, capacity, counts, model.cores_per_chip, rates)
        worst = max(range(len(acc.usage)), key=lambda c: acc.usage[c][OUTPUT_AXONS])
        if acc.usage[worst][OUTPUT_AXONS] <= capacity[OUTPUT_AXONS] or chosen == previous:
            break
        previous = chosen
    if search and not previous and acc.usage[worst][OUTPUT_AXONS] <= capacity[OUTPUT_AXONS]:  # no recurrent re-plan
        fixed = _joint_search(layers, capacity, search)
        if fixed:
            tiled, fanouts = _tile_all(layers, capacity, fixed)
            found, found_acc = _best_packing(layers, tiled, capacity, fanouts, model.cores_per_chip, rates)
            if len(found) < len(plan):
                shapes, counts, plan, acc = tiled, fanouts, found, found_acc
                worst = max(range(len(acc.usage)), key=lambda c: acc.usage[c][OUTPUT_AXONS])
    if acc.usage[worst][OUTPUT_AXONS] > capacity[OUTPUT_AXONS]:
        names = sorted({layers[i].name for i, _ in plan[worst].slices})
        raise DoesNotFit(
            f"resource output_axons: core {worst} (layers {names}) needs {acc.usage[worst][OUTPUT_AXONS]:,} output "
            f"axons after {MAX_ROUNDS} re-plans; a core holds {_limit_text(model, 'output_axons')}. Reduce how many "
            "cores these layers feed (smaller or sparser recurrent or consumer layers)"
        )
    return shapes, counts, plan, acc


def partition_graph(
    graph: Graph,
    target: str | ResourceModel,
    *,
    chips: int = 0,
    weight_bits: int = 0,
    rates: Mapping[str, float] | None = None,
    search: int = 0,
) -> CoreMap:
    """Place every neuron layer of ``graph`` on cores of ``target``; see the module docstring.

    ``chips=0`` takes the resource file's system size; ``weight_bits=0`` the target's default bits
    for float Dense/Conv weights (a fixed-point dialect's synapses carry their own); ``rates`` (layer -> spikes
    per neuron per step, e.g. a ConversionReport's) weight the traffic estimate (default 1). ``search=N``
    runs up to N sweeps of a joint tiling search (coordinate descent over layers' tiles, each trial
    re-packed; seconds to tens of seconds on large models: ViT-B MLP 1,092 -> 1,072 cores in ~7 s).
    """
    model = resource_model(target) if isinstance(target, str) else target
    chips = chips or model.max_chips
    if chips < 1:
        raise TargetError(f"chips={chips}: a system holds at least one chip")
    layers = layer_demands(graph, model, weight_bits=weight_bits or None)
    if not layers:
        raise TargetError("the graph has no neuron layers to place; convert it to an SNN first")
    rates = dict(rates or {})
    unknown = sorted(set(rates) - {layer.name for layer in layers})
    if unknown:
        raise TargetError(f"rates given for {unknown}, which are not neuron layers of the graph")
    shapes, counts, plan, acc = _plan(layers, model, rates, search)
    capacity = model.capacity()
    bound = resource_bound(layers, capacity)
    tight = tile_bound(layers, capacity, counts)
    if len(plan) > chips * model.cores_per_chip:
        binding = max(tight, key=lambda r: tight[r])
        raise _too_many_cores(model, chips, layers, plan, binding)
    per_chip = model.cores_per_chip
    placements: dict[str, list[Placement]] = {layer.name: [] for layer in layers}
    cores = []
    for c, core in enumerate(plan):
        for index, box in core.slices:
            placements[layers[index].name].append(Placement(c, c // per_chip, box))
        held = tuple(dict.fromkeys(layers[i].name for i, _ in core.slices))
        cores.append(CoreUse(c, c // per_chip, held, tuple(acc.usage[c])))
    return CoreMap(
        target=model.target,
        cores_per_chip=per_chip,
        capacity=capacity,
        layers={name: tuple(p) for name, p in placements.items()},
        shapes={layer.name: tuple(layer.shape) for layer in layers},
        tiles={layer.name: shape for layer, shape in zip(layers, shapes, strict=True)},
        cores=tuple(cores),
        bound_by_resource=bound,
        tile_bound_by_resource=tight,
        traffic=Traffic(acc.total, acc.inter_core, acc.inter_chip),
        rates={layer.name: rates.get(layer.name, 1.0) for layer in layers},
        assumptions=tuple(model.assumptions()),
        proven_bound_by_resource=proven_bound(layers, capacity),
        system=model.smallest_system(-(-len(plan) // per_chip)),
    )


@dataclasses.dataclass(frozen=True)
class PartitionResult(PassResult):
    core_map: CoreMap | None = None


def partition(
    graph: Graph,
    *,
    target: str = "",
    chips: int = 0,
    weight_bits: int = 0,
    rates: Mapping[str, float] | None = None,
    search: int = 0,
    resources: str = "",
) -> PassResult:
    """Assign neurons to cores of ``target`` (result.core_map); chips=0 is the data file's system size.

    ``weight_bits=0`` takes the target's default; ``rates`` (layer -> spikes per neuron per step,
    e.g. a ConversionReport's spike rates) weight the traffic estimate; ``search=N`` runs N sweeps of
    the joint tiling search (slower, fewer cores); ``resources=PATH`` places on the cores a resource file
    describes instead of the target's own (another configuration of the chip). The graph is returned unchanged.
    """
    if not target:
        raise PassError("partition: name the target whose cores to place on: partition{target=NAME} (spikec targets)")
    model: str | ResourceModel = target
    if resources:
        model = load_resource_model(Path(resources))
        if model.target != target:
            raise PassError(f"partition: {resources} describes target '{model.target}', not '{target}'")
    core_map = partition_graph(graph, model, chips=chips, weight_bits=weight_bits, rates=rates, search=search)
    return PartitionResult(graph, False, core_map)
