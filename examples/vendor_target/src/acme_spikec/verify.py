"""``spikec verify DIR`` for ACME-1 artifacts: the chip's simulator on ``acme1.json`` vs spikec's interpreter.

The simulator (``acme_sim``, written from the chip's specification, numpy only) reads the configuration
files; the interpreter runs ``model.sir`` with the dialect's kernels. Both get the same integer inputs for
the same steps, and every output value must be identical (``mismatches`` counts those that differ); with
``layers`` every group's output and membrane too. Inputs, in order: ``inputs=`` (``.npy`` for one input,
``.npz`` by input name, ``(T, N, *shape)`` or ``(T, *shape)``); ``DIR/inputs.npz`` (from ``spikec compile
--inputs``); else seeded random integers 0 .. the input's ``max`` (0/1 spikes at rate 0.25 when it is 1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from spikec.artifact import differences
from spikec.errors import InputError, TargetError
from spikec.ir import Graph

SAMPLE_INPUTS = "inputs.npz"
SHOWN = 10  # mismatches listed in the report


def load_inputs(graph: Graph, path: Path, steps: int | None) -> dict[str, np.ndarray]:
    """``(T, N, *shape)`` feeds by input name from an ``.npy`` (one input) or ``.npz`` (by name), padded or
    cut to ``steps`` (spikec's loader: never unpickled, errors name the option and the file)."""
    from spikec.arrays import load_arrays
    from spikec.interp import prepare_inputs

    arrays = load_arrays(path, "--inputs")
    try:
        feeds, _, _ = prepare_inputs(graph, arrays, steps)
    except InputError as err:
        raise InputError(f"--inputs {path}: {err}") from None
    return feeds


def random_inputs(config: Any, steps: int, samples: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded integers 0 .. each input's ``max``: Bernoulli(0.25) spikes when that is 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for item in config.inputs:
        shape = (steps, samples, *item.shape)
        values = rng.random(shape) < 0.25 if item.max == 1 else rng.integers(0, item.max + 1, shape)
        feeds[item.name] = values.astype(np.float64)
    return feeds


def _prediction(values: np.ndarray, readout: bool) -> np.ndarray:
    """Per sample: argmax of a readout's last value, or of the spike counts."""
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
) -> dict[str, Any]:
    """Compare the simulator with the interpreter on ``directory``; the report (``mismatches`` 0 when exact)."""
    from acme_sim import ConfigError, read_config, simulate

    from acme_spikec import check_fixed
    from spikec.artifact import read_report
    from spikec.interp import run
    from spikec.text import load_sir

    report = read_report(directory)
    for needed in ("acme1.json", "model.sir"):
        if not (directory / needed).is_file():
            raise InputError(f"{directory}: {needed} is missing; re-run spikec compile --target acme1")
    graph = load_sir(directory / "model.sir")
    try:
        config = read_config(directory)
    except ConfigError as err:
        raise TargetError(f"ACME-1 refuses the configuration: {err}") from None
    steps = steps or int(report.get("steps") or report.get("timesteps") or 0) or None
    if inputs is not None:
        feeds, source = load_inputs(graph, inputs, steps), str(inputs)
    elif (directory / SAMPLE_INPUTS).is_file():
        feeds, source = (
            load_inputs(graph, directory / SAMPLE_INPUTS, steps),
            f"{directory / SAMPLE_INPUTS} (from compile)",
        )
    else:
        feeds, source = random_inputs(config, steps or 32, samples, seed), f"random (seed {seed}, {samples} samples)"
    steps = next(iter(feeds.values())).shape[0]
    check_fixed(graph, feeds)

    start = time.perf_counter()
    try:
        chip = simulate(config, feeds, steps)
    except ConfigError as err:
        raise TargetError(f"ACME-1 simulator: {err}") from None
    chip_s = time.perf_counter() - start
    groups = [g.name for g in config.groups]
    start = time.perf_counter()
    mine = run(graph, feeds, steps=steps, trace=groups if layers else [])
    interp_s = time.perf_counter() - start

    pairs = [(name, chip.outputs[name], mine.outputs[name]) for name in graph.outputs]
    if layers:
        pairs += [(g, chip.sent[g], mine.traces[g].reshape(chip.sent[g].shape)) for g in groups]
        pairs += [(f"{g}.v", chip.membrane[g], mine.traces[f"{g}.v"].reshape(chip.membrane[g].shape)) for g in groups]
    mismatches = 0
    shown: list[dict[str, Any]] = []
    table: dict[str, dict[str, Any]] = {}
    for label, theirs, ours in pairs:
        count, first = differences(label, theirs.astype(np.float64), ours, who="chip", shown=SHOWN)
        mismatches += count
        shown += first[: SHOWN - len(shown)]
        table[label] = {"values": int(ours.size), "mismatches": count, "chip_sum": float(theirs.sum())}
    readout = {o.name: next(g.readout for g in config.groups if g.name == o.group) for o in config.outputs}
    agree = [
        _prediction(chip.outputs[o], readout[o]) == _prediction(mine.outputs[o], readout[o]) for o in graph.outputs
    ]
    result = {
        "target": report["target"],
        "artifact": str(directory),
        "samples": int(next(iter(feeds.values())).shape[1]),
        "steps": int(steps),
        "inputs": source,
        "compared": sum(int(ours.size) for _, _, ours in pairs),
        "mismatches": mismatches,
        "agreement": float(np.mean(np.concatenate(agree))) if agree else 1.0,
        "layers_compared": bool(layers),
        "values": table,
        "first_mismatches": shown,
        "timing": {"chip_run_s": round(chip_s, 4), "interp_s": round(interp_s, 4)},
    }
    return result | {"lines": report_lines(result)}


def report_lines(r: dict[str, Any]) -> list[str]:
    """What ``spikec verify`` prints (spikec prints a target's ``lines``): the summary, each compared value,
    and the first mismatches."""
    lines = [
        f"verified {r['artifact']} ({r['target']}): {r['samples']} samples x {r['steps']} steps, "
        f"{r['compared']} values compared{' (every layer)' if r['layers_compared'] else ''}: "
        f"{r['mismatches']} mismatches, agreement {100 * r['agreement']:.1f}%",
        f"  inputs: {r['inputs']}",
        f"  timing: ACME-1 simulator {r['timing']['chip_run_s']:.3f} s, interpreter {r['timing']['interp_s']:.3f} s",
    ]
    lines += [
        f"  {name:<20} {v['values']:>10} values  {v['mismatches']} mismatches  (the chip's sum {v['chip_sum']:g})"
        for name, v in r["values"].items()
    ]
    if r["mismatches"]:
        bad = ", ".join(f"{k} ({v['mismatches']})" for k, v in r["values"].items() if v["mismatches"])
        lines.append(f"  differing: {bad}")
    lines += [
        f"  {m['layer']} step {m['step']} sample {m['sample']} neuron {m['neuron']}: "
        f"chip {m['chip']:g}, interpreter {m['interp']:g}"
        for m in r["first_mismatches"]
    ]
    return lines
