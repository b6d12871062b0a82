"""The mistake: a node kind named ``LIF``, which spikec's core defines already."""

import dataclasses
from typing import Any

from spikec.ir import Graph
from spikec.ir.node import Level, Node


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class ChipNeuron(Node):
    kind = "LIF"
    level = Level.FIXED


def lower(graph: Graph) -> Any:
    raise NotImplementedError
