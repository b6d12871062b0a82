"""``spikec verify DIR`` for Loihi 2 artifacts: run ``run_lava.py`` in Lava and the interpreter, compare every value.

Both run the same integer inputs (T, N, *shape) for the same T: Lava (``Loihi2SimCfg(select_tag='fixed_pt')``,
in the Lava environment, ``python -I`` so nothing of spikec is importable) and spikec's interpreter on
``model.sir`` with its bit-exact Loihi kernels (what ``spikec run --fixed loihi2`` does). Before anything runs,
the artifact's files must match report.json's sha256 record, and ``run_lava.py`` must be exactly the one this
spikec writes (``emit.run_lava_source``): verify never runs code it did not write. Every output value
(and with ``layers`` every layer's output) must be identical: ``mismatches`` counts the values that differ.

Inputs, in order: ``inputs=`` (an .npy for the one input or an .npz by input name); ``DIR/inputs.npz``
(sample inputs stored by ``spikec compile --inputs``); else seeded random inputs (``seed``, ``samples``):
0/1 spikes at rate 0.25 for inputs a synapse reads, integers 0..255 for a Delta input, and for an input
the LIF takes as bias (netx's input layer) integers 0..255 held constant over time, as Lava requires.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from spikec import __version__
from spikec.arrays import load_feeds
from spikec.artifact import SAMPLE_INPUTS, differences, read_report
from spikec.errors import InputError
from spikec.fileio import scratch_folder
from spikec.ir import Graph
from spikec.targets.loihi2.dialect import LoihiDelta, LoihiDense, LoihiLIF
from spikec.targets.loihi2.emit import RUN_LAVA, run_lava_source
from spikec.targets.loihi2.lava_env import find_lava_python, run_in_lava_env

STATEFUL_KINDS = ("LoihiLIF", "LoihiDelta", "LoihiSigmaDelta", "LoihiSigma")  # their u/v are compared too
SHOWN = 10  # mismatches listed in the report


def _kind_of_feed(graph: Graph, name: str) -> str:
    consumers = [graph.nodes[e.dst] for e in graph.out_edges(name)]
    if consumers and all(isinstance(n, LoihiLIF) and n.input_mode == "bias" for n in consumers):
        return "bias"
    if any(isinstance(n, LoihiDelta) for n in consumers):
        return "graded"
    return "spikes"


def random_inputs(graph: Graph, steps: int, samples: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded integer inputs (T, N, *shape) suited to what reads each input (see the module docstring)."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        shape = (samples, *graph.types[name])
        kind = _kind_of_feed(graph, name)
        if kind == "bias":
            feeds[name] = np.broadcast_to(rng.integers(0, 256, shape), (steps, *shape)).astype(np.float64)
        elif kind == "graded":
            feeds[name] = rng.integers(0, 256, (steps, *shape)).astype(np.float64)
        else:
            feeds[name] = (rng.random((steps, *shape)) < 0.25).astype(np.float64)
    return feeds


def integer_feeds(graph: Graph, path: Path) -> dict[str, np.ndarray]:
    """Inputs from ``path`` (``spikec.arrays.load_feeds``: (T, N, *shape) or (T, *shape) per input), as
    float64; integers only (Loihi fixed point)."""
    feeds = {name: np.asarray(a, dtype=np.float64) for name, a in load_feeds(graph, path).items()}
    for name, a in feeds.items():
        if not np.array_equal(a, np.round(a)):
            raise InputError(f"--inputs {path}: input '{name}' holds non-integers; Loihi 2 takes integer inputs")
    return feeds


def _fit(feed: np.ndarray, steps: int) -> np.ndarray:
    if feed.shape[0] >= steps:
        return feed[:steps]
    return np.concatenate([feed, np.zeros((steps - feed.shape[0], *feed.shape[1:]))])


def _predictions(values: np.ndarray, membrane: np.ndarray | None = None) -> np.ndarray:
    """Per sample: the index of the largest output summed over time (spike count or summed value); a
    sample whose outputs never fire (a readout integrator, as ``quantize{target=loihi2}`` makes) is
    read from the output neurons' membrane ``v`` at the last step instead."""
    counts = values.sum(axis=0).reshape(values.shape[1], -1)
    pred = counts.argmax(axis=1)
    if membrane is not None:
        silent = ~counts.any(axis=1)
        pred[silent] = membrane[-1].reshape(membrane.shape[1], -1)[silent].argmax(axis=1)
    return pred


def output_neurons(graph: Graph) -> dict[str, str]:
    """Each graph output → the neuron node it shows (through Flatten), for outputs fed by a Loihi neuron."""
    found = {}
    for out in graph.outputs:
        src = graph.in_edges(out)[0].src
        while graph.nodes[src].kind == "Flatten":
            src = graph.in_edges(src)[0].src
        if graph.nodes[src].kind in STATEFUL_KINDS:
            found[out] = src
    return found


def _run_lava(directory: Path, feeds: dict[str, np.ndarray], steps: int, layers: bool, timeout: float) -> Any:
    """Run ``run_lava.py`` (with ``--states``: the output neurons' u and v too)."""
    python = find_lava_python()
    with scratch_folder("spikec-verify-") as tmp:
        src, dst = tmp / "in.npz", tmp / "out.npz"
        np.savez(src, **feeds)  # type: ignore[arg-type]
        argv = [str((directory / RUN_LAVA).resolve()), "--inputs", str(src), "--steps", str(steps)]
        argv += ["--out", str(dst), "--states", *(["--probe-all"] if layers else [])]
        start = time.perf_counter()
        advice = "give spikec verify a longer --timeout, or fewer --steps or samples"
        stdout = run_in_lava_env(python, argv, timeout=timeout, cwd=tmp, isolated=True, on_timeout=advice)
        wall = time.perf_counter() - start
        with np.load(dst, allow_pickle=False) as out:
            arrays = {k: out[k] for k in out.files}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    return arrays, wall, float(summary.get("seconds", wall))


def verify_artifact(
    directory: Path,
    *,
    inputs: Path | None = None,
    steps: int | None = None,
    layers: bool = False,
    samples: int = 2,
    seed: int = 0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Compare the artifact in Lava with the interpreter; the report (``mismatches`` 0 when exact)."""
    from spikec.interp import run
    from spikec.targets.loihi2 import check_fixed
    from spikec.text import load_sir

    report = read_report(directory)  # the files are the ones report.json records, by sha256
    for needed in (RUN_LAVA, "network.json", "weights.npz", "model.sir"):
        if not (directory / needed).is_file():
            raise InputError(f"{directory}: {needed} is missing; re-run spikec compile --target loihi2")
    if (directory / RUN_LAVA).read_text(encoding="utf-8", errors="replace") != run_lava_source():
        raise InputError(
            f"{directory / RUN_LAVA}: not the {RUN_LAVA} this spikec ({__version__}) writes, and spikec verify runs "
            f"no other; re-run `spikec compile ... --target loihi2 -o {directory}`"
        )
    graph = load_sir(directory / "model.sir")
    if inputs is not None:
        feeds, source = integer_feeds(graph, inputs), str(inputs)
    elif (directory / SAMPLE_INPUTS).is_file():
        feeds, source = integer_feeds(graph, directory / SAMPLE_INPUTS), f"{directory / SAMPLE_INPUTS} (from compile)"
    else:
        t = steps or int(report.get("steps") or report.get("timesteps") or 32)
        feeds, source = random_inputs(graph, t, samples, seed), f"random (seed {seed}, {samples} samples)"
    steps = steps or int(report.get("steps") or report.get("timesteps") or next(iter(feeds.values())).shape[0])
    if steps < 1:
        raise InputError(f"--steps must be >= 1, got {steps}")
    feeds = {k: _fit(v, steps) for k, v in feeds.items()}
    n = next(iter(feeds.values())).shape[1]
    check_fixed(graph, feeds)
    for name, feed in feeds.items():
        if _kind_of_feed(graph, name) == "bias" and not np.all(feed == feed[:1]):
            raise InputError(
                f"input '{name}' feeds a LIF's bias (netx's input layer), which Lava sets once per run: it must be "
                f"constant over the {steps} steps (a shorter input is padded with zeros: pass --steps {feed.shape[0]}"
                " or a longer input)"
            )

    lava, lava_wall, lava_run = _run_lava(directory, feeds, steps, layers, timeout)
    start = time.perf_counter()
    names = [n for n, node in graph.nodes.items() if node.level == "fixed"] if layers else []
    neurons = output_neurons(graph)
    result = run(graph, feeds, steps=steps, trace=sorted({*names, *neurons.values()}))  # a traced neuron's u, v too
    interp_s = time.perf_counter() - start

    compared, mismatches = 0, 0
    shown: list[dict[str, Any]] = []
    table: dict[str, dict[str, Any]] = {}
    pairs = [(name, lava[name], result.outputs[name]) for name in graph.outputs]
    pairs += [
        (f"{src}.{var}", lava[f"trace/{out}.{var}"], result.traces[f"{src}.{var}"])
        for out, src in neurons.items()
        for var in ("i", "v")
        if f"trace/{out}.{var}" in lava and f"{src}.{var}" in result.traces
    ]
    if layers:
        for name in names:
            mine = result.traces[name]
            node = graph.nodes[name]
            if isinstance(node, LoihiDense) and node.buffered == 0:  # Lava's Dense sends its buffer: one step later
                mine = np.concatenate([np.zeros_like(mine[:1]), mine[:-1]])
            pairs.append((name, lava[f"trace/{name}"], mine))
    for name, theirs, mine in pairs:
        count, first = differences(name, theirs, mine, who="lava", shown=SHOWN)
        compared += mine.size
        mismatches += count
        shown += first[: SHOWN - len(shown)]
        table[name] = {"values": int(mine.size), "mismatches": count, "lava_sum": float(theirs.sum())}
    agree = []
    for o in graph.outputs:
        v = f"{neurons[o]}.v" if o in neurons else None
        theirs_v = lava.get(f"trace/{o}.v") if v else None
        mine_v = result.traces[v] if v else None
        agree.append(_predictions(lava[o], theirs_v) == _predictions(result.outputs[o], mine_v))
    verified: dict[str, Any] = {
        "target": report["target"],
        "artifact": str(directory),
        "samples": int(n),
        "steps": int(steps),
        "inputs": source,
        "compared": compared,
        "mismatches": mismatches,
        "agreement": float(np.mean(np.concatenate(agree))) if agree else 1.0,
        "layers_compared": bool(layers),
        "values": table,
        "first_mismatches": shown,
        "timing": {
            "lava_wall_s": round(lava_wall, 3),
            "lava_run_s": round(lava_run, 3),
            "interp_s": round(interp_s, 3),
            "lava_over_interp": round(lava_run / max(interp_s, 1e-9), 1),
        },
    }
    return verified | {"lines": report_lines(verified)}


def report_lines(r: dict[str, Any]) -> list[str]:
    """What ``spikec verify`` prints: the summary, every compared value, and the first mismatches."""
    t = r["timing"]
    lines = [
        f"verified {r['artifact']} ({r['target']}): {r['samples']} samples x {r['steps']} steps, "
        f"{r['compared']} values compared{' (every layer)' if r['layers_compared'] else ''}: "
        f"{r['mismatches']} mismatches, agreement {100 * r['agreement']:.1f}%",
        f"  inputs: {r['inputs']}",
        f"  timing: Lava {t['lava_run_s']:.3f} s ({t['lava_wall_s']:.3f} s with start-up), "
        f"interpreter {t['interp_s']:.3f} s",
    ]
    lines += [
        f"  {name:<20} {v['values']:>10} values  {v['mismatches']} mismatches  (Lava's sum {v['lava_sum']:g})"
        for name, v in r["values"].items()
    ]
    if r["mismatches"]:
        bad = ", ".join(f"{k} ({v['mismatches']})" for k, v in r["values"].items() if v["mismatches"])
        lines.append(f"  differing: {bad}")
        lines += [
            f"  {m['layer']} step {m['step']} sample {m['sample']} neuron {m['neuron']}: "
            f"Lava {m['lava']:g}, interpreter {m['interp']:g}"
            for m in r["first_mismatches"]
        ]
    return lines
