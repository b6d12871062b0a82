"""Run Loihi-dialect SIR networks on Lava's CPU models: ``python lava_sim.py in.npz out.npz``.

Runs INSIDE the Lava environment (Python 3.10, .venv-lava), started by ``lava_env.simulate_in_lava``;
imports nothing from spikec. The processes come from ``lava_build`` beside this file (the same module an
emitted artifact's ``run_lava.py`` is). ``in.npz`` holds ``spec`` (JSON):

    {"select_tag": "fixed_pt", "networks": [{"steps": T, "record": null or [names], "nodes": [
        {"name": ..., "kind": ..., "inputs": [names], "shape": [...], "params": {scalar fields}}, ...]}]}

and arrays named ``<net>/<node>/<field>`` (node array fields) and ``<net>/<input node>/feed``
(the input per step, SIR layout (T, *shape)). For each network every node's output (and a neuron's
``u``/``v`` state, a sigma-delta's ``sigma``/``act``) is recorded with Monitors as ``<net>/<node>``
and ``<net>/<node>.<var>``, (T, *shape) in SIR layout (``record`` limits this to some nodes' outputs:
every Monitor is a process of its own and slows Lava down). Several networks share one subprocess.
"""

from __future__ import annotations

import json
import sys

import lava_build  # beside this script: a script's folder is first on sys.path
import numpy as np


def main(src: str, dst: str) -> None:
    with np.load(src, allow_pickle=False) as data:
        spec = json.loads(str(data["spec"]))
        results: dict[str, np.ndarray] = {}
        for i, net in enumerate(spec["networks"]):
            key = str(i)
            feeds = {n["name"]: data[f"{key}/{n['name']}/feed"] for n in net["nodes"] if n["kind"] == "Input"}
            graph = lava_build.build(net, lambda node, field, key=key: data[f"{key}/{node}/{field}"], feeds)
            record = net.get("record")
            tag = spec["select_tag"]
            traces = lava_build.run(graph, int(net["steps"]), record, states=record is None, select_tag=tag)
            results |= {f"{key}/{label}": value for label, value in traces.items()}
    np.savez(dst, **results)  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
