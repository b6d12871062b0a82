"""The ``loihi2`` target: Loihi-dialect graphs → a Lava 0.10 artifact (run_lava.py + weights), verified in Lava.

Takes graphs in the Loihi fixed-point dialect (``spikec.targets.loihi2.dialect``) plus Input/Output/Flatten: an imported
netx ``.net``, a Loihi-dialect ``.sir``, or a float SNN (which the pipeline lowers: ``fuse``, ``flatten-tokens``,
``quantize{target=loihi2}``, ``partition{target=loihi2}``, after ``fold-batchnorm`` and
``fuse-spiking-attention``). The artifact layout is in ``emit.py`` and docs/loihi2-target.md (in this folder);
``verify`` runs it in the Lava environment (``lava_env``) and compares it with the interpreter's bit-exact Loihi
kernels. Everything that knows Loihi or Lava lives in this folder: the dialect (``dialect.py``, its kernels and
core demand), the quantizer (``quantize.py`` and its helpers), the netx reader and writer, the resource model
(``resources.toml``), the Lava environment, emitter and verifier.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from spikec.errors import InputError, TargetError, VerifyError
from spikec.ir import Flatten, Graph, Level
from spikec.target import Artifact, Capabilities, ConversionDefaults, FileFormat, Lowered, ReaderOption, Target

QUANTIZE = "quantize{target=loihi2}"
SPLIT_FANIN = "split-fanin"
PARTITION = "partition{target=loihi2}"
STRUCTURE_KINDS = ("Input", "Output", "Flatten")
DIALECT_KINDS = ("LoihiDense", "LoihiConv", "LoihiLIF", "LoihiDelta", "LoihiSigmaDelta", "LoihiSigma")
RELAY_KINDS = ("LoihiPartialDense", "LoihiGradedVec")  # what split-fanin builds (relay.py)


def first_outside_dialect(graph: Graph) -> str | None:
    """The first node (topological order) that is not a Loihi kind nor Input/Output/Flatten, or None."""
    for name in graph.order:
        node = graph.nodes[name]
        if not (node.level == Level.FIXED or node.kind in STRUCTURE_KINDS or isinstance(node, Flatten)):
            return name
    return None


def check_fixed(graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
    """Raise unless ``graph`` is in the Loihi dialect and ``inputs`` are integers (``--fixed loihi2``)."""
    offender = first_outside_dialect(graph)
    if offender is not None:
        raise VerifyError(
            f"{graph.describe(offender)} is not in the Loihi dialect: --fixed loihi2 runs graphs of Loihi "
            f"fixed-point kinds ({', '.join(DIALECT_KINDS)}), e.g. an imported netx .net. Quantize a float SNN "
            f"first: spikec opt MODEL -p '{QUANTIZE}' -o MODEL.loihi.sir (add input_max=255 for 8-bit graded "
            "inputs, reset_to_zero=true for a converted SNN; docs/semantics.md)"
        )
    for name, a in inputs.items():
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
            raise InputError(f"input '{name}': --fixed loihi2 takes integer inputs (spikes, graded values, biases)")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


NETX = FileFormat(
    suffix=".net",
    description="lava-dl netx network (HDF5): dense, conv, flatten, input; CUBA/LOIHI/SDNN neurons",
    reader="spikec.targets.loihi2.netx:read_netx",
    writer="spikec.targets.loihi2.netx_export:export_netx",
    options=(
        ReaderOption(
            "reset_interval",
            "for a netx .net: zero every LIF layer's u and v every N steps, as lava-dl's "
            "netx.hdf5.Network(reset_interval=N) (one sample per N steps)",
            _positive,
            "N",
        ),
        ReaderOption(
            "reset_offset",
            "for a netx .net with --reset-interval: the phase, as Network(reset_offset=K); the k-th neuron layer "
            "resets at steps t = K + 1 + k (mod N) (default 0)",
            _whole,
            "K",
        ),
    ),
)


class Loihi2Target(Target):
    """Intel Loihi 2 through Lava 0.10: CPU simulation bit-accurate to the chip (``fixed_pt``) in .venv-lava."""

    name = "loihi2"
    description = "Intel Loihi 2 via Lava 0.10 (run_lava.py artifact, bit-accurate fixed_pt simulation)"
    dialect = "spikec.targets.loihi2.dialect"
    formats = (NETX,)
    resources = "resources.toml"
    passes = MappingProxyType({SPLIT_FANIN: "spikec.targets.loihi2.split_fanin:split_fanin"})
    verify_options = frozenset({"timeout"})  # Lava's run: 600 s unless --timeout says otherwise
    quantize_options = frozenset({"align"})  # exact | arrival | auto (alignment.py)
    layout = (
        "Lava's, spikec's axes reversed: (X, Y, C, T), time last, one sample; an input of Lava's shape alone, "
        "such as a netx input layer's bias, is held for --steps steps"
    )

    def capabilities(self) -> Capabilities:
        kinds = frozenset(DIALECT_KINDS) | frozenset(RELAY_KINDS) | frozenset(STRUCTURE_KINDS)
        return Capabilities(node_kinds=kinds, limits={"u_v_bits": 24, "weight_bits": 8, "decay_bits": 12})

    def conversion_defaults(
        self, method: str, samples: np.ndarray | None, options: Any, graph: Graph | None = None
    ) -> ConversionDefaults:
        """Reset to zero, OR max-pooling, a membrane readout, the input range from the calibration samples
        (``conversion.conversion_defaults``: each with its reason)."""
        from spikec.targets.loihi2.conversion import conversion_defaults

        return conversion_defaults(method, samples, options, graph)

    def quantize(self, graph: Graph, **options: Any) -> Any:
        """Float SNN → the Loihi dialect (``quantize.quantize_loihi2``; docs/semantics.md)."""
        from spikec.targets.loihi2.quantize import quantize_loihi2
        from spikec.targets.loihi2.quantize_report import QuantizeOptions

        return quantize_loihi2(graph, QuantizeOptions(**options))

    def default_pipeline(self) -> list[str]:
        """Fold Scale/Bias and BatchNorm, find spiking attention, flatten token graphs (attention as coincidence
        neurons), quantize, split the fan-in of neurons too wide for a core (relays), place. Each step leaves a
        graph it has nothing to do on unchanged."""
        return ["fuse", "fold-batchnorm", "fuse-spiking-attention", "flatten-tokens", QUANTIZE, SPLIT_FANIN, PARTITION]

    def legalize(self, graph: Graph) -> Graph:
        """Every node a Loihi kind or Input/Output/Flatten, one threshold per neuron process, outputs fed by layers."""
        offender = first_outside_dialect(graph)
        if offender is not None:
            node = graph.nodes[offender]
            raise TargetError(
                f"{graph.describe(offender)}: target '{self.name}' does not take {node.kind} (float or ANN kinds); "
                f"run {QUANTIZE} to turn the SNN into Loihi fixed-point kinds ({', '.join(sorted(DIALECT_KINDS))})"
            )
        for name, node in graph.nodes.items():
            if node.kind in ("LoihiLIF", "LoihiDelta", "LoihiSigmaDelta"):  # Lava's processes take one threshold
                values = np.unique(np.asarray(node.vth))  # type: ignore[attr-defined]
                if values.size != 1:
                    raise TargetError(
                        f"{graph.describe(name)}: Lava's {node.kind} process takes one vth, this node has "
                        f"{values.size} different values; split the layer or use one threshold"
                    )
            if node.kind == "Output":
                src = graph.in_edges(name)[0].src
                while graph.nodes[src].kind == "Flatten":
                    src = graph.in_edges(src)[0].src
                if graph.nodes[src].kind == "Input":
                    raise TargetError(f"{graph.describe(name)} shows the input '{src}' directly: nothing runs on Loihi")
        return graph

    def emit(self, lowered: Lowered, out_dir: Path) -> Artifact:
        """The Lava artifact (``emit.emit_artifact``), placed as the pipeline's partition pass placed it."""
        from spikec.targets.loihi2.emit import emit_artifact

        placed = lowered.results.get("partition")
        core_map = getattr(placed, "core_map", None)
        if core_map is None:
            raise TargetError(f"target '{self.name}' emits graphs its pipeline placed: run {PARTITION} last")
        split = getattr(lowered.results.get(SPLIT_FANIN), "report", None)
        quantized = getattr(lowered.results.get("quantize"), "report", None)
        files = emit_artifact(lowered.graph, core_map, out_dir, split, quantize=quantized)
        return Artifact(self.name, out_dir, tuple(files))

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        """How the quantizer read sources of different latency (``quantize.align``) and the parts it computed once
        (targets/loihi2/shared_relay.py), from report.json's ``artifact.quantize``."""
        quantized = (report.get("artifact") or {}).get("quantize") or {}
        lines = []
        alignment = quantized.get("alignment") or {}
        if alignment.get("chosen") == "arrival" or alignment.get("relay_neurons"):  # a plain CNN: nothing to say
            lines.append(f"alignment: {alignment['chosen']} ({alignment['why']})")
        if "shared_parts" in quantized:
            shared = quantized["shared_parts"]
            lines.append(f"shared parts: {shared['parts']} computed once, read from graded relays "
                         f"({shared['relay_neurons']:,} relay neurons)")  # fmt: skip
        return lines

    def verify(self, artifact: Artifact, **options: Any) -> dict[str, Any]:
        """Run the artifact in Lava and the interpreter (``--fixed loihi2``); see ``verify.verify_artifact``."""
        from spikec.targets.loihi2.verify import verify_artifact

        return verify_artifact(artifact.directory, **options)

    def check_fixed(self, graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
        check_fixed(graph, inputs)

    def inputs_from_layout(
        self, graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray], steps: int | None
    ) -> dict[str, np.ndarray]:
        """Lava's layout → spikec's (``lava_layout.inputs_from_lava``)."""
        from spikec.targets.loihi2.lava_layout import inputs_from_lava

        return inputs_from_lava(graph, inputs, steps)

    def output_to_layout(self, array: np.ndarray) -> np.ndarray:
        """spikec's (T, 1, *shape) → Lava's (*reversed(shape), T) (``lava_layout.to_lava``)."""
        from spikec.targets.loihi2.lava_layout import to_lava

        return to_lava(array)
