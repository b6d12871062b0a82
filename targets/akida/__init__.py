"""The ``akida`` target: an ANN → Akida IP v2 layers, or IP v1 layers with ``--akida-version 1`` (this target's flag
for ``--pass-option quantize.ip_version=1``) (akida 2.19.3's engine), ``model.fbz``, checked bit for bit.

Pipeline: ``spikec compile MODEL --target akida --calib X.npy -o DIR`` keeps the ANN (``--method ann``, this
target's preferred method: each ReLU's output marked with its calibrated range), then ``akida-input``
(``input_scale.py``: the model made to take 8-bit pixels) and ``quantize{target=akida}`` (``quantize.py``:
``legalize.plan_layers`` groups conv/dense with their bias, ReLU and pool into Akida layers, Add and
Concatenate among them, and rejects what Akida cannot express, naming the node and the engine's rule; weights
and activations 4 or 8 bits; IP v1: ``quantize_v1.py``, 1, 2 or 4 bits) lower it to the Akida dialect
(``dialect.py``, ``dialect_v1.py``; ``kernels.py``, ``kernels_v1.py``: the engine's integer arithmetic, ``spikec run
--fixed akida``; ``merge.py``: the scales of Add and Concatenate), then ``akida-map`` (``mapping.py``: a copy mapped
onto a virtual device of the model's IP version: NPs by type, program size). ``emit.py``
builds an ``akida.Model`` layer by layer (``model.fbz``) and writes ``report.json``; ``verify.py`` runs
``model.fbz`` in the engine and the dialect graph in the interpreter.
docs/akida-target.md (in this folder) has the measured integer semantics and the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from spikec.errors import InputError, TargetError, VerifyError
from spikec.ir import Graph
from spikec.target import Artifact, Capabilities, ConversionDefaults, Lowered, Target, TargetFlag, first_outside

QUANTIZE = "quantize{target=akida}"
MAP = "akida-map"  # mapping.akida_map: the virtual device (--pass-option akida-map.device=NAME)
INPUT = "akida-input"  # input_scale.akida_input: model input = scale x pixel (--pass-option akida-input.scale=S)
DIALECT_KINDS = ("AkidaConv", "AkidaDense", "AkidaAdd", "AkidaConcat", "AkidaV1Conv", "AkidaV1Dense")
STRUCTURE_KINDS = ("Input", "Output")
INSTALL = "pip install 'spikec[akida]' (akida 2.19.3, numpy only)"


def first_outside_dialect(graph: Graph) -> str | None:
    """The first node (topological order) that is not an Akida kind nor Input/Output, or None."""
    return first_outside(graph, (*DIALECT_KINDS, *STRUCTURE_KINDS))


def check_fixed(graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
    """Raise unless ``graph`` is in the Akida dialect and ``inputs`` are 8-bit pixels (``--fixed akida``)."""
    offender = first_outside_dialect(graph)
    if offender is not None:
        raise VerifyError(
            f"{graph.describe(offender)} is not in the Akida dialect: --fixed akida runs graphs of "
            f"{', '.join(DIALECT_KINDS)}; lower an ANN first: spikec compile MODEL --target akida --calib X.npy -o DIR"
        )
    for name, a in inputs.items():
        a = np.asarray(a)
        if not np.array_equal(a, np.round(a)) or (a.size and (a.min() < 0 or a.max() > 255)):
            raise InputError(f"input '{name}': --fixed akida takes 8-bit pixels (integers 0..255)")


class AkidaTarget(Target):
    """BrainChip Akida IP v2 (or IP v1: ``--akida-version 1``, i.e. ``quantize.ip_version=1``) through the akida
    2.19.3 engine (software backend; mapping on virtual devices)."""

    name = "akida"
    description = "BrainChip Akida IP v2 and v1 via akida 2.19.3 (model.fbz; engine-exact integer check, NP mapping)"
    dialect = "spikec.targets.akida.dialect"
    preferred_method = "ann"
    verify_options = frozenset({"labels"})
    # activation_bits (v2: 4 or 8, quantize.check_bits; v1: 1, 2 or 4); ip_version (1 or 2, default 2)
    quantize_options = frozenset({"activation_bits", "ip_version"})
    compile_flags = (
        TargetFlag(
            "--akida-version", "quantize.ip_version", choices=("1", "2"),
            help="the Akida IP version to compile for: 2 (default; IP v2 layers, 4 or 8 bits) or 1 (AKD1000, "
            "AKD1500: IP v1 layers, 1, 2 or 4 bits)",
        ),
    )  # fmt: skip
    passes = MappingProxyType(
        {MAP: "spikec.targets.akida.mapping:akida_map", INPUT: "spikec.targets.akida.input_scale:akida_input"}
    )

    def capabilities(self) -> Capabilities:
        kinds = frozenset(DIALECT_KINDS) | frozenset(STRUCTURE_KINDS)
        limits = {"weight_bits": {"v2": (4, 8), "v1": (1, 2, 4)}, "activation_bits": {"v2": (4, 8), "v1": (1, 2, 4)}}
        return Capabilities(node_kinds=kinds, limits=limits)

    def quantize(self, graph: Graph, **options: Any) -> Any:
        """ANN with calibrated ranges → the Akida dialect (``quantize.quantize_akida``)."""
        from spikec.targets.akida.quantize import quantize_akida

        return quantize_akida(graph, **options)

    def default_pipeline(self) -> list[str]:
        return [INPUT, QUANTIZE, MAP]

    def conversion_defaults(
        self, method: str, samples: np.ndarray | None, options: Any, graph: Graph | None = None
    ) -> ConversionDefaults:
        """The input scale (``akida-input.scale``) from the calibration images' range (``input_scale.py``)."""
        from spikec.targets.akida.input_scale import input_scale_choice

        if samples is None or method != self.preferred_method:
            return ConversionDefaults()
        return ConversionDefaults(pass_options={f"{INPUT}.scale": input_scale_choice(samples)})

    def legalize(self, graph: Graph) -> Graph:
        offender = first_outside_dialect(graph)
        if offender is not None:
            node = graph.nodes[offender]
            raise TargetError(
                f"{graph.describe(offender)}: target '{self.name}' does not take {node.kind}; run {QUANTIZE} "
                f"(compile an ANN with --calib X.npy) to lower it to {', '.join(DIALECT_KINDS)}"
            )
        return graph

    def emit(self, lowered: Lowered, out_dir: Path) -> Artifact:
        from spikec.targets.akida.emit import emit_artifact

        self.require("akida", INSTALL)
        result = lowered.results.get("quantize")
        quantized, ann = getattr(result, "report", None), getattr(result, "ann", None)
        mapping = getattr(lowered.results.get(MAP), "mapping", None)
        files = emit_artifact(lowered.graph, out_dir, quantized, ann, mapping)
        return Artifact(self.name, out_dir, tuple(files))

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        mapping = (report.get("artifact") or {}).get("mapping") or {}
        if not mapping.get("mapped"):
            return []
        nps = ", ".join(f"{n} {kind}" for kind, n in mapping["nps"].items())
        return [f"mapped on {mapping['device']}: {mapping['np_total']} NPs ({nps})"]

    def verify(self, artifact: Artifact, **options: Any) -> dict[str, Any]:
        from spikec.targets.akida.verify import verify_artifact

        self.require("akida", INSTALL)
        return verify_artifact(artifact.directory, **options)

    def check_fixed(self, graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
        check_fixed(graph, inputs)
