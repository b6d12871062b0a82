"""The exact ANN→SNN path on the trained MNIST ViT: float ANN, QANN and SNN accuracy per T.

    .venv/bin/python benchmarks/vit/exact_snn.py [--model vit_mnist.onnx] [--levels 16 32]
        [--timesteps 4 8 16 32] [--max-spikes 1] [--calib 512] [--backend torch --device cuda]

Calibrates on ``--calib`` images drawn (seeded) from the first 8,000 MNIST test images (the ViT's
training split) and evaluates on the last 2,000; pixels are floats in [0, 1], shape (1, 28, 28).
One SNN run of max(T) steps gives the accuracy at every T (the SNN is causal). Prints a table and,
with ``--json FILE``, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from spikec.compare_exact import compare_exact
from spikec.convert_exact import convert_exact
from spikec.data.mnist import load_mnist
from spikec.models import load_model

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODELS = [REPO / "benchmarks" / "vit" / "vit_mnist.onnx", Path("/work/scratch/vit_mnist.onnx")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="the trained ViT (.onnx); default: benchmarks/vit or /work/scratch")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    p.add_argument("--levels", type=int, nargs="+", default=[16])
    p.add_argument("--max-spikes", type=int, nargs="+", default=[1])
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument(
        "--no-inputs", action="store_true", help="quantize only after non-additive nodes, not their weighted inputs"
    )
    p.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--calib", type=int, default=512, help="calibration images from the first 8,000")
    p.add_argument("--eval", type=int, default=2000, help="evaluate on the last N test images")
    p.add_argument("--backend", default="torch")
    p.add_argument("--device", default=None)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    model = args.model or next((m for m in DEFAULT_MODELS if m.is_file()), None)
    if model is None or not model.is_file():
        print(f"no model: pass --model (looked at {[str(m) for m in DEFAULT_MODELS]})", file=sys.stderr)
        return 1
    images, labels = load_mnist(args.data)
    x = images.astype(np.float64)[:, None] / 255.0
    calib = x[np.random.default_rng(0).choice(8000, args.calib, replace=False)]
    test_x, test_y = x[-args.eval :], labels[-args.eval :].astype(np.int64)
    graph = load_model(model)
    horizon = max(args.timesteps)
    rows = []
    for levels in args.levels:
        for k in args.max_spikes:
            start = time.perf_counter()
            snn, report = convert_exact(
                graph, calib, levels=levels, max_spikes=k, percentile=args.percentile, inputs=not args.no_inputs
            )
            converted = time.perf_counter() - start
            result = compare_exact(
                graph, snn, report, test_x, test_y, timesteps=horizon, backend=args.backend, device=args.device,
                batch_size=args.batch_size, at=args.timesteps,
            )  # fmt: skip
            rows.append(
                {
                    "levels": levels,
                    "quantize_inputs": not args.no_inputs,
                    "max_spikes": k,
                    "ann": result.ann_accuracy,
                    "qann": result.qann_accuracy,
                    "snn": {t: result.snn_by_timesteps[t] for t in args.timesteps},
                    "equal": {t: result.equal_by_timesteps.get(t) for t in args.timesteps},
                    "settle_bound": report.settle_bound,
                    "neurons": len(report.neurons),
                    "host_nodes": len(report.host_nodes),
                    "convert_s": round(converted, 2),
                    "eval_s": round(time.perf_counter() - start - converted, 1),
                }
            )
            _print(rows[-1], args.timesteps)
    if args.json:
        args.json.write_text(json.dumps({"model": str(model), "samples": len(test_y), "rows": rows}, indent=2))
    return 0


def _print(row: dict, steps: list[int]) -> None:
    head = "  ".join(f"T={t:<3}" for t in steps)
    print(f"\nL={row['levels']} max_spikes={row['max_spikes']}: {row['neurons']} ST-BIF layers, "
          f"{row['host_nodes']} host (Σ→f→Δ) nodes, settling bound T*={row['settle_bound']}, "
          f"convert {row['convert_s']} s, eval {row['eval_s']} s")  # fmt: skip
    print(f"  {'':<22}{head}")
    print(f"  float ANN {100 * row['ann']:6.2f}%   QANN {100 * row['qann']:6.2f}%")
    print(f"  {'SNN accuracy %':<22}" + "  ".join(f"{100 * row['snn'][t]:<5.2f}" for t in steps))
    print(f"  {'SNN - ANN (pp)':<22}" + "  ".join(f"{100 * (row['snn'][t] - row['ann']):<+5.2f}" for t in steps))
    print(f"  {'samples = QANN %':<22}" + "  ".join(f"{100 * row['equal'][t]:<5.1f}" for t in steps))


if __name__ == "__main__":
    sys.exit(main())
