"""``partition{target=loihi2}``: assign every neuron to a core under the target's resource model.

The graph is returned unchanged; the :class:`~spikec.coremap.CoreMap` comes back as
``PartitionResult.core_map`` (a ``PassResult`` subclass, as ``threshold-balance`` returns its scales;
``PassManager.run(observe=...)`` sees it). Each neuron layer's demand (spikec.demand) is packed onto cores by
the strategies of ``_placement`` (``best`` tries each and keeps the fewest cores, then the least
inter-core traffic), output axons are checked against the real destination cores, and the result
is compared with the lower bound ``max over resources ⌈total demand / per-core capacity⌉``.
A model that cannot fit raises ``DoesNotFit`` naming the resource, the layer, the amount and the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from spikec.coremap import CoreMap, CoreUse, Placement, Traffic
from spikec.demand import LayerDemand, layer_demands
from spikec.errors import DoesNotFit, TargetError
from spikec.ir.graph import Graph
from spikec.passes._placement import (
    OUTPUT_AXONS,
    STRATEGIES,
    Accounting,
    Core,
    OneNeuronTooBig,
    account,
    choose_orders,
    consumers,
)
from spikec.pipeline import PassResult, register_pass
from spikec.regions import volume
from spikec.resources import CORE_RESOURCES, ResourceModel, resource_model

MAX_ROUNDS = 8  # re-plans with larger output fan-out estimates before output axons are declared full

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
    capacity = model.core[resource].value
    per_neuron = ""
    if resource == "synaptic_memory_bits":
        fan_in = sum(volume(c.back(layer.box(0, 1))) for c in layer.connections)
        per_neuron = f" (fan-in {fan_in:,} synapses)"
    return DoesNotFit(
        f"resource {resource}: layer {layer.node.describe(layer.name)} needs {err.amount:,} for a single neuron"
        f"{per_neuron}, and a {model.target} core holds {_limit_text(model, resource)}. "
        f"To fit, {_FIXES[resource]}; the limit is {capacity:,} per core"
    )


def _too_many_cores(
    model: ResourceModel, chips: int, cores: int, layers: Sequence[LayerDemand], plan: list[Core], binding: str
) -> DoesNotFit:
    per_layer: dict[int, set[int]] = {}
    for c, core in enumerate(plan):
        for index, _, _ in core.slices:
            per_layer.setdefault(index, set()).add(c)
    biggest = sorted(per_layer.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:3]
    named = ", ".join(f"'{layers[i].name}' ({len(c)} cores, {layers[i].size:,} neurons)" for i, c in biggest)
    need = -(-cores // model.cores_per_chip)
    return DoesNotFit(
        f"resource neuro-cores: the model needs {cores} cores = {need} chips of {model.cores_per_chip}; the "
        f"system allows {chips} chip(s) = {chips * model.cores_per_chip} cores (limited by {binding}). "
        f"Largest layers: {named}. Shrink those layers (fewer channels or neurons, sparser or lower-bit "
        f"weights) or allow more chips with partition{{target={model.target},chips={need}}}"
    )


def _lower_bound(layers: Sequence[LayerDemand], capacity: Sequence[int]) -> dict[str, int]:
    totals = [0] * len(CORE_RESOURCES)
    fed = consumers(layers)
    for layer in layers:
        demand = layer.demand(0, layer.size, 0)
        for r, d in enumerate(demand):
            totals[r] += d
        if not fed[layer.name]:
            totals[OUTPUT_AXONS] += layer.size  # a readout sends each neuron's spikes off the cores once
    names = {layer.name for layer in layers}
    for layer in layers:  # every (neuron, consumer) pair needs at least one output axon
        for conn in layer.connections:
            if conn.source in names:
                totals[OUTPUT_AXONS] += volume(conn.back(layer.box(0, layer.size)))
    return {r: -(-t // c) for r, t, c in zip(CORE_RESOURCES, totals, capacity, strict=True)}


def _plan(
    layers: list[LayerDemand], model: ResourceModel, strategy: str, rates: Mapping[str, float]
) -> tuple[list[LayerDemand], list[Core], Accounting]:
    """Plan with ``strategy``, raising the fan-out estimates until output axons fit (bounded rounds)."""
    capacity = model.capacity()
    fanout = {name: max(1, n) for name, n in consumers(layers).items()}
    layers = choose_orders(layers, capacity, fanout)
    for _ in range(MAX_ROUNDS):
        try:
            plan = STRATEGIES[strategy](layers, capacity, fanout)
        except OneNeuronTooBig as err:
            raise _one_neuron_error(model, layers, err) from None
        acc = account(layers, plan, model.cores_per_chip, rates)
        full = {c for c, use in enumerate(acc.usage) if use[OUTPUT_AXONS] > capacity[OUTPUT_AXONS]}
        if not full:
            return layers, plan, acc
        for c in full:
            for index, _, _ in plan[c].slices:
                name = layers[index].name
                fanout[name] = max(fanout[name] + 1, acc.fanout_seen[name])
    worst = max(range(len(acc.usage)), key=lambda c: acc.usage[c][OUTPUT_AXONS])
    names = sorted({layers[i].name for i, _, _ in plan[worst].slices})
    raise DoesNotFit(
        f"resource output_axons: core {worst} (layers {names}) needs {acc.usage[worst][OUTPUT_AXONS]:,} output "
        f"axons after {MAX_ROUNDS} re-plans; a core holds {_limit_text(model, 'output_axons')}. Reduce how many "
        "cores these layers feed (smaller consumer layers) or how many neurons they have"
    )


def partition_graph(
    graph: Graph,
    model: ResourceModel,
    *,
    chips: int = 0,
    weight_bits: int = 0,
    strategy: str = "best",
    rates: Mapping[str, float] | None = None,
) -> CoreMap:
    """Place every neuron layer of ``graph`` on cores of ``model``; see the module docstring."""
    chips = chips or model.max_chips
    if chips < 1:
        raise TargetError(f"chips={chips}: a system holds at least one chip")
    names = STRATEGIES if strategy == "best" else {strategy: None}
    if strategy != "best" and strategy not in STRATEGIES:
        raise TargetError(f"unknown partition strategy '{strategy}'; use best, {', '.join(STRATEGIES)}")
    layers = list(layer_demands(graph, model, weight_bits=weight_bits or None))
    if not layers:
        raise TargetError("the graph has no neuron layers to place; convert it to an SNN first")
    rates = dict(rates or {})
    unknown = sorted(set(rates) - {layer.name for layer in layers})
    if unknown:
        raise TargetError(f"rates given for {unknown}, which are not neuron layers of the graph")
    bound = _lower_bound(layers, model.capacity())
    binding = max(bound, key=lambda r: bound[r])
    results: list[tuple[int, float, int, str, list[LayerDemand], list[Core], Accounting]] = []
    for name in names:
        ordered, plan, acc = _plan(layers, model, name, rates)
        results.append((len(plan), acc.inter_core, len(results), name, ordered, plan, acc))
    count, _, _, chosen, layers, plan, acc = min(results, key=lambda r: r[:3])
    if count > chips * model.cores_per_chip:
        raise _too_many_cores(model, chips, count, layers, plan, binding)
    per_chip = model.cores_per_chip
    placements: dict[str, list[Placement]] = {layer.name: [] for layer in layers}
    cores = []
    for c, core in enumerate(plan):
        for index, a, b in core.slices:
            placements[layers[index].name].append(Placement(c, c // per_chip, a, b))
        held = tuple(dict.fromkeys(layers[i].name for i, _, _ in core.slices))
        cores.append(CoreUse(c, c // per_chip, held, tuple(acc.usage[c])))
    return CoreMap(
        target=model.target,
        strategy=chosen,
        cores_per_chip=per_chip,
        capacity=model.capacity(),
        layers={name: tuple(p) for name, p in placements.items()},
        layouts={layer.name: layer.layout for layer in layers},
        cores=tuple(cores),
        bound_by_resource=bound,
        traffic=Traffic(acc.total, acc.inter_core, acc.inter_chip),
        rates={layer.name: rates.get(layer.name, 1.0) for layer in layers},
        assumptions=tuple(model.assumptions()),
    )


@dataclasses.dataclass(frozen=True)
class PartitionResult(PassResult):
    core_map: CoreMap | None = None


@register_pass("partition")
def partition(
    graph: Graph,
    *,
    target: str = "loihi2",
    chips: int = 0,
    weight_bits: int = 0,
    strategy: str = "best",
    rates: Mapping[str, float] | None = None,
) -> PassResult:
    """Assign neurons to cores of ``target`` (result.core_map); chips=0 is the data file's system size.

    ``weight_bits=0`` takes the target's default; ``rates`` (layer -> spikes per neuron per step,
    e.g. a ConversionReport's spike rates) weight the traffic estimate; ``strategy`` is ``best``,
    ``fill`` or ``balanced``. The graph itself is returned unchanged.
    """
    core_map = partition_graph(
        graph, resource_model(target), chips=chips, weight_bits=weight_bits, strategy=strategy, rates=rates
    )
    return PartitionResult(graph, False, core_map)
