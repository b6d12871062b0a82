"""Merge results/peers.json and results/spikec.json into the Markdown tables of the README.

python benchmarks/ann2snn/table.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TIMESTEPS = (4, 8, 16, 32, 64)


def rows() -> tuple[dict[tuple[str, str], dict[int, float]], dict[str, float], dict[str, Any]]:
    table: dict[tuple[str, str], dict[int, float]] = {}
    spikec = json.loads((RESULTS / "spikec.json").read_text())
    peers = json.loads((RESULTS / "peers.json").read_text())
    ann = {r["model"]: r["accuracy"] for r in peers["ann"]}
    for r in spikec["results"]:
        table[(r["model"], r["peer"])] = {int(t): a for t, a in r["accuracy"].items()}
        ann.setdefault(r["model"], r["ann_accuracy"])
    for r in peers["results"]:
        if r.get("accuracy") is not None:
            table.setdefault((r["model"], r["peer"]), {})[int(r["T"])] = r["accuracy"]
    return table, ann, spikec


def main() -> None:
    table, ann, spikec = rows()
    for model in dict.fromkeys(m for m, _ in table):
        print(f"\n**{model}** — ANN {100 * ann[model]:.2f}% on the 9,000 evaluation images\n")
        print("| converter | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |")
        print("|---|" + "---|" * len(TIMESTEPS))
        entries = {peer: accs for (m, peer), accs in table.items() if m == model}
        best_peer = {t: max((a.get(t, 0.0) for p, a in entries.items() if not p.startswith("spikec")), default=0.0)
                     for t in TIMESTEPS}  # fmt: skip
        for peer, accs in entries.items():
            cells = []
            for t in TIMESTEPS:
                if t not in accs:
                    cells.append("–")
                    continue
                mark = "**" if peer.startswith("spikec") and accs[t] >= best_peer[t] else ""
                cells.append(f"{mark}{100 * accs[t]:.2f}{mark}")
            print(f"| {peer} | " + " | ".join(cells) + " |")
    for r in spikec["results"]:
        worst = r.get("layers_at_worst_T")
        if not worst:
            continue
        print(f"\nPer-layer drift, {r['model']}, default spikec conversion at T={worst['T']} "
              f"(SNN {100 * worst['accuracy']:.2f}%):\n")  # fmt: skip
        print("| layer | origin | drift (corr.) | rel. error | spike rate |")
        print("|---|---|---|---|---|")
        for layer in worst["layers"]:
            numbers = f"{layer['drift']:.3f} | {layer['error']:.3f} | {layer['rate']:.3f}"
            print(f"| {layer['name']} | {layer['origin']} | {numbers} |")


if __name__ == "__main__":
    main()
