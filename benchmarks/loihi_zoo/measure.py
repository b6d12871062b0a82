"""The Loihi 2 zoo benchmark: each model compiled with the short command, measured.

    .venv/bin/python benchmarks/loihi_zoo/measure.py [MODEL ...] [--verify] [--out results.json]

For each model of ``models.MODELS`` (random weights, BatchNorm statistics from random inputs:
``models.batchnorm_statistics``; exported by torch's TorchScript exporter at batch 1):

1. ``spikec compile MODEL.onnx --target loihi2 --calib calib.npy --timesteps 32 -o DIR`` (nothing else), timed,
   with its peak resident memory (``/usr/bin/time -v`` of the command);
2. cores and chips used against the lower bound, from ``DIR/core_map.json``;
3. agreement of the compiled network's argmax at T=32 with the ANN's (onnxruntime) on random inputs: the
   artifact's ``model.sir`` run in the interpreter's bit-exact Loihi kernels, fed as ``report.json`` says
   (``conversion_settings.encoding``, ``input_scale``) for T steps plus the network's latency, read from the
   readout's membrane;
4. with ``--verify`` and a model small enough for Lava on 2 cores: ``spikec verify DIR`` (mismatches).

It prints a Markdown table and writes the rows as JSON, each with the 1-minute load average before and after the
compile. Timings are of this machine; run it on an idle one (a load near 1 while a compile runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SPIKEC = str(Path(sys.executable).with_name("spikec"))
TIMESTEPS = 32
CALIB, SAMPLES = 4, 16
FIXED_POINT_AGREEMENT = 3 * 64 * 64  # larger inputs: the float SNN's agreement (fixed point: minutes a sample)
NON_NEGATIVE = ("vit-binary-16",)  # the binary method's input layer of IF neurons takes inputs >= 0
VERIFY_TIMEOUT = 1800  # seconds: Lava runs ResNet-18 @32's 500 cores as one process each, minutes on 2 cores
VERIFIABLE = ("resnet18-32", "vit-binary-16")  # small enough for Lava on this machine (seconds to minutes)


def export(name: str, work: Path) -> tuple[Path, tuple[int, ...]]:
    """``work/NAME.onnx`` (cached), exported as a user would, and the input shape."""
    import torch

    sys.path.insert(0, str(HERE))
    from models import DYNAMO, MODELS, batchnorm_statistics

    torch.manual_seed(0)
    module, shape = MODELS[name]()
    path = work / f"{name}.onnx"
    if not path.is_file():
        module = batchnorm_statistics(module, shape)  # as trained: activations keep their scale through depth
        with torch.no_grad():
            torch.onnx.export(module, (torch.randn(1, *shape),), str(path), dynamo=name in DYNAMO,
                              external_data=False)  # fmt: skip
    return path, shape


def method(name: str) -> list[str]:
    """``--method M`` where the model needs one (models.METHODS), else nothing."""
    from models import METHODS

    return ["--method", METHODS[name]] if name in METHODS else []


def timed(
    command: list[str], cwd: Path, timeout: float | None = None
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``command``; (result, wall seconds, peak RSS in GB). Past ``timeout`` seconds: return code -9."""
    start = time.perf_counter()
    with subprocess.Popen(
        ["/usr/bin/time", "-v", *command], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as proc:  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the compile under /usr/bin/time too
            proc.communicate()
            return subprocess.CompletedProcess(command, -9, "", f"timed out after {timeout:g} s"), timeout or 0.0, 0.0
    done = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    wall = time.perf_counter() - start
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return done, wall, int(peak.group(1)) / 2**20 if peak else float("nan")


def artifact_feed(out: Path, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Samples ``x`` (N, *shape) as the compiled network takes them (T + latency, N, *shape), and that T + latency:
    encoded as ``report.json`` records (``conversion_settings.encoding``, ``input_scale``)."""
    from spikec.coding import encode

    report = json.loads((out / "report.json").read_text())
    steps = TIMESTEPS + int(report["artifact"]["quantize"]["latency_steps"])
    encoding = report["conversion_settings"]["encoding"]["value"]
    return np.asarray(encode(x, steps, encoding, scale=report["input_scale"]), dtype=np.float64), steps


def artifact_predictions(out: Path, x: np.ndarray) -> np.ndarray:
    """The compiled network's argmax for samples ``x`` (N, *shape): ``out/model.sir`` in the bit-exact Loihi
    kernels, fed as compile chose (report.json), run T + latency steps; the readout's v at the last step, plus
    the bias the host adds where the readout's did not fit the chip (report.json's ``host_bias``)."""
    from spikec.interp import run
    from spikec.targets.loihi2.verify import output_neurons
    from spikec.text import load_sir

    graph = load_sir(out / "model.sir")
    feed, steps = artifact_feed(out, x)
    ((output, readout), *_) = output_neurons(graph).items()
    result = run(graph, {graph.inputs[0]: feed}, steps=steps, trace=[readout])
    v = np.asarray(result.traces[f"{readout}.v"][-1]).reshape(len(x), -1)
    entry = json.loads((out / "report.json").read_text())["artifact"]["quantize"]["outputs"][output][0]
    if "host_bias" in entry:
        v = v + (steps - entry["latency"]) * np.asarray(entry["host_bias"])
    return v.argmax(axis=1)


def float_snn_agreement(name: str, model: Path, work: Path, data: np.ndarray, labels: np.ndarray) -> float | str:
    """``spikec eval --target loihi2``: the float SNN converted with the target's settings against the ANN."""
    np.save(work / f"{name}-data.npy", data)
    np.save(work / f"{name}-labels.npy", labels.argmax(axis=1))
    evaluated = subprocess.run(
        [SPIKEC, "eval", str(model), "--target", "loihi2", *method(name), "--data", f"{name}-data.npy", "--labels",
         f"{name}-labels.npy", "--calib", f"{name}-calib.npy", "--timesteps", str(TIMESTEPS), "--json"],
        cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    report = json.loads(evaluated.stdout or "{}")
    return report["snn"]["accuracy"] if evaluated.returncode == 0 else str(report.get("error", ""))[:200]


def measure(name: str, work: Path, verify: bool, timeout: float | None = None,
            pass_options: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    import onnxruntime as ort

    model, shape = export(name, work)
    rng = np.random.default_rng(0)
    draw = rng.random if name in NON_NEGATIVE else rng.normal  # images in [0, 1), or normalised ones
    np.save(work / f"{name}-calib.npy", draw(size=(CALIB, *shape)).astype(np.float32))
    small = np.prod(shape) <= FIXED_POINT_AGREEMENT
    data = draw(size=(SAMPLES if small else SAMPLES // 2, *shape)).astype(np.float32)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    labels = np.concatenate([np.asarray(session.run(None, {feed: x[None]})[0]).reshape(1, -1) for x in data])
    out = work / f"{name}-loihi2{''.join('-' + o.split('=')[-1] for o in pass_options)}"
    row: dict[str, Any] = {"model": name, "input": list(shape), "load_before": round(os.getloadavg()[0], 2)}
    if pass_options:
        row["pass_options"] = list(pass_options)
    done, wall, peak = timed(
        [SPIKEC, "compile", str(model), "--target", "loihi2", *method(name), "--calib", f"{name}-calib.npy",
         "--timesteps", str(TIMESTEPS), "-o", str(out), "--json",
         *(arg for o in pass_options for arg in ("--pass-option", o))], work, timeout,
    )  # fmt: skip
    row |= {"compile_s": round(wall, 1), "peak_rss_gb": round(peak, 2), "load_after": round(os.getloadavg()[0], 2)}
    if done.returncode != 0:
        row["error"] = (json.loads(done.stdout or "{}").get("error") or done.stderr.strip().splitlines()[-1])[:300]
        return row
    core_map = json.loads((out / "core_map.json").read_text())
    row |= {k: core_map.get(k) for k in ("cores_used", "chips_used", "lower_bound", "proven_bound", "tile_bound")}
    alignment = json.loads((out / "report.json").read_text())["artifact"]["quantize"].get("alignment", {})
    row |= {"alignment": alignment.get("chosen"), "relay_neurons": alignment.get("relay_neurons")}
    start = time.perf_counter()
    if small:
        predicted = artifact_predictions(out, data)
        row |= {"agreement": float(np.mean(predicted == labels.argmax(axis=1))), "agreement_of": "fixed point"}
    else:
        row |= {"agreement": float_snn_agreement(name, model, work, data, labels), "agreement_of": "float SNN"}
    row |= {"agreement_samples": len(data), "agreement_s": round(time.perf_counter() - start, 1)}
    if verify and name in VERIFIABLE:
        feed, steps = artifact_feed(out, data[:2])  # two of the samples, as the chip is fed them
        np.save(work / f"{name}-feed.npy", feed)
        checked = subprocess.run(
            [SPIKEC, "verify", str(out), "--inputs", f"{name}-feed.npy", "--steps", str(steps), "--timeout",
             str(VERIFY_TIMEOUT), "--json"],
            cwd=work, capture_output=True, text=True,
        )  # fmt: skip
        verified = json.loads(checked.stdout or "{}")
        row |= {"verify_mismatches": verified.get("mismatches"), "verify_compared": verified.get("compared")}
        if checked.returncode != 0:
            row["verify_error"] = str(verified.get("error", checked.stderr.strip()[-300:]))[:300]
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | input | compile | peak RSS | cores | lower / proven / tile bound | chips | argmax agreement, T=32 "
        "| Lava |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = "×".join(map(str, r["input"]))
        if "error" in r:
            lines.append(f"| {r['model']} | {shape} | {r['compile_s']} s | refused: {r['error']} ||||||")
            continue
        agree = r["agreement"] if isinstance(r["agreement"], str) else f"{100 * r['agreement']:.1f} %"
        agree += f" ({r['agreement_of']}, {r['agreement_samples']} samples)"
        lava = "–" if r.get("verify_mismatches") is None else f"{r['verify_mismatches']} mismatches"
        bounds = f"{r['lower_bound']} / {r['proven_bound']} / {r['tile_bound']}"
        lines.append(
            f"| {r['model']} | {shape} | {r['compile_s']} s | {r['peak_rss_gb']} GB | {r['cores_used']} | {bounds} | "
            f"{r['chips_used']} | {agree} | {lava} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="models to run (default: all)")
    parser.add_argument("--verify", action="store_true", help="also verify the small models in Lava")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="exports and artifacts (default ./work)")
    parser.add_argument("--timeout", type=float, help="seconds a compile may take (default: no limit)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--pass-option", action="append", default=[], metavar="PASS.KEY=VALUE",
                        help="passed on to spikec compile (e.g. quantize.align=exact); the row records it")  # fmt: skip
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from models import MODELS

    args.work.mkdir(parents=True, exist_ok=True)
    lava = REPO / ".venv-lava" / "bin" / "python"  # spikec verify's Lava environment, from this checkout
    if "SPIKEC_LAVA_PYTHON" not in os.environ and lava.exists():
        os.environ["SPIKEC_LAVA_PYTHON"] = str(lava)
    rows = []
    for name in args.models or list(MODELS):
        rows.append(measure(name, args.work, args.verify, args.timeout, tuple(args.pass_option)))
        print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
