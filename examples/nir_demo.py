"""Import the bundled NIR models (examples/models/), run them in the reference interpreter, summarise.

    python examples/nir_demo.py

Everything goes through the `spikec` command line, as a user or a build pipeline would call it.
Outputs land in out/nir_demo/. (`make demo` runs examples/demo.py: a trained MNIST CNN on every target.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "out" / "nir_demo"


def spikec(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "spikec", *args, "--json"], capture_output=True, text=True)
    report = json.loads(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"spikec {' '.join(args)} failed: {report.get('error')}")
    return report


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    models = HERE / "models"

    print("1) A single LIF neuron (Norse export) against the analytic solution")
    exact = np.loadtxt(models / "lif_exact.csv", delimiter=",")
    np.save(OUT / "lif_input.npy", exact[:, 0])
    r = spikec(
        "run", str(models / "lif_norse.nir"), "--input", str(OUT / "lif_input.npy"), "--steps", "1000", "--trace"
    )
    print(f"   spikec spike steps:   {r['outputs']['output']['spike_steps']}")
    print(f"   analytic spike steps: {np.nonzero(exact[:, 2])[0].tolist()}")

    print("2) The Sinabs N-MNIST spiking CNN: import to .sir, run 20 steps on random events")
    imp = spikec("import", str(models / "cnn_sinabs.nir"), "-o", str(OUT / "cnn_sinabs.sir"))
    print(f"   {imp['nodes']} nodes {imp['kinds']} -> {imp['output']}")
    events = (np.random.default_rng(0).uniform(size=(20, 4, 2, 34, 34)) < 0.1).astype(np.float32)
    np.save(OUT / "events.npy", events)
    run = spikec(
        "run",
        str(OUT / "cnn_sinabs.sir"),
        "--input",
        str(OUT / "events.npy"),
        "--trace",
        "-o",
        str(OUT / "cnn_out.npz"),
    )
    for name, entry in run["traces"].items():
        if entry.get("binary") and "." not in name and name != "input":
            print(f"   layer {name:>3}: spike rate {entry['rate']:.4f}")
    counts = np.load(OUT / "cnn_out.npz")["output"].sum(axis=0)
    print(f"   output spike counts per sample: {counts.astype(int).tolist()}")
    print(f"   predicted classes: {counts.argmax(axis=1).tolist()}")
    print(f"done: artifacts in {OUT}")


if __name__ == "__main__":
    main()
