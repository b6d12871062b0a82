"""Structure node kinds: graph inputs and outputs, and nested graphs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from spikec.errors import ShapeError
from spikec.ir.node import Inputs, Level, Node, Shape

if TYPE_CHECKING:
    from spikec.ir.graph import Graph


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Input(Node):
    """A graph input of per-sample ``shape``; at run time it is fed (T, batch, *shape)."""

    kind = "Input"
    level = Level.STRUCTURE
    inputs = Inputs.NONE
    graph_input = True
    shape: tuple[int, ...]

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if any(d < 1 for d in self.shape):
            yield f"shape {self.shape} must hold positive sizes"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return tuple(self.shape)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Output(Node):
    """A graph output: passes on the sum of its inputs."""

    kind = "Output"
    level = Level.STRUCTURE
    sink = True

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        return shape


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Subgraph(Node):
    """A nested graph with exactly one Input and one Output node (as NIR nests ``NIRGraph``).

    Edges into the node feed the inner Input; the inner Output is the node's value. The
    interpreter inlines subgraphs (``Graph.inline_subgraphs``) before running.
    """

    kind = "Subgraph"
    level = Level.STRUCTURE
    graph: Graph

    @property
    def stateful(self) -> bool:  # type: ignore[override]
        return any(n.stateful for n in self.graph.nodes.values())

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if len(self.graph.inputs) != 1 or len(self.graph.outputs) != 1:
            yield (
                f"a subgraph needs exactly one Input and one Output node, has inputs "
                f"{list(self.graph.inputs)} and outputs {list(self.graph.outputs)}"
            )

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        (inner_in,) = self.graph.inputs
        expected = self.graph.types[inner_in]
        if tuple(shape) != tuple(expected):
            raise ShapeError(f"inner input '{inner_in}' expects shape {expected}, got {shape}")
        (inner_out,) = self.graph.outputs
        return self.graph.types[inner_out]
