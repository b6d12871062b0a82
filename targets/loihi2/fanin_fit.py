"""What ``split-fanin`` asks of the resource model: which neurons do not fit a core, how to group a synapse's
columns, how large a partial sum can grow, and whether the split graph fits (``DoesNotFit`` otherwise).

A neuron *does not fit* when one neuron of its layer, alone on an empty core, needs more input axons or
synaptic memory than the core has (spikec.demand, as the partition pass counts them): splitting can fix
those two, not its neuron count or state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spikec.demand import LayerDemand, layer_demands
from spikec.errors import DoesNotFit
from spikec.ir import Graph, Level
from spikec.ir.node import Shape
from spikec.resources import CORE_RESOURCES, ResourceModel
from spikec.targets.loihi2.dialect import LoihiDense
from spikec.targets.loihi2.kernels import dense_weights
from spikec.targets.loihi2.relay import LoihiGradedVec

SPLITTABLE = ("input_axons", "synaptic_memory_bits")  # what splitting a neuron's fan-in reduces


def _one_neuron(layer: LayerDemand) -> dict[str, int]:
    """What one neuron of ``layer`` (away from its low edges, as the partitioner probes; the most of any of its
    ``probe_channels``) needs of a core."""
    box = tuple((s, s + 1) for n in layer.shape for s in [min(1, n - 1)])
    return dict(zip(CORE_RESOURCES, layer.one_neuron(box, 1), strict=True))


def _over(model: ResourceModel, need: dict[str, int]) -> list[str]:
    return [r for r in SPLITTABLE if need[r] > model.core[r].value]


def too_wide(graph: Graph, model: ResourceModel) -> list[str]:
    """Loihi neuron layers (topological order) whose one neuron exceeds a core's input axons or memory."""
    if not any(node.level == Level.FIXED for node in graph.nodes.values()):
        return []  # not (yet) in the Loihi dialect: nothing of ours to split
    return [layer.name for layer in layer_demands(graph, model) if _over(model, _one_neuron(layer))]


def check_fit(graph: Graph, model: ResourceModel, split: Sequence[str], group: int) -> None:
    """Raise ``DoesNotFit`` (resource, layer, amount, fix) if a split layer or a relay still does not fit."""
    for layer in layer_demands(graph, model):
        if layer.name not in split and not isinstance(layer.node, LoihiGradedVec):
            continue
        need = _one_neuron(layer)
        for resource in _over(model, need):
            limit = model.core[resource]
            relay = isinstance(layer.node, LoihiGradedVec)
            fix = (
                f"pass a smaller split-fanin{{group=N}} (now {group:,})"
                if relay
                else "its synapses that split-fanin cannot split (convolutions, recurrent or shared ones) read too "
                "much: give the layer fewer input channels or a smaller kernel"
            )
            raise DoesNotFit(
                f"resource {resource}: layer {layer.node.describe(layer.name)} needs {need[resource]:,} for a single "
                f"neuron after fan-in splitting, and a {model.target} core holds {limit.value:,} {limit.unit}. "
                f"To fit, {fix}"
            )


def column_groups(shape: Shape, limit: int) -> list[tuple[int, int]]:
    """Contiguous C-order ranges of a ``shape`` tensor's flattening, each at most ``limit`` values and each a
    box of the tensor (whole blocks of its trailing axes, never across a block of the axis above), evened out.

    (512, 7, 7) with limit 2,048: 13 ranges of 40 channels (1,960 values), the last 32; (100,) with 4: 25 of 4.
    """
    total = math.prod(shape)
    if total <= limit:
        return [(0, total)]
    axis = next(a for a in range(len(shape)) if math.prod(shape[a + 1 :]) <= limit)
    block = math.prod(shape[axis + 1 :])  # one index of ``axis``
    outer = block * shape[axis]  # one index of the axes before ``axis``: larger than limit unless axis == 0
    parts = -(-shape[axis] // (limit // block))
    per = -(-shape[axis] // parts)
    return [
        (base + start * block, base + min(start + per, shape[axis]) * block)
        for base in range(0, total, outer)
        for start in range(0, shape[axis], per)
    ]


def partial_bound(node: LoihiDense, block: np.ndarray, ceiling: int) -> int:
    """The largest |partial sum| one step can bring through the columns ``block`` of ``node`` (unshifted, with
    the weights Lava keeps: ``node`` names its sign mode): binary spikes add the positive or the negative
    weights of a row, graded values up to 2^(bits-1) all of them. A bound below ``ceiling`` may be a coarser one
    (256 per column)."""
    x_max = 1 if node.num_message_bits == 0 else 1 << (node.num_message_bits - 1)
    if 256 * block.shape[1] * x_max <= ceiling:  # every stored weight lies in [-256, 255]: no need to look
        return 256 * block.shape[1] * x_max
    weights = dense_weights(node.replace(weight=block, delay=None))
    if node.num_message_bits == 0:
        pos, neg = np.maximum(weights, 0).sum(axis=1), np.maximum(-weights, 0).sum(axis=1)
        return int(max(pos.max(initial=0), neg.max(initial=0)))
    return int(np.abs(weights).sum(axis=1).max(initial=0)) * x_max
