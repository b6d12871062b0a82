"""Compile-time scaling: ViT-B-width models (d=768, 12 heads, MLP 3072, patch 16, 224×224×3) with
6, 12 and 24 blocks and random weights, from ONNX through conversion to an emitted ``.sir``.

    .venv/bin/python benchmarks/vit/compile_scaling.py [--depths 6 12 24] [--workdir DIR] [--profile]

The ONNX files are written first with ``onnx.helper`` (``vit_onnx.py``; not measured). Each model
is then compiled in a fresh Python process, which reports the wall time of each phase

    import   spikec.frontends.onnx.import_onnx (read, check, shape inference, lowering)
    convert  CONVERT below: the whole exact conversion (``spikec.convert_exact``, L=16, calibrated on
             one random image, numpy backend), as ``spikec compile --method exact`` runs it; ``--convert
             module:function`` swaps in another Graph → Graph function
    emit     spikec.text.save_sir (.sir text + .npz sidecar)

and its peak RSS (``VmHWM``: ``ru_maxrss`` would include the parent's peak) against the weight bytes.
Goals (issue 4): 24 blocks in < 60 s on the 2-core machine, peak RSS < 4× weight bytes, time
linear in depth. ``--profile`` writes a cProfile of each child next to the ONNX files.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from spikec.ir.graph import Graph  # noqa: E402

DEPTHS = (6, 12, 24)


CALIBRATION_IMAGES = 1  # random images (seeded): the weights are random too, only the cost is measured
LEVELS = 16
BACKEND = "numpy"  # the calibration forward pass (spikec compile --method exact's default)


def convert_exact_full(graph: Graph) -> Graph:
    """The whole exact ANN→SNN conversion (``spikec.convert_exact``): preparation, calibrated
    ``quantize-activations`` (L=16) and ``exact-spiking`` (the SNN that ``--method exact`` emits)."""
    import numpy as np

    from spikec.convert_exact import convert_exact

    (name,) = graph.inputs
    shape = graph.types[name]
    calib = np.random.default_rng(0).uniform(0.0, 1.0, (CALIBRATION_IMAGES, *shape))
    snn, _ = convert_exact(graph, calib, levels=LEVELS, batch_size=CALIBRATION_IMAGES, backend=BACKEND)
    return snn


def convert_exact_preparation(graph: Graph) -> Graph:
    """Only the preparation passes (the measurement before the exact conversion existed)."""
    from spikec.convert_exact import PREPARATION
    from spikec.pipeline import PassManager

    return PassManager(list(PREPARATION)).run(graph)


CONVERT: Callable[[Graph], Graph] = convert_exact_full


def _load_convert(spec: str | None) -> Callable[[Graph], Graph]:
    if not spec:
        return CONVERT
    module, _, name = spec.partition(":")
    fn: Callable[[Graph], Graph] = getattr(importlib.import_module(module), name)
    return fn


def _status_bytes(key: str) -> int:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    line = next((ln for ln in status.splitlines() if ln.startswith(key + ":")), f"{key}: 0 kB")
    return int(line.split()[1]) * 1024


def _peak_rss_bytes() -> int:
    """This process's peak RSS: VmHWM (ru_maxrss also counts the parent's peak before exec on Linux)."""
    return _status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_bytes() -> int:
    return _status_bytes("VmRSS")


def compile_one(onnx_path: Path, out_dir: Path, convert_spec: str | None) -> dict[str, Any]:
    """Run in the child: import → convert → save_sir, timing each phase."""
    from spikec.frontends.onnx import import_onnx
    from spikec.text import save_sir

    convert = _load_convert(convert_spec)
    phases: dict[str, float] = {}
    peaks: dict[str, int] = {}
    baseline = _peak_rss_bytes()
    clock = time.perf_counter()
    graph = import_onnx(onnx_path)
    phases["import"] = time.perf_counter() - clock
    peaks["import"], after_import = _peak_rss_bytes(), _rss_bytes()
    clock = time.perf_counter()
    graph = convert(graph)
    phases["convert"] = time.perf_counter() - clock
    peaks["convert"] = _peak_rss_bytes()
    clock = time.perf_counter()
    save_sir(graph, out_dir / (onnx_path.stem + ".sir"))
    phases["emit"] = time.perf_counter() - clock
    peaks["emit"] = _peak_rss_bytes()
    return {
        "phases_s": {k: round(v, 2) for k, v in phases.items()},
        "peak_rss_after_phase_bytes": peaks,
        "rss_after_import_bytes": after_import,
        "total_s": round(sum(phases.values()), 2),
        "peak_rss_bytes": _peak_rss_bytes(),
        "baseline_rss_bytes": baseline,
        "nodes": len(graph.nodes),
    }


def run_child(onnx_path: Path, out_dir: Path, convert_spec: str | None, profile: bool) -> dict[str, Any]:
    """Compile one model in a fresh interpreter; returns the child's JSON report."""
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", str(onnx_path.with_suffix(".prof"))]
    cmd += [str(Path(__file__)), "--child", str(onnx_path), "--out", str(out_dir)]
    if convert_spec:
        cmd += ["--convert", convert_spec]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"compiling {onnx_path} failed:\n{proc.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["process_wall_s"] = round(wall, 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    parser.add_argument("--workdir", type=Path, help="where the ONNX and .sir files go (default: a temp dir)")
    parser.add_argument("--convert", help="module:function taking and returning a Graph (default: %(default)s)")
    parser.add_argument("--profile", action="store_true", help="cProfile each child (DEPTH.prof in workdir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(compile_one(args.child, args.out, args.convert)))
        return
    from benchmarks.vit.vit_onnx import write_vit_onnx

    with tempfile.TemporaryDirectory(prefix="spikec-vit-scaling-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for depth in args.depths:
            onnx_path = work / f"vit_b_{depth}.onnx"
            start = time.perf_counter()
            weights = write_vit_onnx(onnx_path, depth)
            built = time.perf_counter() - start
            report = run_child(onnx_path, work, args.convert, args.profile)
            row = {"depth": depth, "weight_bytes": weights, "onnx_build_s": round(built, 1), **report}
            row["peak_rss_over_weights"] = round(report["peak_rss_bytes"] / weights, 2)
            rows.append(row)
            phases = "  ".join(f"{k} {v:6.2f} s" for k, v in report["phases_s"].items())
            print(
                f"depth {depth:3d}: {weights / 1e6:7.1f} MB weights  {phases}  total {report['total_s']:6.2f} s  "
                f"peak RSS {report['peak_rss_bytes'] / 1e6:7.1f} MB ({row['peak_rss_over_weights']:.2f}x weights)",
                flush=True,
            )
            print(
                f"           RSS: baseline {report['baseline_rss_bytes'] / 1e6:.0f} MB, after import "
                f"{report['rss_after_import_bytes'] / 1e6:.0f} MB, peak by phase "
                f"{ {k: round(v / 1e6) for k, v in report['peak_rss_after_phase_bytes'].items()} } MB",
                flush=True,
            )
            for suffix in (".sir", ".npz"):
                (work / f"vit_b_{depth}{suffix}").unlink(missing_ok=True)
            if not args.workdir:
                onnx_path.unlink()
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
