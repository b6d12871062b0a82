"""The ``loihi2`` target: Loihi-dialect graphs → a Lava 0.10 artifact (run_lava.py + weights), verified in Lava.

Takes graphs in the Loihi fixed-point dialect (``spikec.ir.loihi``) plus Input/Output/Flatten: an imported
netx ``.net``, a Loihi-dialect ``.sir``, or a float SNN (which the pipeline lowers: ``fuse``, ``flatten-tokens``,
``quantize{target=loihi2}``, ``partition{target=loihi2}``, after ``fold-batchnorm`` and ``fuse-spiking-attention``). The
artifact layout is in ``targets/lava/emit.py`` and docs/loihi2-target.md; ``verify`` runs it in the Lava
environment (``spikec.lava_env``) and compares it with the interpreter's bit-exact Loihi kernels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import TargetError
from spikec.ir import Flatten, Graph, Level, LoihiDelta, LoihiLIF, LoihiSigmaDelta
from spikec.ir.loihi import LOIHI_KINDS
from spikec.target import Artifact, Capabilities, Target

QUANTIZE = "quantize{target=loihi2}"
PARTITION = "partition{target=loihi2}"
STRUCTURE_KINDS = ("Input", "Output", "Flatten")
ONE_VTH = (LoihiLIF, LoihiDelta, LoihiSigmaDelta)  # Lava's processes take one threshold per process


def first_outside_dialect(graph: Graph) -> str | None:
    """The first node (topological order) that is not a Loihi kind nor Input/Output/Flatten, or None."""
    for name in graph.order:
        node = graph.nodes[name]
        if not (node.level == Level.LOIHI or node.kind in STRUCTURE_KINDS or isinstance(node, Flatten)):
            return name
    return None


def _pass_name(spec: str) -> str:
    match = re.match(r"^[a-z][a-z0-9-]*", spec)
    return match.group(0) if match else spec


class Loihi2Target(Target):
    """Intel Loihi 2 through Lava 0.10: CPU simulation bit-accurate to the chip (``fixed_pt``) in .venv-lava."""

    name = "loihi2"
    description = "Intel Loihi 2 via Lava 0.10 (run_lava.py artifact, bit-accurate fixed_pt simulation)"

    def capabilities(self) -> Capabilities:
        kinds = frozenset(k.kind for k in LOIHI_KINDS) | frozenset(STRUCTURE_KINDS)
        return Capabilities(node_kinds=kinds, limits={"u_v_bits": 24, "weight_bits": 8, "decay_bits": 12})

    def default_pipeline(self) -> list[str]:
        """Fold Scale/Bias and BatchNorm, find spiking attention, flatten token graphs (attention as coincidence
        neurons), quantize, place. Each step leaves a graph it has nothing to do on unchanged."""
        return ["fuse", "fold-batchnorm", "fuse-spiking-attention", "flatten-tokens", QUANTIZE, PARTITION]

    def lower(self, graph: Graph, pass_options: Sequence[str] = ()) -> tuple[Graph, list[dict[str, str]]]:
        """Run the pipeline; a step whose pass is not registered is skipped only for a Loihi-dialect graph."""
        from spikec.pipeline import PassManager, all_passes

        registered = all_passes()

        log: list[dict[str, str]] = []
        for spec in self.pipeline(pass_options):
            name = _pass_name(spec)
            if name in registered:
                graph = PassManager([spec]).run(graph)
                log.append({"pass": spec, "status": "ran"})
                continue
            offender = first_outside_dialect(graph)
            if offender is not None:
                raise TargetError(
                    f"target '{self.name}' needs pass {spec}, which this spikec does not have: "
                    f"{graph.describe(offender)} is a {graph.nodes[offender].kind}, not a Loihi fixed-point kind. "
                    f"Compile a graph already in the Loihi dialect (a netx .net, a Loihi .sir), or install a "
                    f"spikec with the {name} pass"
                )
            reason = "not registered; the graph is already in the Loihi dialect"
            log.append({"pass": spec, "status": "skipped", "reason": reason})
        return graph, log

    def legalize(self, graph: Graph) -> Graph:
        """Every node a Loihi kind or Input/Output/Flatten, one threshold per neuron process, outputs fed by layers."""
        offender = first_outside_dialect(graph)
        if offender is not None:
            node = graph.nodes[offender]
            raise TargetError(
                f"{graph.describe(offender)}: target '{self.name}' does not take {node.kind} (float or ANN kinds); "
                f"run {QUANTIZE} to turn the SNN into Loihi fixed-point kinds "
                f"({', '.join(sorted(k.kind for k in LOIHI_KINDS))})"
            )
        for name, node in graph.nodes.items():
            if isinstance(node, ONE_VTH) and np.unique(np.asarray(node.vth)).size != 1:
                raise TargetError(
                    f"{graph.describe(name)}: Lava's {node.kind} process takes one vth, this node has "
                    f"{np.unique(np.asarray(node.vth)).size} different values; split the layer or use one threshold"
                )
            if node.kind == "Output":
                src = graph.in_edges(name)[0].src
                while graph.nodes[src].kind == "Flatten":
                    src = graph.in_edges(src)[0].src
                if graph.nodes[src].kind == "Input":
                    raise TargetError(f"{graph.describe(name)} shows the input '{src}' directly: nothing runs on Loihi")
        return graph

    def emit(self, graph: Graph, out_dir: Path) -> Artifact:
        from spikec.targets.lava.emit import emit_artifact

        files = emit_artifact(graph, out_dir)
        return Artifact(self.name, out_dir, tuple(files))

    def verify(self, artifact: Artifact, **options: Any) -> dict[str, Any]:
        """Run the artifact in Lava and the interpreter (``--fixed loihi2``); see ``verify.verify_artifact``."""
        from spikec.targets.lava.verify import verify_artifact

        return verify_artifact(artifact.directory, **options)
