"""Structure node kinds: graph inputs and outputs, and nested graphs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from spikec.errors import InputError, ShapeError
from spikec.ir.node import Array, Inputs, Level, Node, Shape
from spikec.ir.traits import Additive, Routing, ScalePassesThrough

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
class TokenInput(Node):
    """A graph input of integer token ids and the embedding lookup that encodes them, on the host:

        y[..., :] = table[ids[...]],   ids ∈ {0, …, V−1}, table of shape (V, *E)

    It is fed (T, batch, *shape) ids and gives (T, batch, *shape, *E) vectors: what a model's first
    layer reads, so everything after it (conversion, a chip) sees a real-valued input. An id that is
    not an integer in range is an ``InputError`` naming the input.
    """

    kind = "TokenInput"
    level = Level.STRUCTURE
    inputs = Inputs.NONE
    graph_input = True
    shape: tuple[int, ...]
    table: Array

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if any(d < 1 for d in self.shape):
            yield f"shape {self.shape} must hold positive sizes"
        if self.table.ndim < 1 or self.table.shape[0] < 1:
            yield f"table of shape {self.table.shape} needs at least one row"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return (*self.shape, *self.table.shape[1:])

    def feed_shape(self) -> Shape:
        return tuple(self.shape)

    def host_side(self) -> str:
        vectors = "x".join(map(str, self.table.shape[1:])) or "scalar"
        return (
            f"the embedding lookup of token ids ({self.table.shape[0]} rows of {vectors}) runs on the host as the "
            "input encoder; the network receives the embedded vectors"
        )

    def check_feed(self, name: str, values: np.ndarray) -> None:
        rows = int(self.table.shape[0])
        if values.size and (values.dtype.kind == "f" and not np.array_equal(values, np.round(values))):
            raise InputError(f"input '{name}' takes integer token ids, but holds fractional values")
        if values.size and (values.min() < 0 or values.max() >= rows):
            raise InputError(
                f"input '{name}' holds token ids {int(values.min())}..{int(values.max())}, outside the embedding "
                f"table's range 0..{rows - 1} ({rows} rows)"
            )


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Output(Node):
    """A graph output: passes on the sum of its inputs."""

    kind = "Output"
    traits = frozenset({Routing(), Additive(), ScalePassesThrough()})
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


def host_side_notes(graph: Graph) -> list[str]:
    """One line per node of ``graph`` whose work runs on the host (``Node.host_side``)."""
    return [f"{graph.describe(n)}: {node.host_side()}" for n, node in graph.nodes.items() if node.host_side()]
