"""Cores used against the lower bounds on the models of models.py (the table of targets/loihi2/docs/loihi2-mapping.md).

.venv/bin/python benchmarks/partition/measure.py [NAME ...] [--search N] [--json results/partition.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import CHIPS, MODELS

from spikec.passes.partition import partition_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=list(MODELS))
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--search", type=int, default=0, help="sweeps of the joint tiling search")
    args = parser.parse_args()
    rows = []
    for name in args.names:
        graph = MODELS[name]()
        start = time.perf_counter()
        cm = partition_graph(graph, "loihi2", chips=CHIPS.get(name, 0), search=args.search)
        seconds = time.perf_counter() - start
        row = {
            "model": name,
            "search": args.search,
            "neurons": sum(math.prod(s) for s in cm.shapes.values()),
            "cores": cm.cores_used,
            "chips": cm.chips_used,
            "lower_bound": cm.lower_bound,
            "tile_bound": cm.tile_bound,
            "proven_bound": cm.proven_bound,
            "binding": cm.binding_resource,
            "over_lower_percent": round(100 * (cm.cores_used / cm.lower_bound - 1), 1),
            "over_tile_percent": round(100 * cm.over_bound, 1),
            "over_proven_percent": round(100 * (cm.cores_used / cm.proven_bound - 1), 1),
            "inter_core_traffic": cm.traffic.inter_core,
            "seconds": round(seconds, 2),
        }
        rows.append(row)
        print(
            f"| {name} | {row['neurons']:,} | {row['cores']} | {row['chips']} | {row['lower_bound']} | "
            f"{row['tile_bound']} ({row['binding']}) | {row['proven_bound']} | {row['over_lower_percent']:+.1f} % | "
            f"{row['over_tile_percent']:+.1f} % | {row['over_proven_percent']:+.1f} % | {row['seconds']:.1f} s |",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
