r"""How a Loihi neuron reads spike sources of different latency: aligned exactly, or as their spikes arrive.

Each synapse delivers one step late, so two sources of one neuron can be :math:`L_a < L_b` steps behind the
input. ``quantize{target=loihi2, align=...}`` chooses:

* ``exact``: every term arrives in the step the float graph adds them. The source that is ahead is held back
  :math:`L_b - L_a` steps by a synaptic delay or, for a convolution where the demand model prices it lower, by
  relay layers (targets/loihi2/delay_relay.py). The fixed-point network is the float SNN shifted in time.
* ``arrival``: every term is read as it arrives, without delays or relays. The neuron still starts (its one
  reset, ``layer.start_reset``) when its slowest source's first spikes arrive, so a faster source's train is
  read from :math:`L_b - L_a` steps into it: rate-coded trains carry the same rates later on, and the answers
  change by that shift alone (measured in targets/loihi2/docs/loihi2-target.md).
* ``auto`` (the default): ``exact``, unless its relay neurons would outnumber the network's own neurons; then
  ``arrival``. In a DenseNet each part of a concatenation reaches every later layer of its block at another
  latency, and aligning them exactly takes one relayed copy of the part per (part, delay) pair.

The choice and its reason go into the quantize report (``alignment``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from spikec.ir import Graph
from spikec.targets.loihi2.neurons import NEURONS

CHOICES = ("auto", "exact", "arrival")
T = TypeVar("T")


class RelaysOutnumberNeurons(Exception):
    """Raised inside an ``auto`` lowering as soon as its relay neurons outnumber the network's own neurons."""


def network_neurons(graph: Graph) -> int:
    """Neurons of the float SNN: the sizes of its neuron nodes (IF, LIF, CubaLIF, readouts)."""
    return sum(math.prod(graph.types[name]) for name, node in graph.nodes.items() if type(node) in NEURONS)


def lower_aligned(graph: Graph, align: str, lower: Callable[[bool, int | None], T],
                  relays: Callable[[T], int]) -> tuple[T, dict[str, Any]]:  # fmt: skip
    """``lower(arrival, relay_budget)`` under ``align`` and the report's ``alignment`` entry.

    ``auto`` lowers exactly with a budget of the network's neuron count; ``lower`` raises
    ``RelaysOutnumberNeurons`` when its relays pass it, and the network is lowered again reading on arrival."""
    if align != "auto":
        lowered = lower(align == "arrival", None)
        return lowered, {
            "chosen": align,
            "why": "set by the user (quantize align=...)",
            "relay_neurons": relays(lowered),
        }
    budget = network_neurons(graph)
    try:
        lowered = lower(False, budget)
    except RelaysOutnumberNeurons:
        why = (f"aligning the sources exactly needs more relay neurons than the network's {budget:,} neurons "
               "(a source reaching its readers at many latencies, as a DenseNet's concatenations do): each "
               "source is read as it arrives; quantize align=exact keeps the relays")  # fmt: skip
        return lower(True, None), {"chosen": "arrival", "why": why, "relay_neurons": 0}
    count = relays(lowered)
    why = f"the relays that align the sources ({count:,} neurons) are fewer than the network's {budget:,} neurons"
    return lowered, {"chosen": "exact", "why": why, "relay_neurons": count}
