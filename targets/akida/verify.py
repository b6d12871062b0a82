"""``spikec verify DIR`` for Akida artifacts: ``model.fbz`` in the akida engine vs ``model.sir`` in the interpreter.

The same 8-bit images go to both: the engine's ``forward`` (software backend) on ``model.fbz`` as the file holds
it (``akida.Model(path)``), the interpreter on ``model.sir`` with the Akida kernels (``--fixed akida``). Every
output integer must be identical (``mismatches``). A (T, N, *shape) input is taken as T·N images: Akida has no
time axis. Inputs: ``inputs=`` (an .npy of images (N, C, H, W), 0..255), else ``DIR/inputs.npz`` (from
``spikec compile --inputs``), else seeded random images. The mapping recorded at compile time is reported too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from spikec.arrays import load_feeds
from spikec.artifact import SAMPLE_INPUTS, differences, read_report
from spikec.errors import InputError, VerifyError
from spikec.ir import Graph
from spikec.targets.akida.emit import ANN, MODEL

SHOWN = 10


def images(graph: Graph, path: Path) -> np.ndarray:
    """The images of ``path`` as (N, C, H, W) float64 (T and N merged), 8-bit integers only."""
    (name,) = graph.inputs
    feed = np.asarray(load_feeds(graph, path)[name], np.float64)
    x = feed.reshape(-1, *graph.types[name])
    if not np.array_equal(x, np.round(x)) or x.min() < 0 or x.max() > 255:
        raise InputError(f"--inputs {path}: Akida takes 8-bit pixels (integers 0..255); scale the images to that")
    return x


def run_engine(path: Path, x: np.ndarray) -> np.ndarray:
    """``model.fbz`` in the engine on (N, C, H, W) images → (N, *output) int (Akida's (X, Y, C) → SIR's). An IP v1
    model whose last layer has no activation answers with ``predict``: its potential minus its threshold (the
    logits; ``forward`` gives the potential alone), divided by an ``act_step`` of 1."""
    import akida

    model = akida.Model(str(path))
    pixels = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).astype(np.uint8)
    last = model.layers[-1]
    v1_logits = str(model.ip_version).endswith("v1") and not last.parameters.activation
    y = model.predict(pixels) if v1_logits else model.forward(pixels)
    if v1_logits and not np.array_equal(y, np.round(y)):
        raise VerifyError(f"{path}: the last layer's outputs are not integers: its act_step must be 1")
    y = np.asarray(y, np.int64)
    return y.reshape(len(x), -1) if y.shape[1:3] == (1, 1) else y.transpose(0, 3, 1, 2)


def ann_comparison(directory: Path, x: np.ndarray, akida: np.ndarray, labels: Path | None) -> dict[str, Any]:
    """Akida's predictions against the float ANN's (``ann.sir``) on the same images, and with ``labels`` both
    accuracies: ``{"ann_agreement", "accuracy": {"ann", "akida"}, "loss_pp"}``."""
    from spikec.arrays import load_array
    from spikec.compare import check_labels
    from spikec.interp import run
    from spikec.text import load_sir

    if not (directory / ANN).is_file():
        return {}
    ann = load_sir(directory / ANN)
    scores = np.asarray(run(ann, {ann.inputs[0]: x[None]}, steps=1).outputs[ann.outputs[0]][0])
    theirs, ours = akida.reshape(len(x), -1).argmax(axis=1), scores.reshape(len(x), -1).argmax(axis=1)
    out: dict[str, Any] = {"ann_agreement": float(np.mean(theirs == ours))}
    if labels is not None:
        y = check_labels(load_array(labels, "--labels"), len(x), f"--labels {labels}")
        acc = {"ann": float(np.mean(ours == y)), "akida": float(np.mean(theirs == y))}
        out |= {"accuracy": acc, "loss_pp": round(100 * (acc["ann"] - acc["akida"]), 2)}
    return out


def verify_artifact(
    directory: Path,
    *,
    inputs: Path | None = None,
    labels: Path | None = None,
    steps: int | None = None,
    layers: bool = False,
    samples: int = 2,
    seed: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """Compare the engine with the interpreter; the report (``mismatches`` 0 when exact)."""
    from spikec.interp import run
    from spikec.text import load_sir

    report = read_report(directory)
    for needed in (MODEL, "model.sir"):
        if not (directory / needed).is_file():
            raise InputError(f"{directory}: {needed} is missing; re-run spikec compile --target akida")
    graph = load_sir(directory / "model.sir")
    (name,) = graph.inputs
    if inputs is not None:
        x, source = images(graph, inputs), str(inputs)
    elif (directory / SAMPLE_INPUTS).is_file():
        x, source = images(graph, directory / SAMPLE_INPUTS), f"{directory / SAMPLE_INPUTS} (from compile)"
    else:
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, (samples, *graph.types[name])).astype(np.float64)
        source = f"random 8-bit images (seed {seed}, {samples} samples)"
    start = time.perf_counter()
    theirs = run_engine(directory / MODEL, x)
    engine_s = time.perf_counter() - start
    start = time.perf_counter()
    (out,) = graph.outputs
    mine = np.asarray(run(graph, {name: x[None]}, steps=1).outputs[out][0], np.float64)
    interp_s = time.perf_counter() - start
    mine = mine.reshape(theirs.shape)
    count, first = differences(out, theirs[None].astype(np.float64), mine[None], who="akida", shown=SHOWN)
    flat_t, flat_m = theirs.reshape(len(x), -1), mine.reshape(len(x), -1)
    agreement = float(np.mean(flat_t.argmax(axis=1) == flat_m.argmax(axis=1)))
    mapping = (report.get("artifact") or {}).get("mapping", {})
    against_ann = ann_comparison(directory, x, theirs, labels)
    verified: dict[str, Any] = {
        "target": report["target"],
        "artifact": str(directory),
        "samples": len(x),
        "steps": 1,
        "inputs": source,
        "compared": int(mine.size),
        "mismatches": count,
        "agreement": agreement,
        "first_mismatches": first,
        **against_ann,
        "mapping": mapping,
        "timing": {"engine_s": round(engine_s, 3), "interp_s": round(interp_s, 3)},
    }
    return verified | {"lines": report_lines(verified)}


def report_lines(r: dict[str, Any]) -> list[str]:
    """What ``spikec verify`` prints: the summary, the mapping, the first mismatches."""
    lines = [
        f"verified {r['artifact']} ({r['target']}): {r['samples']} images, {r['compared']} output values compared: "
        f"{r['mismatches']} mismatches, agreement {100 * r['agreement']:.1f}%",
        f"  inputs: {r['inputs']}",
        f"  timing: akida engine {r['timing']['engine_s']:.3f} s, interpreter {r['timing']['interp_s']:.3f} s",
    ]
    if "ann_agreement" in r:
        line = f"  against the float ANN (ann.sir): same prediction on {100 * r['ann_agreement']:.1f}% of the images"
        if "accuracy" in r:
            acc = r["accuracy"]
            line += (
                f"; accuracy ANN {100 * acc['ann']:.2f}%, Akida {100 * acc['akida']:.2f}% ({r['loss_pp']:.2f} pp lost)"
            )
        lines.append(line)
    m = r["mapping"]
    if m.get("mapped"):
        nps = ", ".join(f"{n} {k}" for k, n in m["nps"].items())
        lines.append(f"  mapping on {m['device']}: {m['np_total']} NPs ({nps}), program {m['program_bytes']} bytes")
    elif m:
        lines.append(f"  does not map on {m['device']}: {m['error']}")
    lines += [
        f"  {d['layer']} sample {d['sample']} output {d['neuron']}: akida {d['akida']:g}, interpreter {d['interp']:g}"
        for d in r["first_mismatches"]
    ]
    return lines
