"""Write a SpiNNaker2 artifact: a self-contained PyNN script, its network and weights, core map and report.

``emit_artifact(graph, core_map, out_dir, quantize)`` writes into ``out_dir`` (spikec's temporary directory,
renamed into place when everything is written, so nothing is half-written):

* ``run_pynn.py``: ``pynn_script.py`` (package data) behind a header: numpy, the standard library and PyNN only;
  ``--backend brian2`` simulates, ``--backend spinnaker`` maps the network with sPyNNaker;
* ``network.json``: populations (input spike sources, IF_curr_delta cells, IF_curr_exp cells for populations with
  a synaptic current, each with its ``lag``: the steps it runs behind the SIR step it computes), projections
  (excitatory and inhibitory apart, their delays), outputs (a population, or the populations a Concat joins, with
  ``<output>/output_part`` and ``<output>/output_index`` in network.npz: each element's population and neuron);
* ``network.npz``: every projection's ``pre``, ``post``, ``weight`` (int32, int32, int16) and every
  population's ``threshold``, ``v_init``, ``v_reset``, ``alpha_decay`` (and ``syn_decay`` with a current; never
  pickled);
* ``core_map.json``, ``model.sir`` (+ ``model.npz``): spikec's placement on PEs, and the graph ``spikec verify``
  runs the interpreter on; ``report.json``: this target's part (populations, synapses, PEs, emission time).

The input spike sources are the artifact's ``inputs.npz`` (``spikec compile --inputs``), 0/1 spikes
(T, N, *shape) by input name, which ``run_pynn.py --inputs`` reads.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from spikec import __version__
from spikec.coremap import CoreMap
from spikec.errors import TargetError
from spikec.fileio import save_npz, write_text
from spikec.ir import Concat, Flatten, Graph, Input, Output
from spikec.ir.node import Node
from spikec.registry import Registry
from spikec.targets.spinnaker2 import not_expressible
from spikec.targets.spinnaker2.connections import CONNECTIONS, connections
from spikec.targets.spinnaker2.dialect import SpiNNaker2LIF

NETWORK_FORMAT = "spikec.spinnaker2.pynn/1"
REPORT = "report.json"
RUN_PYNN = "run_pynn.py"
QUANTIZE = "quantize{target=spinnaker2}"
CLOCKS = (":bias", ":start")  # the script's sources firing every step / once (no SIR name starts with ':')

HEADER = """#!/usr/bin/env python3
# SpiNNaker2 artifact emitted by spikec {version}: the PyNN network of network.json (weights: network.npz).
# Needs numpy and PyNN 0.13 with Brian2 (--backend brian2) or sPyNNaker (--backend spinnaker); not spikec.
# What follows is spikec's targets/spinnaker2/pynn_script.py, verbatim.
"""


def run_pynn_source() -> str:
    """``run_pynn.py``'s text; ``spikec verify`` runs an artifact's script only when it is exactly this."""
    source = (
        importlib.resources.files("spikec.targets.spinnaker2").joinpath("pynn_script.py").read_text(encoding="utf-8")
    )
    return HEADER.format(version=__version__) + source


@dataclasses.dataclass(frozen=True)
class Source:
    """Where each element (flat C order) of a spike tensor lives: population ``pops[which[k]]``, neuron ``local[k]``
    (a Flatten keeps its input's; a Concat joins its inputs' along its axis)."""

    pops: tuple[str, ...]
    which: np.ndarray
    local: np.ndarray

    @classmethod
    def population(cls, name: str, size: int) -> Source:
        return cls((name,), np.zeros(size, np.int64), np.arange(size, dtype=np.int64))

    def split(self, pre: np.ndarray) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """For pre-synaptic indices into this tensor: each population, which of them it holds, its own indices."""
        for k, pop in enumerate(self.pops):
            here = self.which[pre] == k
            if np.any(here):
                yield pop, here, self.local[pre[here]].astype(np.int32)


def joined(sources: list[Source], shapes: list[tuple[int, ...]], axis: int) -> Source:
    """A Concat of spike tensors along per-sample ``axis``."""
    pops = tuple(dict.fromkeys(p for s in sources for p in s.pops))
    pairs = list(zip(sources, shapes, strict=True))
    which = [np.asarray([pops.index(p) for p in s.pops])[s.which].reshape(sh) for s, sh in pairs]
    local = [s.local.reshape(sh) for s, sh in pairs]
    return Source(pops, np.concatenate(which, axis).reshape(-1), np.concatenate(local, axis).reshape(-1))


def _flat(value: Any, size: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64).reshape(-1) if np.ndim(value) else value, (size,)).copy()


def _constant_inputs(
    name: str, node: SpiNNaker2LIF, size: int, arrays: dict[str, np.ndarray]
) -> Iterator[tuple[str, str, np.ndarray, np.ndarray, str, int]]:
    """A population's inputs from the clock sources: (key, source, post, weight, receptor, SIR step it arrives at).

    ``:bias``, a source firing every step, carries the bias. A population whose v is a float starts at v = 0 in
    PyNN, because its v would decay during the ``lag`` steps it runs behind; its v₀ arrives from ``:start``, a source
    firing once, as the spike of weight α·v₀ at SIR step 0 (and −β·α·v₀ at step 1, so that a current that carried
    the pulse forgets it), which ``arrays`` records by zeroing the population's ``v_init``."""
    pulses = [(":bias", 0, _flat(node.bias, size).astype(np.int64))]
    v_init = arrays[f"{name}/v_init"]
    if node.leaky and np.any(v_init != 0):
        alpha = arrays[f"{name}/alpha_decay"]
        pulses.append((":start", 0, alpha * v_init))
        if node.current_based:
            pulses.append((":start", 1, -arrays[f"{name}/syn_decay"] * alpha * v_init))
        arrays[f"{name}/v_init"] = np.zeros(size)
    for source, step, weight in pulses:
        for receptor, keep in (("excitatory", weight > 0), ("inhibitory", weight < 0)):
            if np.any(keep):
                key = f"{name}.{source[1:]}{step or ''}.{receptor[:3]}"
                yield key, source, np.nonzero(keep)[0].astype(np.int32), weight[keep], receptor, step


@dataclasses.dataclass
class Emission:
    """What the emitter has built so far, in the graph's order: where each spike tensor lives (``sources``), each
    population's ``lag``, and network.json's populations, projections and outputs with network.npz's arrays."""

    graph: Graph
    sources: dict[str, Source] = dataclasses.field(default_factory=dict)
    lag: dict[str, int] = dataclasses.field(default_factory=dict)
    populations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    projections: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    outputs: dict[str, str | list[str]] = dataclasses.field(default_factory=dict)

    def size(self, name: str) -> int:
        return int(np.prod(self.graph.types[name]))

    def project(
        self, key: str, pre: str, post: str, receptor: str, delay: int, conn: tuple[np.ndarray, np.ndarray, np.ndarray]
    ) -> None:
        """Projection ``key`` from population ``pre`` to ``post``: ``conn`` is its (pre, post, weight) list."""
        self.arrays |= {f"{key}/pre": conn[0], f"{key}/post": conn[1], f"{key}/weight": conn[2]}
        projection = {"name": key, "pre": pre, "post": post, "receptor": receptor, "delay_steps": delay}
        self.projections.append(projection | {"synapses": int(conn[1].size)})

    def spec(self) -> dict[str, Any]:
        """network.json's content."""
        graph = self.graph
        return {
            "format": NETWORK_FORMAT,
            "dt_ms": graph.dt * 1000.0,
            "populations": self.populations,
            "projections": self.projections,
            "inputs": list(graph.inputs),
            "outputs": self.outputs,
            "shapes": {o: list(graph.types[o]) for o in graph.outputs},
            "max_lag": max(self.lag.values(), default=0),
        }


EmitRule = Callable[[Emission, str, Any], None]
# what each kind adds to the network, in the graph's order
EMITTERS: Registry[type[Node], EmitRule] = Registry("SpiNNaker2 emitter")


def emits(*kinds: type[Node]) -> Callable[[EmitRule], EmitRule]:
    """Register ``rule`` as what nodes of ``kinds`` add to the network (``network_spec``)."""
    return EMITTERS.register(*kinds)


def network_spec(graph: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``network.json``'s content and ``network.npz``'s arrays (see the module docstring): each node's rule in
    ``EMITTERS``; ``TargetError`` naming the first node of a kind it has none for."""
    emission = Emission(graph)
    for name in graph.order:
        node = graph.nodes[name]
        rule = EMITTERS.get(type(node))
        if rule is None:
            raise not_expressible(graph, name)
        rule(emission, name, node)
    return emission.spec(), emission.arrays


@emits(Input)
def _input(em: Emission, name: str, node: Input) -> None:
    """A spike source population (``inputs.npz``'s spikes), lag 0."""
    size = em.size(name)
    em.lag[name] = 0
    em.sources[name] = Source.population(name, size)
    em.populations.append({"name": name, "kind": "input", "size": size, "shape": list(em.graph.types[name]), "lag": 0})


@emits(Flatten)
def _flatten(em: Emission, name: str, node: Flatten) -> None:
    """Spikes keep their neurons; a conv's output flattened onto a population is read there (``_population``)."""
    src = em.graph.in_edges(name)[0].src
    if src in em.sources:
        em.sources[name] = em.sources[src]


@emits(Concat)
def _concat(em: Emission, name: str, node: Concat) -> None:
    """Its readers' projections split per source population (``Source.split``)."""
    graph, ins = em.graph, em.graph.in_edges(name)
    axis = node.axis % len(graph.types[name])
    shapes = [tuple(graph.types[e.src]) for e in ins]
    em.sources[name] = joined([em.sources[e.src] for e in ins], shapes, axis)


@emits(*CONNECTIONS)
def _synapse(em: Emission, name: str, node: Node) -> None:
    """Emitted as projections of the population it feeds (``_population``)."""


def _synapses(em: Emission, name: str) -> list[tuple[str, Node, Source, tuple[int, ...]]]:
    """The synapses population ``name`` reads: (name, node, the source it reads, that source's shape)."""
    graph = em.graph
    synapses = []
    for edge in graph.in_edges(name):
        syn_name = edge.src  # a synapse, or the Flatten of a conv onto a flat population (C order: the same)
        if isinstance(graph.nodes[syn_name], Flatten):
            syn_name = graph.in_edges(syn_name)[0].src
        syn = graph.nodes[syn_name]
        if type(syn) not in CONNECTIONS:
            raise TargetError(f"{graph.describe(name)} reads {graph.describe(edge.src)}; a population reads synapses")
        src_edge = graph.in_edges(syn_name)[0]
        synapses.append((syn_name, syn, em.sources[src_edge.src], tuple(graph.types[src_edge.src])))
    if not synapses:
        raise TargetError(f"{graph.describe(name)} reads no synapses; a population must have input")
    return synapses


@emits(SpiNNaker2LIF)
def _population(em: Emission, name: str, node: SpiNNaker2LIF) -> None:
    """An IF_curr_delta (IF_curr_exp with a current) population ``lag`` steps behind: 2 more than the latest
    population it reads; a projection per synapse, source population and sign, and from the clock sources."""
    graph, size = em.graph, em.size(name)
    if node.reset != "value":
        raise TargetError(
            f"{graph.describe(name)} resets by subtraction, which PyNN's cells cannot express (IF_curr_delta "
            f"resets to v_reset): convert with --reset zero, or lower with {QUANTIZE[:-1]},reset_to_zero=true}}"
        )
    synapses = _synapses(em, name)
    em.lag[name] = max(em.lag[pop] for _, _, source, _ in synapses for pop in source.pops) + 2
    em.sources[name] = Source.population(name, size)
    for syn_name, syn, source, in_shape in synapses:
        pre_all, post_all, weight_all = connections(syn, in_shape)
        for pop, here, pre in source.split(pre_all):
            post, weight = post_all[here], weight_all[here]
            base = syn_name if len(source.pops) == 1 else f"{syn_name}.from.{pop}"
            for receptor, keep in (("excitatory", weight > 0), ("inhibitory", weight < 0)):
                if np.any(keep):
                    conn = (pre[keep], post[keep], weight[keep])
                    em.project(f"{base}.{receptor[:3]}", pop, name, receptor, em.lag[name] - em.lag[pop] - 1, conn)
    fields = ("threshold", "v_init", "v_reset", "alpha_decay") + (("syn_decay",) if node.current_based else ())
    for field in fields:
        em.arrays[f"{name}/{field}"] = _flat(getattr(node, field), size)
    if node.current_based and not np.all(em.arrays[f"{name}/syn_decay"] > 0):
        raise TargetError(
            f"{graph.describe(name)} mixes neurons with and without a synaptic current (syn_decay 0 and > 0); "
            "a PyNN population has one cell type: give every neuron a current, or split the population"
        )
    for key, clock, post, weight, receptor, delay in _constant_inputs(name, node, size, em.arrays):
        em.project(key, clock, name, receptor, em.lag[name] - 1 + delay, (np.zeros_like(post), post, weight))
    em.populations.append(
        {
            "name": name,
            "kind": "IF_curr_exp" if node.current_based else "IF_curr_delta",
            "size": size,
            "shape": list(graph.types[name]),
            "lag": em.lag[name],
            "readout": bool(node.readout),
            "leaky": node.leaky,
        }
    )


@emits(Output)
def _output(em: Emission, name: str, node: Output) -> None:
    """A population, or the populations a Concat joins (``<output>/output_part``, ``<output>/output_index``)."""
    source = em.sources[em.graph.in_edges(name)[0].src]
    shown = next((pop for pop in source.pops if em.lag.get(pop, 0) == 0), None)
    if shown is not None:
        raise TargetError(f"{em.graph.describe(name)} shows the input '{shown}' directly: nothing runs on SpiNNaker2")
    if len(source.pops) == 1 and np.array_equal(source.local, np.arange(em.size(name))):
        em.outputs[name] = source.pops[0]
    else:  # a Concat of populations: the script joins their recordings in the output's order
        em.outputs[name] = list(source.pops)
        em.arrays[f"{name}/output_part"] = source.which.astype(np.int32)
        em.arrays[f"{name}/output_index"] = source.local.astype(np.int32)


def emit_artifact(graph: Graph, core_map: CoreMap, out_dir: Path, quantize: dict[str, Any] | None = None) -> list[str]:
    """Write the artifact's files into ``out_dir``; the names written."""
    from spikec.text import save_sir

    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    spec, arrays = network_spec(graph)
    write_text(out_dir / RUN_PYNN, run_pynn_source())
    save_npz(out_dir / "network.npz", arrays)
    write_text(out_dir / "network.json", json.dumps(spec, indent=1) + "\n")
    write_text(out_dir / "core_map.json", json.dumps({"status": "partitioned", **core_map.to_json()}, indent=1) + "\n")
    save_sir(graph, out_dir / "model.sir")
    neurons = sum(p["size"] for p in spec["populations"] if p["kind"] != "input")
    synapses = sum(p["synapses"] for p in spec["projections"] if p["pre"] not in CLOCKS)
    report = {
        "target": "spinnaker2",
        "spikec_version": __version__,
        "inputs": {n: list(graph.types[n]) for n in graph.inputs},
        "outputs": spec["outputs"],
        "populations": [{k: p[k] for k in ("name", "kind", "size", "lag")} for p in spec["populations"]],
        "projections": len(spec["projections"]),
        "neurons": neurons,
        "synapses": synapses,
        "max_lag": spec["max_lag"],
        "core_map": {k: getattr(core_map, k) for k in ("cores_used", "chips_used")},
        "network_npz_bytes": (out_dir / "network.npz").stat().st_size,
        "run": "python run_pynn.py --backend brian2 --inputs inputs.npz --out out.npz  |  --backend spinnaker",
        **({"quantize": quantize} if quantize else {}),
        "emit": {"seconds": round(time.perf_counter() - start, 3)},
    }
    write_text(out_dir / REPORT, json.dumps(report, indent=1) + "\n")
    return sorted(p.name for p in out_dir.iterdir())
