"""Latency alignment after ``split-fanin``: every neuron sees all its inputs shifted by the same number of steps.

``shift[x]``: how many steps later node x's output appears than before the split (the relays add one step
per stage). In topological order of the graph before the split, a node's shift is the largest arrival
among its inputs (a relayed synapse arrives ``stages`` steps after its source); every input that arrives
earlier is held back by that many steps of synaptic delay on its LoihiDense (on the merges of a relayed
synapse). Then each neuron receives exactly the sequence it received before, ``shift`` steps later,
and so does every Output. A recurrent edge must carry its source with the shift of its destination: a
loop fed by a relayed neuron shifts as a whole, a loop through a relay would change the loop's latency
(``TargetError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from spikec.errors import DoesNotFit, TargetError
from spikec.ir import Graph
from spikec.ir.node import Node
from spikec.resources import ResourceModel
from spikec.targets.loihi2.dialect import LoihiDense

Relayed = Mapping[str, tuple[Sequence[str], int]]  # relayed synapse -> (its merges in the split graph, stages)


def align_latency(before: Graph, split: Graph, relayed: Relayed, model: ResourceModel) -> tuple[Graph, dict[str, int]]:
    """``split`` with the delays that align its paths; and the steps each Output is now later (when > 0)."""
    shift: dict[str, int] = {}
    extra: dict[str, int] = {}  # synapse of the split graph -> steps of delay to add

    def arrival(src: str) -> int:
        return shift[src] + (relayed[src][1] if src in relayed else 0)

    for name in before.order:
        forward = [e.src for e in before.in_edges(name) if not e.recurrent]
        shift[name] = max((arrival(src) for src in forward), default=0)
        for src in forward:
            if arrival(src) < shift[name]:
                _hold_back(before, src, name, shift[name] - arrival(src), relayed, extra)
    for edge in before.edges:
        if edge.recurrent and arrival(edge.src) != shift[edge.dst]:
            raise TargetError(
                f"split-fanin: the recurrent edge {edge} would carry {before.describe(edge.src)} "
                f"{arrival(edge.src) - shift[edge.dst]:+d} step(s) off its loop's latency, as a synapse inside the "
                "loop would be relayed: give the loop's layers fewer inputs"
            )
    limit = model.synapses["max_delay_steps"].value
    changes: dict[str, Node] = {}
    for syn, steps in extra.items():
        node = split.nodes[syn]
        assert isinstance(node, LoihiDense)
        delay = (0 if node.delay is None else np.asarray(node.delay, np.int64)) + steps
        if int(np.max(delay)) > limit:
            raise DoesNotFit(
                f"resource max_delay_steps: {node.describe(syn)} needs a {int(np.max(delay))}-step synaptic delay to "
                f"wait for the relays split-fanin added on the other inputs of its neuron; a {model.target} synapse "
                f"delays by at most {limit}. Shorten the path it aligns with, or give the wide layer fewer inputs"
            )
        changes[syn] = node.replace(delay=np.asarray(delay))
    aligned = split if not changes else Graph({n: changes.get(n, node) for n, node in split.nodes.items()},
                                                split.edges, dt=split.dt)  # fmt: skip
    return aligned, {out: shift[out] for out in before.outputs if shift[out]}


def _hold_back(before: Graph, src: str, dst: str, steps: int, relayed: Relayed, extra: dict[str, int]) -> None:
    """Delay what ``src`` sends ``dst`` by ``steps`` more: on its merges if relayed, else on the synapse itself."""
    node = before.nodes[src]
    held = list(relayed[src][0]) if src in relayed else [src]
    if src not in relayed and not (isinstance(node, LoihiDense) and node.buffered):
        raise TargetError(
            f"split-fanin: {before.describe(src)} reaches {before.describe(dst)} {steps} step(s) before the inputs "
            f"relayed by fan-in splitting, and a {node.kind} cannot be delayed on Loihi (only a Dense synapse can): "
            "give the wide layer fewer inputs, or feed this neuron through a Dense"
        )
    for syn in held:
        if extra.get(syn, steps) != steps:
            raise TargetError(
                f"split-fanin: {before.describe(src)} feeds neurons that need it {extra[syn]} and {steps} step(s) "
                "later; one synapse cannot have both delays"
            )
        extra[syn] = steps
