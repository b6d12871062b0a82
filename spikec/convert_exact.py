"""The exact ANN→SNN path (SpikeZIP-TF style): QANN, then a spike-equivalent SNN equal to it.

``convert_exact(graph, calib, levels=L)`` runs, through one ``PassManager``::

    inline-subgraphs, fold-batchnorm                       (exact rewrites of the ANN)
    quantize-activations{calib, levels, percentile, inputs}  → the QANN (an ANN)
    exact-spiking{max_spikes}                               → the SNN

and returns the SNN and an ``ExactReport``: the QANN, every ST-BIF neuron layer (step, levels),
the nodes that run as Σ → f → Δ (not event-driven: on the host or a graded-spike core) and the
number of steps after which the sum of the SNN's outputs equals the QANN's outputs, whatever the
input (``settle_bound``). docs/conversion.md, "Exact conversion", explains each step.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from spikec.coding import as_samples
from spikec.errors import SpikecError
from spikec.ir import exact
from spikec.ir.graph import Graph
from spikec.pipeline import PassManager, PassResult, PassStep

PREPARATION = ("inline-subgraphs", "fold-batchnorm")


@dataclasses.dataclass
class NeuronLayer:
    """One ST-BIF layer (named after the QANN's Quantize it replaced)."""

    name: str
    origin: str
    shape: list[int]
    step: float | list[float]  # the value one spike stands for (θ)
    lo: int
    hi: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ExactReport:
    levels: int
    percentile: float
    max_spikes: int
    quantize_inputs: bool
    calibration_samples: int
    settle_bound: int  # T at which Σ_t SNN output == QANN output for every input (worst case)
    neurons: list[NeuronLayer]
    host_nodes: list[dict[str, str]]  # Σ→f→Δ nodes: name, kind, origin
    passes: list[dict[str, Any]]
    qann: Graph = dataclasses.field(repr=False)
    method: str = "exact"
    decoding: str = "spikes"  # outputs carry increments: sum them over steps

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "qann"}
        out["neurons"] = [n.to_dict() for n in self.neurons]
        return out


def settle_bound(snn: Graph) -> int:
    """Steps after which every value of the exact SNN has settled, for any input held constant.

    A graph input is final from step 0; Σ→f→Δ and additive nodes are final as soon as their inputs
    are; an ST-BIF whose input is final from step t is final from step t + d − 1 with
    d = ceil((hi − lo)/max_spikes) (its count moves by up to max_spikes per step towards its level
    and never overshoots). So T = 1 + max over paths of Σ (d − 1).
    """
    ready: dict[str, int] = {}
    for name in snn.order:
        node = snn.nodes[name]
        t = max((ready[e.src] for e in snn.in_edges(name) if not e.recurrent), default=0)
        if isinstance(node, exact.STBIF):
            t += node.settle_steps - 1
        ready[name] = t
    return 1 + max((ready[n] for n in snn.outputs), default=0)


def exact_steps(
    calib: np.ndarray,
    *,
    levels: int,
    percentile: float,
    max_spikes: int,
    inputs: bool,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[PassStep]:
    """The pass pipeline of ``convert_exact`` (names and options)."""
    quantize = {
        "calib": calib,
        "levels": levels,
        "percentile": percentile,
        "inputs": inputs,
        "batch_size": batch_size,
        "progress": progress,
    }
    return [*PREPARATION, ("quantize-activations", quantize), ("exact-spiking", {"max_spikes": max_spikes})]


def convert_exact(
    graph: Graph,
    calib: np.ndarray,
    *,
    levels: int = 16,
    percentile: float = 99.9,
    max_spikes: int = 1,
    inputs: bool = True,
    batch_size: int = 128,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Graph, ExactReport]:
    """Quantize ``graph`` (L=``levels`` per activation, calibrated on ``calib`` (N, *input shape)) and
    lower it to the spike-equivalent SNN. Raises ``PassError`` naming the pass and the layer that failed.
    """
    if graph.is_spiking:
        raise SpikecError("the model already has spiking/stateful nodes: convert takes an ANN")
    x = as_samples(graph, calib, "calibration set")
    steps = exact_steps(
        x, levels=levels, percentile=percentile, max_spikes=max_spikes, inputs=inputs, batch_size=batch_size,
        progress=progress,
    )  # fmt: skip
    passes: list[dict[str, Any]] = []
    kept: dict[str, Graph] = {}
    clock = [time.perf_counter()]

    def observe(name: str, result: PassResult) -> None:
        now = time.perf_counter()
        passes.append({"name": name, "changed": result.changed, "seconds": round(now - clock[0], 4)})
        clock[0] = now
        kept[name] = result.graph

    snn = PassManager(steps).run(graph, observe=observe)
    qann = kept["quantize-activations"]
    from spikec.passes.exact_spiking import lowering_plan

    plan = lowering_plan(qann)
    neurons = []
    for name in plan["neurons"]:
        q = qann.nodes[name]
        assert isinstance(q, exact.Quantize)
        step = np.asarray(q.step, np.float64)
        shown: float | list[float] = float(step) if step.size == 1 else [float(v) for v in step.ravel()]
        neurons.append(NeuronLayer(name, q.origin, list(qann.types[name]), shown, q.lo, q.hi))
    host = [{"name": n, "kind": qann.nodes[n].kind, "origin": qann.nodes[n].origin} for n in plan["wrapped"]]
    report = ExactReport(
        levels=levels,
        percentile=percentile,
        max_spikes=max_spikes,
        quantize_inputs=inputs,
        calibration_samples=int(x.shape[0]),
        settle_bound=settle_bound(snn),
        neurons=neurons,
        host_nodes=host,
        passes=passes,
        qann=qann,
    )
    return snn, report
