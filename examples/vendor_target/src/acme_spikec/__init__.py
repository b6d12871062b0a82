"""The ``acme1`` target: float SNNs and ACME-1-dialect graphs → an ACME-1 configuration, verified on its simulator.

spikec finds this class through the entry point in ``pyproject.toml`` (group ``spikec.targets``) and imports
this module only when ``acme1`` is used, so it imports nothing heavy at the top: the dialect, quantizer,
emitter and verifier are imported inside the methods, and the chip's software (``acme_sim``, standing for a
vendor SDK) through ``Target.require``, which tells the user how to install it when it is missing.

The pieces (docs/writing-a-target.md in spikec walks through them):

* ``dialect.py``: the node kinds ``AcmeDense`` and ``AcmeLIF`` (+ ``kernels.py``, ``demand.py``);
* ``quantize.py``: float SNN → the dialect, run by spikec's ``quantize{target=acme1}`` pass;
* ``resources.toml``: cores, chips and their limits, for ``partition{target=acme1}``;
* ``emit.py``: the chip's configuration (``acme1.json`` + ``arrays/*.npy``) and ``model.sir``;
* ``verify.py``: ``acme_sim``'s simulator on the configuration vs spikec's interpreter on ``model.sir``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from spikec.errors import InputError, TargetError, VerifyError
from spikec.ir import Graph
from spikec.target import Artifact, Capabilities, Lowered, Target, TargetFlag

QUANTIZE = "quantize{target=acme1}"
PARTITION = "partition{target=acme1}"
DIALECT_KINDS = ("AcmeDense", "AcmeLIF")
STRUCTURE_KINDS = ("Input", "Output", "Flatten")
INPUT_MAX = 255  # the chip's input port: integers 0..255
SDK = "acme_sim"
SDK_INSTALL = "pip install spikec-acme (the ACME-1 simulator ships with the plugin)"


def check_fixed(graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
    """Raise unless ``graph`` is in the ACME-1 dialect and ``inputs`` are integers 0..255 (``--fixed acme1``)."""
    allowed = set(DIALECT_KINDS) | set(STRUCTURE_KINDS)
    for name in graph.order:
        if graph.nodes[name].kind not in allowed:
            raise VerifyError(
                f"{graph.describe(name)} is not in the ACME-1 dialect ({', '.join(DIALECT_KINDS)}); quantize a float "
                f"SNN first: spikec opt MODEL -p '{QUANTIZE}' -o MODEL.acme1.sir"
            )
    for name, a in inputs.items():
        a = np.asarray(a)
        if a.size and (not np.array_equal(a, np.round(a)) or a.min() < 0 or a.max() > INPUT_MAX):
            raise InputError(
                f"input '{name}': --fixed acme1 takes integer inputs 0..{INPUT_MAX} (the chip's input port)"
            )


class Acme1Target(Target):
    """ACME-1: 16 cores of 256 integer leaky neurons, 8-bit weights; verified on its own numpy simulator."""

    name = "acme1"
    description = "ACME-1 template chip (spikec-acme): acme1.json + .npy configuration, checked on acme_sim"
    dialect = "acme_spikec.dialect"
    resources = "resources.toml"
    passes = MappingProxyType({"acme1-quantize": "acme_spikec.quantize:acme1_quantize"})
    formats = ()
    # a flag of its own for spikec compile: --acme-weight-bits 4 is --pass-option quantize.weight_bits=4
    compile_flags = (
        TargetFlag(
            "--acme-weight-bits", "quantize.weight_bits", choices=tuple(map(str, range(2, 9))),
            help="bits of weight precision the ACME-1 quantizer keeps (2..8, default 8; the chip stores 8)",
        ),
    )  # fmt: skip

    def capabilities(self) -> Capabilities:
        return Capabilities(
            node_kinds=frozenset(DIALECT_KINDS) | frozenset(STRUCTURE_KINDS),
            limits={"weight_bits": 8, "v_bits": 24, "input_max": 255},
        )

    def quantize(self, graph: Graph, **options: Any) -> Any:
        """Float SNN → the ACME-1 dialect (``quantize.quantize_acme1``)."""
        from acme_spikec.quantize import QuantizeOptions, quantize_acme1

        return quantize_acme1(graph, QuantizeOptions(**options))

    def default_pipeline(self) -> list[str]:
        """Fold Scale/Bias into the layers, quantize, place on cores (each step leaves a graph it has nothing to
        do on unchanged, so an ACME-1 ``.sir`` goes straight to placement)."""
        return ["fuse", QUANTIZE, PARTITION]

    def legalize(self, graph: Graph) -> Graph:
        """The dialect's kinds only; every group fed by synapses, every synapse by an input or a group."""
        super().legalize(graph)
        from acme_spikec.emit import source_of

        for name, node in graph.nodes.items():
            if node.kind == "AcmeLIF" and any(graph.nodes[e.src].kind != "AcmeDense" for e in graph.in_edges(name)):
                raise TargetError(f"{graph.describe(name)}: an ACME-1 group reads AcmeDense synapses only")
            if node.kind in ("AcmeDense", "Output"):
                src = source_of(graph, name)
                wanted = ("Input", "AcmeLIF") if node.kind == "AcmeDense" else ("AcmeLIF",)
                if graph.nodes[src].kind not in wanted:
                    raise TargetError(f"{graph.describe(name)} reads {graph.describe(src)}; it must read {wanted}")
            if any(e.recurrent for e in graph.in_edges(name)):
                raise TargetError(f"{graph.describe(name)} has a recurrent input; ACME-1 groups are feed-forward")
        return graph

    def emit(self, lowered: Lowered, out_dir: Path) -> Artifact:
        """The chip's configuration and model.sir (``emit.emit_artifact``), placed as the partition pass placed it."""
        self.require(SDK, SDK_INSTALL)
        from acme_spikec.emit import emit_artifact

        core_map = getattr(lowered.results.get("partition"), "core_map", None)
        if core_map is None:
            raise TargetError(f"target '{self.name}' emits graphs its pipeline placed: run {PARTITION} last")
        quantized = getattr(lowered.results.get("quantize"), "report", {})  # an ACME-1 .sir was not quantized here:
        input_max = int(quantized.get("input_max", INPUT_MAX))  # its inputs may use the port's whole range
        files = emit_artifact(lowered.graph, core_map, out_dir, input_max)
        return Artifact(self.name, out_dir, tuple(files))

    def verify(self, artifact: Artifact, **options: Any) -> dict[str, Any]:
        """Run the configuration on the ACME-1 simulator and the interpreter; see ``verify.verify_artifact``."""
        self.require(SDK, SDK_INSTALL)
        from acme_spikec.verify import verify_artifact

        return verify_artifact(artifact.directory, **options)

    def check_fixed(self, graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
        check_fixed(graph, inputs)
