"""The ``spinnaker2`` target: SpiNNaker2-dialect graphs → a PyNN artifact (run_pynn.py + .npz), run on Brian2
and mapped by sPyNNaker's own toolchain onto a virtual SpiNNaker2 board.

Takes graphs in the SpiNNaker2 dialect (``dialect.py``: int8 ``SpiNNaker2Dense``/``SpiNNaker2OneToOne``/
``SpiNNaker2Conv`` into integer ``SpiNNaker2LIF`` populations) plus Input/Output/Flatten, or a float SNN the
pipeline lowers (``fuse``, ``fold-batchnorm``, ``quantize{target=spinnaker2}``, ``partition{target=spinnaker2}``).
Everything that knows SpiNNaker2 or PyNN lives in this folder: the dialect (kernels, demand), the quantizer, the
conversion settings, the resource model (``resources.toml``), the emitter (``emit.py``, ``pynn_script.py``: the
script an artifact runs) and the verifier (``verify.py``, ``spynnaker_map.py``). docs/spinnaker2-target.md in this
folder says what each does and what was measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import InputError, TargetError, VerifyError
from spikec.ir import Graph
from spikec.target import Artifact, Capabilities, ConversionDefaults, Lowered, Target, first_outside

QUANTIZE = "quantize{target=spinnaker2}"
PARTITION = "partition{target=spinnaker2}"
DIALECT_KINDS = ("SpiNNaker2Dense", "SpiNNaker2OneToOne", "SpiNNaker2Conv", "SpiNNaker2LIF")
STRUCTURE_KINDS = ("Input", "Output", "Flatten", "Concat")
PYNN_INSTALL = "pip install pyNN==0.13.0 brian2==2.9.0 'numpy<2.4' (or: pip install 'spikec[spinnaker2]')"


def first_outside_dialect(graph: Graph) -> str | None:
    """The first node (topological order) that is not a SpiNNaker2 kind nor Input/Output/Flatten/Concat, or None."""
    return first_outside(graph, {*DIALECT_KINDS, *STRUCTURE_KINDS})


def not_expressible(graph: Graph, name: str) -> TargetError:
    """The error for node ``name``, of a kind outside the dialect: what to run to lower it."""
    node = graph.nodes[name]
    return TargetError(
        f"{graph.describe(name)}: PyNN cannot express {node.kind} (target 'spinnaker2' takes "
        f"{', '.join(DIALECT_KINDS)}); run {QUANTIZE}, which lowers IF/I neurons, Conv/Dense synapses and "
        "max-pools of spikes"
    )


def check_fixed(graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
    """Raise unless ``graph`` is in the SpiNNaker2 dialect and ``inputs`` are 0/1 spikes (``--fixed spinnaker2``)."""
    offender = first_outside_dialect(graph)
    if offender is not None:
        raise VerifyError(
            f"{graph.describe(offender)} is not in the SpiNNaker2 dialect ({', '.join(DIALECT_KINDS)}); quantize a "
            f"float SNN first: spikec opt MODEL -p '{QUANTIZE}' -o MODEL.spinnaker2.sir"
        )
    for name, a in inputs.items():
        a = np.asarray(a)
        if a.size and not np.all((a == 0) | (a == 1)):
            raise InputError(f"input '{name}': --fixed spinnaker2 takes 0/1 spikes (spike sources)")


class SpiNNaker2Target(Target):
    """SpiNNaker2 through PyNN 0.13: Brian2 simulates the emitted network, sPyNNaker maps it on a virtual board."""

    name = "spinnaker2"
    description = "SpiNNaker2 via PyNN 0.13 (run_pynn.py artifact: Brian2 simulation, sPyNNaker virtual mapping)"
    dialect = "spikec.targets.spinnaker2.dialect"
    resources = "resources.toml"
    formats = ()
    layout = None

    def capabilities(self) -> Capabilities:
        kinds = frozenset(DIALECT_KINDS) | frozenset(STRUCTURE_KINDS)
        return Capabilities(node_kinds=kinds, limits={"weight_bits": 8, "v_bits": 24})

    def conversion_defaults(
        self, method: str, samples: np.ndarray | None, options: Any, graph: Graph | None = None
    ) -> ConversionDefaults:
        """Poisson input spikes, reset to zero, OR max-pooling, a membrane readout (``conversion.py``)."""
        from spikec.targets.spinnaker2.conversion import conversion_defaults

        return conversion_defaults(method, samples, options, graph)

    def quantize(self, graph: Graph, **options: Any) -> Any:
        """Float SNN → the SpiNNaker2 dialect (``quantize.quantize_spinnaker2``)."""
        from spikec.targets.spinnaker2.quantize import QuantizeOptions, quantize_spinnaker2

        return quantize_spinnaker2(graph, QuantizeOptions(**options))

    def default_pipeline(self) -> list[str]:
        """Fold Scale/Bias and BatchNorm into the layers, quantize, place on PEs (each step leaves a graph it has
        nothing to do on unchanged, so a SpiNNaker2 ``.sir`` goes straight to placement)."""
        return ["fuse", "fold-batchnorm", QUANTIZE, PARTITION]

    def legalize(self, graph: Graph) -> Graph:
        """Every node a SpiNNaker2 kind or Input/Output/Flatten/Concat (``emit.network_spec`` checks the wiring)."""
        offender = first_outside_dialect(graph)
        if offender is not None:
            raise not_expressible(graph, offender)
        return graph

    def emit(self, lowered: Lowered, out_dir: Path) -> Artifact:
        """The PyNN artifact (``emit.emit_artifact``), placed as the pipeline's partition pass placed it."""
        from spikec.targets.spinnaker2.emit import emit_artifact

        core_map = getattr(lowered.results.get("partition"), "core_map", None)
        if core_map is None:
            raise TargetError(f"target '{self.name}' emits graphs its pipeline placed: run {PARTITION} last")
        quantized = getattr(lowered.results.get("quantize"), "report", None)
        files = emit_artifact(lowered.graph, core_map, out_dir, quantized)
        return Artifact(self.name, out_dir, tuple(files))

    def verify(self, artifact: Artifact, **options: Any) -> dict[str, Any]:
        """Run run_pynn.py on Brian2 and the interpreter, and sPyNNaker's virtual mapping (``verify.py``)."""
        self.require("pyNN", PYNN_INSTALL)
        self.require("brian2", PYNN_INSTALL)
        from spikec.targets.spinnaker2.verify import verify_artifact

        return verify_artifact(artifact.directory, **options)

    def check_fixed(self, graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
        check_fixed(graph, inputs)
