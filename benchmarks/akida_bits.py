"""Accuracy of the Akida target's integer models against the float ANNs, per IP version and bit width.

Run from the repository root (about 12 minutes on 2 cores)::

    .venv/bin/python benchmarks/akida_bits.py [--json OUT.json] [--only mnist-conv|sinabs]

For the ONNX zoo's ``mnist-conv`` and sinabs' MNIST net (``../shared/data``), with the commands a user types:
``spikec compile MODEL --target akida --calib C.npy -o DIR --pass-option quantize.ip_version=V --pass-option
quantize.weight_bits=W --pass-option quantize.activation_bits=A``, then ``spikec verify DIR --inputs X.npy --labels
Y.npy --json``. MNIST test images 0..499 calibrate; images 500..9999 (9,500) are scored and checked: every output
integer of akida's engine against spikec's interpreter (``mismatches``), the accuracy of the float ANN (ann.sir) and
of the engine. It prints one row per model and bit width and the mapping on the version's default device.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
N_CALIB = 500
#: (IP version, weight bits, activation bits)
WIDTHS = ((2, 8, 8), (2, 4, 4), (1, 4, 4), (1, 4, 2), (1, 2, 4), (1, 2, 2), (1, 1, 1))


def spikec(*argv: str) -> dict:
    """``spikec ARGV --json`` in a subprocess: its JSON result (with ``code``)."""
    done = subprocess.run([sys.executable, "-m", "spikec", *argv, "--json"], capture_output=True, text=True)
    result = json.loads(done.stdout) if done.stdout.strip() else {"error": done.stderr[-2000:]}
    return result | {"code": done.returncode}


def models(work: Path) -> dict[str, Path]:
    """The two trained models as files spikec reads (sinabs' state_dict imported to .sir once)."""
    sinabs = work / "sinabs.sir"
    arch = str(REPO / "examples" / "sinabs_mnist.py") + ":build"
    params = str(DATA / "sinabs" / "mnist_params.pt")
    result = spikec("import", params, "--arch", arch, "--input-shape", "1,28,28", "-o", str(sinabs))
    if result["code"]:
        raise SystemExit(f"spikec import failed: {result}")
    return {"mnist-conv": DATA / "onnx" / "mnist-conv" / "model.onnx", "sinabs": sinabs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--only", choices=("mnist-conv", "sinabs"))
    args = parser.parse_args()
    from spikec.data.mnist import load_mnist

    images, labels = load_mnist(DATA / "mnist")
    rows = []
    with tempfile.TemporaryDirectory(prefix="akida-bits-") as tmp:
        work = Path(tmp)
        x = images[:, None].astype(np.float32)
        np.save(work / "calib.npy", x[:N_CALIB])
        np.save(work / "score.npy", x[N_CALIB:])
        np.save(work / "labels.npy", labels[N_CALIB:].astype(np.int64))
        for name, path in models(work).items():
            if args.only and name != args.only:
                continue
            for version, wbits, abits in WIDTHS:
                out = work / f"{name}-v{version}-w{wbits}a{abits}"
                options = [f"quantize.ip_version={version}", f"quantize.weight_bits={wbits}",
                           f"quantize.activation_bits={abits}"]  # fmt: skip
                argv = ["compile", str(path), "--target", "akida", "--calib", str(work / "calib.npy"), "-o", str(out)]
                compiled = spikec(*argv, *[a for o in options for a in ("--pass-option", o)])
                if compiled["code"]:
                    raise SystemExit(f"{name} v{version} w{wbits} a{abits}: compile failed: {compiled}")
                scored = ("--inputs", str(work / "score.npy"), "--labels", str(work / "labels.npy"))
                v = spikec("verify", str(out), *scored)
                mapping = v["mapping"]
                row = {
                    "model": name, "ip_version": version, "weight_bits": wbits, "activation_bits": abits,
                    "images": v["samples"], "values": v["compared"], "mismatches": v["mismatches"],
                    "ann": v["accuracy"]["ann"], "akida": v["accuracy"]["akida"], "loss_pp": v["loss_pp"],
                    "ann_agreement": v["ann_agreement"], "device": mapping["device"], "mapped": mapping["mapped"],
                    "nps": mapping.get("nps"), "program_bytes": mapping.get("program_bytes"),
                }  # fmt: skip
                rows.append(row)
                print(
                    f"{name:<10} v{version} w{wbits} a{abits}: {row['mismatches']} mismatches in {row['values']:,} "
                    f"values; ANN {100 * row['ann']:.2f} %, Akida {100 * row['akida']:.2f} % "
                    f"({row['loss_pp']:+.2f} pp lost); maps on {row['device']}: {row['mapped']}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
