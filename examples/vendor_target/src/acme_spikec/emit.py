"""Write an ACME-1 artifact: the chip's configuration plus what spikec needs to check it.

``emit_artifact(graph, core_map, out_dir, input_max)`` writes into ``out_dir`` (spikec's temporary
directory, renamed into place when everything is written):

* ``acme1.json`` + ``arrays/*.npy``: the chip's configuration (format: ``acme_sim/config.py``), one neuron
  group per ``AcmeLIF`` with its ``AcmeDense`` synapses, placed on cores as ``partition{target=acme1}``
  placed it;
* ``core_map.json``: the partition's core map (spikec's ``CoreMap.to_json``);
* ``model.sir`` (+ ``model.npz``): the graph itself, what ``spikec verify`` runs the interpreter on;
* ``report.json``: this target's part (groups, neurons, synapses, cores); ``spikec compile`` adds its keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from acme_spikec.dialect import AcmeDense, AcmeLIF
from spikec.coremap import CoreMap
from spikec.errors import TargetError
from spikec.ir import Flatten, Graph

if TYPE_CHECKING:
    from acme_sim import NetworkConfig

REPORT = "report.json"


def source_of(graph: Graph, name: str) -> str:
    """The Input or AcmeLIF that feeds ``name`` through any Flatten."""
    src = graph.in_edges(name)[0].src
    while isinstance(graph.nodes[src], Flatten):
        src = graph.in_edges(src)[0].src
    return src


def network_config(graph: Graph, core_map: CoreMap, input_max: int) -> NetworkConfig:
    """The graph as the chip's configuration: groups in topological order, cores from ``core_map``."""
    from acme_sim.config import Core, Group, NetworkConfig, Synapse
    from acme_sim.config import Input as ChipInput
    from acme_sim.config import Output as ChipOutput

    inputs = tuple(ChipInput(n, tuple(graph.types[n]), input_max) for n in graph.inputs)
    groups = []
    for name in graph.order:
        node = graph.nodes[name]
        if not isinstance(node, AcmeLIF):
            continue
        size = int(np.prod(graph.types[name]))
        synapses = []
        for edge in graph.in_edges(name):
            dense = graph.nodes[edge.src]
            assert isinstance(dense, AcmeDense)
            synapses.append(Synapse(edge.src, source_of(graph, edge.src), np.asarray(dense.weight)))
        placements = core_map.layers.get(name, ())
        if not placements:
            raise TargetError(f"{graph.describe(name)} is not in the core map: run partition{{target=acme1}} last")
        cores = tuple(Core(p.chip, p.core, (p.box[0][0], p.box[0][1])) for p in placements)
        full = {f: np.broadcast_to(np.asarray(getattr(node, f)), (size,)) for f in ("threshold", "bias", "v_init")}
        groups.append(
            Group(name, size, node.leak_shift, bool(node.readout), **full, synapses=tuple(synapses), cores=cores)
        )
    outputs = tuple(ChipOutput(o, source_of(graph, o), tuple(graph.types[o])) for o in graph.outputs)
    return NetworkConfig(inputs, tuple(groups), outputs)


def emit_artifact(graph: Graph, core_map: CoreMap, out_dir: Path, input_max: int) -> list[str]:
    """Write the artifact's files into ``out_dir``; the names written (see the module docstring)."""
    from acme_sim import write_config

    from spikec.text import save_sir

    out_dir.mkdir(parents=True, exist_ok=True)
    config = network_config(graph, core_map, input_max)
    write_config(out_dir, config)
    (out_dir / "core_map.json").write_text(json.dumps(core_map.to_json(), indent=1) + "\n", encoding="utf-8")
    save_sir(graph, out_dir / "model.sir")
    groups: list[dict[str, Any]] = [
        {
            "name": g.name,
            "neurons": g.size,
            "readout": g.readout,
            "leak_shift": g.leak_shift,
            "synapses": sum(int(np.count_nonzero(s.weight)) for s in g.synapses),
            "cores": [c.core for c in g.cores],
        }
        for g in config.groups
    ]
    report = {
        "target": "acme1",
        "config": "acme1.json",
        "inputs": {i.name: {"shape": list(i.shape), "max": i.max} for i in config.inputs},
        "outputs": {o.name: {"group": o.group, "shape": list(o.shape)} for o in config.outputs},
        "groups": groups,
        "neurons": sum(g["neurons"] for g in groups),
        "synapses": sum(g["synapses"] for g in groups),
        "cores_used": core_map.cores_used,
        "chips_used": core_map.chips_used,
        "run": "python -m acme_sim DIR --inputs X.npz --steps T --out out.npz",
    }
    (out_dir / REPORT).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
