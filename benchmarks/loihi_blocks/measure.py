"""Spiking-transformer blocks on Loihi 2: compile, then verify in Lava, for growing block sizes.

Per block (Spikformer, Spikingformer, Spike-driven Transformer; random Linear+BN weights): compile time,
neurons (and how many are attention coincidences), cores against the lower bound, Lava's run time against
the interpreter's for the same samples and steps, and the mismatches (0 expected). Prints a table.

.venv/bin/python benchmarks/loihi_blocks/measure.py [--sizes 4x8x2,8x16x2] [--steps 32] [--samples 2]
    [--json benchmarks/loihi_blocks/results/blocks.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from spikec.blocks import BlockWeights, spike_driven_block, spikformer_block
from spikec.cli import main as spikec
from spikec.ir import Graph
from spikec.text import save_sir

BLOCKS = {
    "spikformer": lambda w, n, h: spikformer_block(w, tokens=n, heads=h, scale=0.5),
    "spikingformer": lambda w, n, h: spike_driven_block(w, tokens=n, heads=h, attention="ssa", scale=0.5),
    "sdt": lambda w, n, h: spike_driven_block(w, tokens=n, heads=h, attention="sdsa"),
}
INPUT_MAX = {"spikformer": 1, "spikingformer": 3, "sdt": 3}  # spike input, or graded 0..3 (membrane shortcut)


def _cli(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = spikec([*argv, "--json"])
    result = json.loads(out.getvalue())
    if code != 0:
        raise SystemExit(f"spikec {argv[0]} failed: {result.get('error')}")
    return result


def measure(kind: str, tokens: int, dim: int, heads: int, steps: int, samples: int, work: Path) -> dict:
    rng = np.random.default_rng(0)
    block: Graph = BLOCKS[kind](BlockWeights.random(rng, dim, 2 * dim), tokens, heads)
    save_sir(block, work / "block.sir")
    high = INPUT_MAX[kind]
    x = (
        rng.integers(0, high + 1, size=(steps, samples, tokens, dim))
        if high > 1
        else rng.random((steps, samples, tokens, dim)) < 0.3
    )
    np.save(work / "x.npy", x.astype(np.int64))
    start = time.perf_counter()
    _cli(["compile", str(work / "block.sir"), "--target", "loihi2", "--timesteps", str(steps), "--inputs",
          str(work / "x.npy"), "--pass-option", f"quantize.input_max={high}", "-o", str(work / "art")])  # fmt: skip
    compile_s = time.perf_counter() - start
    report = json.loads((work / "art" / "report.json").read_text())
    core_map = json.loads((work / "art" / "core_map.json").read_text())
    verified = _cli(["verify", str(work / "art")])
    layers = report["artifact"]["layers"]  # the target's report on its artifact
    return {
        "block": kind, "tokens": tokens, "dim": dim, "heads": heads, "steps": steps, "samples": samples,
        "neurons": sum(row["neurons"] for row in layers),
        "coincidence_neurons": sum(row["neurons"] for row in layers if row["name"].endswith("_coincide")),
        "synapses": sum(row["synapses"] for row in layers), "compile_s": round(compile_s, 2),
        "cores": core_map["cores_used"], "lower_bound": core_map["lower_bound"],
        "lava_run_s": verified["timing"]["lava_run_s"], "interp_s": verified["timing"]["interp_s"],
        "compared": verified["compared"], "mismatches": verified["mismatches"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="4x8x2,8x16x2,16x16x2", help="tokens x dim x heads, comma-separated")
    parser.add_argument("--blocks", default=",".join(BLOCKS))
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    header = f"{'block':<14}{'N x D / h':>11}{'neurons':>9}{'coinc.':>8}{'cores':>7}{'bound':>7}"
    print(header + f"{'compile':>9}{'Lava':>8}{'interp':>8}{'ratio':>7}{'mismatch':>10}")
    for kind in args.blocks.split(","):
        for size in args.sizes.split(","):
            tokens, dim, heads = (int(v) for v in size.split("x"))
            with tempfile.TemporaryDirectory() as tmp:
                row = measure(kind, tokens, dim, heads, args.steps, args.samples, Path(tmp))
            rows.append(row)
            ratio = row["lava_run_s"] / max(row["interp_s"], 1e-9)
            print(f"{kind:<14}{f'{tokens}x{dim}/{heads}':>11}{row['neurons']:>9}{row['coincidence_neurons']:>8}"
                  f"{row['cores']:>7}{row['lower_bound']:>7}{row['compile_s']:>8.1f}s{row['lava_run_s']:>7.1f}s"
                  f"{row['interp_s']:>7.2f}s{ratio:>6.0f}x{row['mismatches']:>10}", flush=True)  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
