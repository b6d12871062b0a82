"""The target interface: what a chip accepts, its default pipeline, how to emit and verify.

Built-in and third-party targets are classes published in the ``spikec.targets`` entry-point
group; vendor SDKs are imported inside the target's methods, never at module import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
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


def with_pass_options(steps: Sequence[str], pass_options: Sequence[str], target: str) -> list[str]:
    """Add ``'pass.key=value'`` options to the steps of that pass: ``quantize{target=loihi2}`` with
    ``quantize.input_max=255`` is ``quantize{target=loihi2,input_max=255}``. An option naming a pass
    that is not in ``steps`` is an error listing the passes that are."""
    from spikec.pipeline import parse_pass_spec

    extra: dict[str, list[str]] = {}
    for item in pass_options:
        name, dot, setting = item.partition(".")
        if not dot or "=" not in setting:
            raise TargetError(f"--pass-option {item!r}: expected PASS.KEY=VALUE, e.g. quantize.input_max=255")
        extra.setdefault(name, []).append(setting)
    names = [step.split("{", 1)[0] for step in steps]
    unknown = sorted(set(extra) - set(names))
    if unknown:
        raise TargetError(
            f"--pass-option for {', '.join(unknown)}: target '{target}' runs the passes {', '.join(names) or 'none'}"
        )
    out = []
    for step, name in zip(steps, names, strict=True):
        if name in extra:
            inner = step[len(name) :].strip().removeprefix("{").removesuffix("}")
            step = f"{name}{{{','.join(filter(None, [inner, *extra[name]]))}}}"
            parse_pass_spec(step)  # the options exist and parse; the error names the pass and option
        out.append(step)
    return out


class Target:
    """Base class of targets. Subclasses set ``name``/``description`` and override the methods."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def capabilities(self) -> Capabilities:
        return Capabilities()

    def default_pipeline(self) -> list[str]:
        return []

    def pipeline(self, pass_options: Sequence[str] = ()) -> list[str]:
        """``default_pipeline`` with ``pass_options`` (``'pass.key=value'``, the CLI's ``--pass-option``) added."""
        return with_pass_options(self.default_pipeline(), pass_options, self.name)

    def lower(self, graph: Graph, pass_options: Sequence[str] = ()) -> tuple[Graph, list[dict[str, str]]]:
        """Run the pipeline on ``graph``: the result and a log of each step (``pass``, ``status``).

        Targets may override it to check or skip steps (and say why in the log's ``reason``).
        """
        from spikec.pipeline import PassManager

        steps = self.pipeline(pass_options)
        if not steps:
            return graph, []
        return PassManager(steps).run(graph), [{"pass": step, "status": "ran"} for step in steps]

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

    def verify(self, artifact: Artifact, **options: Any) -> dict[str, Any]:
        """Run ``artifact`` and compare it with the reference; ``options`` are the target's (``spikec verify``'s)."""
        raise TargetError(f"target '{self.name}' has no verification yet")
