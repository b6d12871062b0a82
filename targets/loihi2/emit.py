"""Write a Loihi 2 artifact: a runnable Lava module, its weights and process graph, the .net, core map, report.

``emit_artifact(graph, out_dir)`` writes into ``out_dir`` (the caller's temporary directory, renamed into
place when everything is written, so nothing is half-written):

* ``run_lava.py``: ``lava_build.py`` (package data, the module ``lava_sim.py`` also builds with) behind a
  header: imports only lava-nc (with its numpy and scipy) and the standard library; reads the two files below
  beside itself;
* ``weights.npz``: every array field as ``<node>/<field>`` (SIR layout; the builder converts to Lava's);
* ``network.json``: the process graph (nodes in topological order with kind, Lava process, SIR shape,
  scalar parameters, inputs; graph inputs and outputs; unbuffered synapses);
* ``model.net``: the netx export, when every layer has a netx form (else the reason goes in the report);
* ``core_map.json``: where every layer's neurons go (``partition{target=loihi2}``), and per-layer resources;
* ``model.sir`` (+ ``model.npz``): the graph itself, what ``spikec verify`` runs the interpreter on;
* ``report.json``: this target's part (IO shapes, per-layer resources, netx and core-map status, the layers
  ``split-fanin`` computed through relays and the latency it added); the
  compile command adds its own keys (steps, pipeline, files).
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import numpy as np

from spikec import __version__
from spikec.coremap import CoreMap
from spikec.errors import TargetError
from spikec.fileio import save_npz, write_text
from spikec.ir import Graph
from spikec.ir.node import Level, Node
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDense, LoihiLIF
from spikec.targets.loihi2.lava_env import describe_network

NETWORK_FORMAT = "spikec.loihi2.network/1"
REPORT = "report.json"
RUN_LAVA = "run_lava.py"

HEADER = """#!/usr/bin/env python3
# Loihi 2 artifact emitted by spikec {version}: builds the Lava process graph of network.json (weights.npz).
# Runs with Python 3.10 and lava-nc 0.10.0 only (spikec need not be installed):
#
#     python run_lava.py --inputs X.npy [--steps T] [--out out.npz] [--probe-all]
#
# X.npy is (T, N, *shape) or (T, *shape) in SIR layout (C, H, W), integers; an .npz names several inputs.
# Each sample runs under Loihi2SimCfg(select_tag="fixed_pt"), bit-accurate to Loihi 2's arithmetic; out.npz
# holds each output (T, N, *shape) and, with --probe-all, every layer as trace/<node>. What follows is
# spikec's targets/loihi2/lava_build.py, verbatim.
"""


def run_lava_source() -> str:
    """``run_lava.py``'s text: this spikec's ``lava_build.py`` behind ``HEADER``. ``spikec verify`` runs an
    artifact's ``run_lava.py`` only when it is exactly this text."""
    source = importlib.resources.files("spikec.targets.loihi2").joinpath("lava_build.py").read_text(encoding="utf-8")
    return HEADER.format(version=__version__) + source


SPARSE_DENSITY = 0.25  # a LoihiDense with at most this fraction of nonzero weights becomes Lava's Sparse


def lava_process(node: Node) -> str:
    """The lava-nc process a node becomes (what ``lava_build.BUILDERS`` makes of it). ``Sparse`` computes
    what ``Dense`` does bit for bit (the same weight clipping, truncation and exponent) from CSR weights."""
    if isinstance(node, LoihiDense):
        size = node.weight.shape[0] * getattr(node, "in_size", node.weight.shape[1])  # a partial: the whole input
        sparse = node.buffered and np.count_nonzero(node.weight) <= SPARSE_DENSITY * size
        return ("Delay" if node.delay is not None else "") + ("Sparse" if sparse else "Dense")
    if isinstance(node, LoihiLIF):
        return "LIFReset" if node.reset_interval else "LIF"
    if isinstance(node, LoihiConv) and node.per_synapse:  # Lava's Conv has no delays and no weight exponent:
        return "DelaySparse" if node.delay else "Sparse"  # the conv's connectivity as a sparse matrix
    return PROCESSES.get(node.kind, "")


PROCESSES = {
    "LoihiConv": "Conv",
    "LoihiDelta": "Delta",
    "LoihiSigmaDelta": "SigmaDelta",
    "LoihiSigma": "Sigma",
    "LoihiGradedVec": "GradedVec",
    "Input": "RingBuffer (lava.proc.io.source) or the LIF's bias_mant",
    "Output": "Monitor",
    "Flatten": "port reshape",
}


def layer_resources(graph: Graph) -> list[dict[str, Any]]:
    """Per Loihi layer: its Lava process, neurons (neuron kinds) and synapses (connections a synapse makes)."""
    rows = []
    for name in graph.order:
        node = graph.nodes[name]
        if node.level != Level.FIXED:
            continue
        row: dict[str, Any] = {"name": name, "kind": node.kind, "process": lava_process(node)}
        shape = graph.types[name]
        if isinstance(node, LoihiDense):
            row |= {"neurons": 0, "synapses": int(np.count_nonzero(node.weight)), "weights": int(node.weight.size)}
        elif isinstance(node, LoihiConv):
            per_output = int(np.prod(node.weight.shape[1:]))
            row |= {"neurons": 0, "synapses": int(np.prod(shape)) * per_output, "weights": int(node.weight.size)}
        else:
            row |= {"neurons": int(np.prod(shape)), "synapses": 0, "weights": 0}
        rows.append(row)
    return rows


def network_json(graph: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``network.json``'s content and ``weights.npz``'s arrays."""
    nodes, arrays = describe_network(graph)
    for entry in nodes:
        entry["process"] = lava_process(graph.nodes[entry["name"]])
        entry["recurrent_inputs"] = [e.src for e in graph.in_edges(entry["name"]) if e.recurrent]
    unbuffered = [n for n, node in graph.nodes.items() if isinstance(node, LoihiDense) and node.buffered == 0]
    network = {
        "format": NETWORK_FORMAT,
        "select_tag": "fixed_pt",
        "nodes": nodes,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "unbuffered": unbuffered,  # Lava sends these synapses' buffer: their own trace lags the SIR's by a step
    }
    return network, arrays


def _write_netx(graph: Graph, path: Path) -> dict[str, Any]:
    from spikec.targets.loihi2.netx import export_netx

    try:
        export_netx(graph, path)
    except TargetError as err:
        return {"written": False, "reason": str(err)}
    return {"written": True, "file": path.name}


def emit_artifact(
    graph: Graph,
    core_map: CoreMap,
    out_dir: Path,
    split: dict[str, Any] | None = None,
    quantize: dict[str, Any] | None = None,
) -> list[str]:
    """Write the artifact's files into ``out_dir``; the names written (report.json comes from the caller).
    ``core_map`` is what the pipeline's ``partition{target=loihi2}`` placed, with its options; ``split`` the
    ``split-fanin`` report (layers computed through relays, latency added per output) and ``quantize`` the
    quantize pass's report (per layer; for the exact method how to decode each output), kept in report.json."""
    from spikec.text import save_sir

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / RUN_LAVA, run_lava_source())
    network, arrays = network_json(graph)
    save_npz(out_dir / "weights.npz", arrays)
    write_text(out_dir / "network.json", json.dumps(network, indent=1) + "\n")
    netx = _write_netx(graph, out_dir / "model.net")
    layers = layer_resources(graph)
    placed = {"status": "partitioned", **core_map.to_json(), "layer_resources": layers}
    write_text(out_dir / "core_map.json", json.dumps(placed, indent=1) + "\n")
    save_sir(graph, out_dir / "model.sir")
    report = {
        "target": "loihi2",
        "spikec_version": __version__,
        "select_tag": "fixed_pt",
        "inputs": {n: list(graph.types[n]) for n in graph.inputs},
        "outputs": {n: list(graph.types[n]) for n in graph.outputs},
        "layers": layers,
        "neurons": sum(row["neurons"] for row in layers),
        "synapses": sum(row["synapses"] for row in layers),
        "netx": netx,
        "core_map": {k: placed[k] for k in ("cores_used", "chips_used", "system", "lower_bound", "tile_bound")},
        **({"split_fanin": split} if split and split.get("split") else {}),
        "run": "python run_lava.py --inputs X.npy --steps T --out out.npz  (in the Lava 3.10 environment)",
        **({"quantize": quantize} if quantize else {}),
    }
    write_text(out_dir / REPORT, json.dumps(report, indent=1) + "\n")
    return sorted(p.name for p in out_dir.iterdir())
