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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from spikec import __version__
from spikec.coremap import CoreMap
from spikec.errors import TargetError
from spikec.fileio import save_npz, write_text
from spikec.ir import Concat, Flatten, Graph
from spikec.targets.spinnaker2.connections import connections
from spikec.targets.spinnaker2.dialect import SpiNNaker2Conv, SpiNNaker2Dense, SpiNNaker2LIF

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


def network_spec(graph: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``network.json``'s content and ``network.npz``'s arrays (see the module docstring)."""
    sources: dict[str, Source] = {}
    lag: dict[str, int] = {}
    populations: list[dict[str, Any]] = []
    projections: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    outputs: dict[str, str | list[str]] = {}
    for name in graph.order:
        node = graph.nodes[name]
        ins = graph.in_edges(name)
        size = int(np.prod(graph.types[name]))
        if node.kind == "Input":
            lag[name] = 0
            sources[name] = Source.population(name, size)
            populations.append(
                {"name": name, "kind": "input", "size": size, "shape": list(graph.types[name]), "lag": 0}
            )
        elif isinstance(node, Flatten):
            if ins[0].src in sources:  # spikes; else a conv's output flattened onto a population (read there)
                sources[name] = sources[ins[0].src]
        elif isinstance(node, Concat):
            axis = node.axis % len(graph.types[name])
            shapes = [tuple(graph.types[e.src]) for e in ins]
            sources[name] = joined([sources[e.src] for e in ins], shapes, axis)
        elif isinstance(node, SpiNNaker2LIF):
            if node.reset != "value":
                raise TargetError(
                    f"{graph.describe(name)} resets by subtraction, which PyNN's cells cannot express (IF_curr_delta "
                    f"resets to v_reset): convert with --reset zero, or lower with {QUANTIZE[:-1]},reset_to_zero=true}}"
                )
            synapses = []
            for edge in ins:
                syn_name = edge.src  # a synapse, or the Flatten of a conv onto a flat population (C order: the same)
                if isinstance(graph.nodes[syn_name], Flatten):
                    syn_name = graph.in_edges(syn_name)[0].src
                syn = graph.nodes[syn_name]
                if not isinstance(syn, SpiNNaker2Dense | SpiNNaker2Conv):
                    raise TargetError(
                        f"{graph.describe(name)} reads {graph.describe(edge.src)}; a population reads synapses"
                    )
                src_edge = graph.in_edges(syn_name)[0]
                synapses.append((syn_name, syn, sources[src_edge.src], graph.types[src_edge.src]))
            if not synapses:
                raise TargetError(f"{graph.describe(name)} reads no synapses; a population must have input")
            lag[name] = max(lag[pop] for _, _, source, _ in synapses for pop in source.pops) + 2
            sources[name] = Source.population(name, size)
            for syn_name, syn, source, in_shape in synapses:
                pre_all, post_all, weight_all = connections(syn, in_shape)
                for pop, here, pre in source.split(pre_all):
                    post, weight = post_all[here], weight_all[here]
                    base = syn_name if len(source.pops) == 1 else f"{syn_name}.from.{pop}"
                    for receptor, keep in (("excitatory", weight > 0), ("inhibitory", weight < 0)):
                        if not np.any(keep):
                            continue
                        key = f"{base}.{receptor[:3]}"
                        arrays |= {f"{key}/pre": pre[keep], f"{key}/post": post[keep], f"{key}/weight": weight[keep]}
                        projections.append(
                            {
                                "name": key,
                                "pre": pop,
                                "post": name,
                                "receptor": receptor,
                                "delay_steps": lag[name] - lag[pop] - 1,
                                "synapses": int(keep.sum()),
                            }
                        )
            fields = ("threshold", "v_init", "v_reset", "alpha_decay") + (("syn_decay",) if node.current_based else ())
            for field in fields:
                arrays[f"{name}/{field}"] = _flat(getattr(node, field), size)
            if node.current_based and not np.all(arrays[f"{name}/syn_decay"] > 0):
                raise TargetError(
                    f"{graph.describe(name)} mixes neurons with and without a synaptic current (syn_decay 0 and > 0); "
                    "a PyNN population has one cell type: give every neuron a current, or split the population"
                )
            for key, clock, post, weight, receptor, delay in _constant_inputs(name, node, size, arrays):
                arrays |= {f"{key}/pre": np.zeros_like(post), f"{key}/post": post, f"{key}/weight": weight}
                projections.append(
                    {
                        "name": key,
                        "pre": clock,
                        "post": name,
                        "receptor": receptor,
                        "delay_steps": lag[name] - 1 + delay,
                        "synapses": int(post.size),
                    }
                )
            populations.append(
                {
                    "name": name,
                    "kind": "IF_curr_exp" if node.current_based else "IF_curr_delta",
                    "size": size,
                    "shape": list(graph.types[name]),
                    "lag": lag[name],
                    "readout": bool(node.readout),
                    "leaky": node.leaky,
                }
            )
        elif node.kind == "Output":
            source = sources[ins[0].src]
            shown = next((pop for pop in source.pops if lag.get(pop, 0) == 0), None)
            if shown is not None:
                raise TargetError(
                    f"{graph.describe(name)} shows the input '{shown}' directly: nothing runs on SpiNNaker2"
                )
            if len(source.pops) == 1 and np.array_equal(source.local, np.arange(size)):
                outputs[name] = source.pops[0]
            else:  # a Concat of populations: the script joins their recordings in the output's order
                outputs[name] = list(source.pops)
                arrays[f"{name}/output_part"] = source.which.astype(np.int32)
                arrays[f"{name}/output_index"] = source.local.astype(np.int32)
    spec = {
        "format": NETWORK_FORMAT,
        "dt_ms": graph.dt * 1000.0,
        "populations": populations,
        "projections": projections,
        "inputs": list(graph.inputs),
        "outputs": outputs,
        "shapes": {o: list(graph.types[o]) for o in graph.outputs},
        "max_lag": max(lag.values(), default=0),
    }
    return spec, arrays


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
