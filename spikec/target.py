"""The target interface: what a chip accepts, its default pipeline, how to emit and verify.

Built-in and third-party targets are classes published in the ``spikec.targets`` entry-point
group; vendor SDKs are imported inside the target's methods, never at module import.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from spikec.errors import TargetError
from spikec.ir.graph import Graph


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """Node kinds a target accepts (``None``: all) and free-form limits from its resource model.

    ``binary_spikes_only``: the chip moves only 0/1 events between cores, so every synaptic op
    must read spikes; such a target calls ``spikec.spike_check.require_binary_spikes`` in
    ``legalize``, which raises ``TargetError`` naming each offender and the pass that fixes it.
    """

    node_kinds: frozenset[str] | None = None
    limits: dict[str, Any] = dataclasses.field(default_factory=dict)
    binary_spikes_only: bool = False


@dataclasses.dataclass(frozen=True)
class Artifact:
    """An emitted artifact: a directory of plain files plus the target that made it."""

    target: str
    directory: Path
    files: tuple[str, ...]


class Target:
    """Base class of targets. Subclasses set ``name``/``description`` and override the methods."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def capabilities(self) -> Capabilities:
        return Capabilities()

    def default_pipeline(self) -> list[str]:
        return []

    def legalize(self, graph: Graph) -> Graph:
        """Raise ``TargetError`` naming the first node the target cannot take (with ``binary_spikes_only``:
        ``NotBinarySpikes`` naming every non-spiking node and the pass or retraining that makes it legal)."""
        if self.capabilities().binary_spikes_only:
            from spikec.spike_check import require_binary_spikes

            require_binary_spikes(graph, self.name)
        kinds = self.capabilities().node_kinds
        if kinds is not None:
            for name, node in graph.nodes.items():
                if node.kind not in kinds:
                    raise TargetError(
                        f"{graph.describe(name)}: target '{self.name}' does not take {node.kind}; "
                        f"it takes {', '.join(sorted(kinds))}"
                    )
        return graph

    def emit(self, graph: Graph, out_dir: Path) -> Artifact:
        raise TargetError(f"target '{self.name}' cannot emit artifacts yet")

    def verify(self, artifact: Artifact) -> dict[str, Any]:
        raise TargetError(f"target '{self.name}' has no verification yet")
