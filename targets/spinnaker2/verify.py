"""``spikec verify DIR`` for SpiNNaker2 artifacts: ``run_pynn.py`` on Brian2 vs the interpreter, and sPyNNaker's map.

Both get the same 0/1 input spikes for the same T: ``run_pynn.py --backend brian2`` in a subprocess (numpy code
generation, ``HOME`` a temporary directory) and spikec's interpreter on ``model.sir`` with the SpiNNaker2
kernels (``spikec run --fixed spinnaker2``). Per population, every neuron's spike count (a readout: its v at
the last step) must be identical, and so must every spike's step: ``mismatches`` counts the (sample, neuron) pairs
whose spike train (or readout v) differs, and the (sample, element) pairs of an output that joins populations (a
Concat) where the script's join differs from the interpreter's output; the spike-count difference distribution is
printed, and ``agreement`` is the fraction of samples with the same prediction (argmax of the readout's v, else of
the output's spike counts). Before anything runs, the artifact's files must
match report.json's sha256 record and ``run_pynn.py`` must be exactly the one this spikec writes. Then
sPyNNaker maps the network on a virtual board (``spynnaker_map``): its cores and chips beside spikec's PEs.

Inputs, in order: ``inputs=`` (.npy for the one input, .npz by name); ``DIR/inputs.npz`` (from ``spikec compile
--inputs``); else seeded random spikes at rate 0.25 (``seed``, ``samples``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from spikec import __version__
from spikec.arrays import load_feeds
from spikec.artifact import SAMPLE_INPUTS, read_report
from spikec.errors import InputError, TargetError
from spikec.ir import Graph
from spikec.targets.spinnaker2.emit import RUN_PYNN, run_pynn_source

SHOWN = 10


def random_inputs(graph: Graph, steps: int, samples: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: (rng.random((steps, samples, *graph.types[n])) < 0.25).astype(np.float64) for n in graph.inputs}


def _fit(feed: np.ndarray, steps: int) -> np.ndarray:
    pad = np.zeros((max(0, steps - feed.shape[0]), *feed.shape[1:]))
    return np.concatenate([np.asarray(feed, np.float64), pad])[:steps]


def run_brian2(
    directory: Path, feeds: dict[str, np.ndarray], steps: int, timeout: float
) -> tuple[dict[str, np.ndarray], float]:
    """``run_pynn.py --backend brian2`` in a subprocess; its out.npz arrays and wall time."""
    with tempfile.TemporaryDirectory(prefix="spikec-verify-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, **feeds)  # type: ignore[arg-type]
        argv = [sys.executable, str((directory / RUN_PYNN).resolve()), "--backend", "brian2", "--inputs", str(src)]
        argv += ["--steps", str(steps), "--out", str(dst)]
        start = time.perf_counter()
        try:
            done = subprocess.run(
                argv, cwd=tmp, env={**os.environ, "HOME": tmp}, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise TargetError(f"{RUN_PYNN} on Brian2 ran past {timeout:.0f} s") from None
        wall = time.perf_counter() - start
        if done.returncode != 0 or not dst.is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise TargetError(f"{directory / RUN_PYNN} failed on Brian2:\n{tail}")
        with np.load(dst, allow_pickle=False) as out:
            return {k: out[k] for k in out.files}, wall


def _prediction(values: np.ndarray, readout: bool) -> np.ndarray:
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    return (flat[-1] if readout else flat.sum(axis=0)).argmax(axis=1)


def verify_artifact(
    directory: Path,
    *,
    inputs: Path | None = None,
    steps: int | None = None,
    layers: bool = False,
    samples: int = 2,
    seed: int = 0,
    timeout: float = 900.0,
    mapping: bool = True,
) -> dict[str, Any]:
    """Compare Brian2 with the interpreter on ``directory`` and map it with sPyNNaker; the report."""
    from spikec.interp import run
    from spikec.targets.spinnaker2 import check_fixed
    from spikec.text import load_sir

    report = read_report(directory)
    if mapping:
        from spikec.targets.spinnaker2.spynnaker_map import require_spynnaker

        require_spynnaker()  # before the Brian2 run: say at once what is missing
    for needed in (RUN_PYNN, "network.json", "network.npz", "model.sir"):
        if not (directory / needed).is_file():
            raise InputError(f"{directory}: {needed} is missing; re-run spikec compile --target spinnaker2")
    if (directory / RUN_PYNN).read_text(encoding="utf-8", errors="replace") != run_pynn_source():
        raise InputError(
            f"{directory / RUN_PYNN}: not the {RUN_PYNN} this spikec ({__version__}) writes, and spikec "
            "verify runs no other; re-run spikec compile --target spinnaker2"
        )
    graph = load_sir(directory / "model.sir")
    spec = json.loads((directory / "network.json").read_text(encoding="utf-8"))
    chips = int(report.get("artifact", {}).get("core_map", {}).get("chips_used", 1))
    if mapping:
        from spikec.targets.spinnaker2.spynnaker_map import board_for

        board = board_for(spec, chips)  # a network no virtual board holds: said before any run
    if inputs is not None:
        feeds, source = load_feeds(graph, inputs), str(inputs)
    elif (directory / SAMPLE_INPUTS).is_file():
        feeds, source = load_feeds(graph, directory / SAMPLE_INPUTS), f"{directory / SAMPLE_INPUTS} (from compile)"
    else:
        t = steps or int(report.get("steps") or 32)
        feeds, source = random_inputs(graph, t, samples, seed), f"random spikes (seed {seed}, {samples} samples)"
    steps = steps or next(iter(feeds.values())).shape[0]
    feeds = {k: _fit(v, steps) for k, v in feeds.items()}
    check_fixed(graph, feeds)
    n = next(iter(feeds.values())).shape[1]

    theirs, brian_wall = run_brian2(directory, feeds, steps, timeout)
    pops = [p for p in spec["populations"] if p["kind"] != "input"]
    start = time.perf_counter()
    mine = run(graph, feeds, steps=steps, trace=[p["name"] for p in pops])
    interp_s = time.perf_counter() - start

    mismatches = 0
    table: dict[str, dict[str, Any]] = {}
    shown: list[dict[str, Any]] = []
    histogram: dict[int, int] = {}
    for p in pops:
        name = p["name"]
        ours = mine.traces[name].reshape(steps, n, -1)
        brian = theirs[f"trace/{name}"]
        if p["readout"]:
            diff = brian[-1] - ours[-1]
            bad = np.argwhere(diff != 0)
        else:
            diff = brian.sum(axis=0) - ours.sum(axis=0)
            bad = np.argwhere((brian != ours).any(axis=0))  # a spike train that differs at any step
            values, counts = np.unique(diff.astype(np.int64), return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist(), strict=True):
                histogram[v] = histogram.get(v, 0) + c
        mismatches += len(bad)
        shown += [
            {
                "population": name,
                "sample": int(s),
                "neuron": int(j),
                "brian2": float(brian[-1, s, j] if p["readout"] else brian[:, s, j].sum()),
                "interp": float(ours[-1, s, j] if p["readout"] else ours[:, s, j].sum()),
            }
            for s, j in bad[: SHOWN - len(shown)]
        ]
        table[name] = {
            "neurons": int(p["size"]),
            "readout": bool(p["readout"]),
            "mismatches": len(bad),
            "spikes": None if p["readout"] else int(ours.sum()),
            "lag": int(p["lag"]),
        }
    agree, joins = [], {}
    for name, parts in spec["outputs"].items():  # a population, or the populations a Concat joins (spikes)
        readout = isinstance(parts, str) and next(p["readout"] for p in pops if p["name"] == parts)
        agree.append(_prediction(theirs[name], readout) == _prediction(mine.outputs[name], readout))
        if not isinstance(parts, str):  # the script's join, element by element, beside each part's own check
            differ = (theirs[name] != mine.outputs[name]).reshape(steps, n, -1).any(axis=0)
            joins[name] = {"parts": parts, "mismatches": int(differ.sum())}
            mismatches += int(differ.sum())
    result: dict[str, Any] = {
        "target": report["target"],
        "artifact": str(directory),
        "samples": int(n),
        "steps": int(steps),
        "inputs": source,
        "compared": int(sum(p["size"] for p in pops) * n),
        "mismatches": int(mismatches),
        "agreement": float(np.mean(np.concatenate(agree))) if agree else 1.0,
        "spike_count_differences": {str(k): v for k, v in sorted(histogram.items())},
        "populations": table,
        "joined_outputs": joins,
        "first_mismatches": shown,
        "timing": {
            "brian2_wall_s": round(brian_wall, 2),
            "pynn_build_s": round(float(theirs["timing/build_s"]), 3),
            "brian2_run_s": round(float(theirs["timing/run_s"]), 2),
            "interp_s": round(interp_s, 2),
        },
        "spikec_pes": int(report.get("artifact", {}).get("core_map", {}).get("cores_used", 0)),
    }
    if mapping:
        from spikec.targets.spinnaker2.spynnaker_map import virtual_mapping

        result["spynnaker"] = virtual_mapping(directory / RUN_PYNN, board, steps, timeout)
    return result | {"lines": report_lines(result)}


def report_lines(r: dict[str, Any]) -> list[str]:
    """What ``spikec verify`` prints: the summary, the spike-count differences, each population, the mapping."""
    t = r["timing"]
    lines = [
        f"verified {r['artifact']} ({r['target']}): {r['samples']} samples x {r['steps']} steps, {r['compared']} "
        f"spike trains compared: {r['mismatches']} mismatches, agreement {100 * r['agreement']:.1f}%",
        f"  inputs: {r['inputs']}",
        f"  spike-count differences (Brian2 - interpreter: neurons x samples): {r['spike_count_differences']}",
        f"  timing: PyNN build {t['pynn_build_s']:.2f} s, Brian2 run {t['brian2_run_s']:.2f} s "
        f"({t['brian2_wall_s']:.1f} s with start-up), interpreter {t['interp_s']:.2f} s",
    ]
    lines += [
        f"  {name:<26} {v['neurons']:>7} neurons  lag {v['lag']:>2}  {v['mismatches']} mismatches"
        + ("  (readout v)" if v["readout"] else f"  ({v['spikes']} spikes)")
        for name, v in r["populations"].items()
    ]
    lines += [
        f"  output {name} joins {', '.join(j['parts'])}: {j['mismatches']} mismatches"
        for name, j in r.get("joined_outputs", {}).items()
    ]
    lines += [
        f"  {m['population']} sample {m['sample']} neuron {m['neuron']}: Brian2 {m['brian2']:g}, interpreter "
        f"{m['interp']:g}"
        for m in r["first_mismatches"]
    ]
    m = r.get("spynnaker")
    if m:
        lines.append(
            f"  sPyNNaker (virtual version-{m['version']} board): {m['cores_used']} cores ({m['system_cores']} "
            f"system) on {m['chips_used']} chip(s), {m['vertices']} vertices; spikec: {r['spikec_pes']} PEs"
        )
        lines.append("    partitioning: " + ", ".join(f"{k} {v}" for k, v in m["cores_by_population"].items()))
    return lines
