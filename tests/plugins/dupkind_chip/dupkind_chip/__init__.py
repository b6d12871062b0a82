"""A target whose dialect defines a node kind spikec already has (``LIF``)."""

from typing import Any

from spikec.ir import Graph
from spikec.target import Target


class DupKindTarget(Target):
    name = "dupkind"
    description = "its dialect redefines LIF"
    dialect = "dupkind_chip.dialect"

    def quantize(self, graph: Graph, **options: Any) -> Any:
        from dupkind_chip.dialect import lower

        return lower(graph)

    def default_pipeline(self) -> list[str]:
        return ["quantize{target=dupkind}"]
