"""The ``partition`` command (registered in spikec.cli): place an SNN's neurons on a target's cores.

``spikec partition MODEL --target TARGET [--chips N] [--weight-bits B] [--search N] [-o core_map.json] [--json]``
prints cores used against the lower bound, the spike traffic and per-layer placements; ``-o``
writes the full core map as JSON (atomically). A model that does not fit exits 1 with the
``DoesNotFit`` message (resource, layer, amount, fix). ``--target`` is required: the placement follows the
target's resource model (``Target.resources``); the error lists the installed targets that have one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spikec.cli_args import add_model_args, at_least, installed_targets, model_options, target_with
from spikec.errors import UsageError
from spikec.fileio import model_files, refuse_overwrite, write_text


def partition_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.models import load_model
    from spikec.passes.partition import partition_graph

    if args.target is None:
        having = ", ".join(installed_targets("resource model")) or "none is installed"
        raise UsageError(f"spikec partition needs --target NAME, whose resource model places the neurons: {having}")
    target_with(args.target, "resource model", "--target")
    for option, value in (("--chips", args.chips), ("--weight-bits", args.weight_bits), ("--search", args.search)):
        at_least(option, value, 0)  # 0: the resource file's chips, the target's bits, no search
    if args.output:
        refuse_overwrite("-o", [args.output], model_files(args.model))
    graph = load_model(Path(args.model), **model_options(args))
    core_map = partition_graph(graph, args.target, chips=args.chips, weight_bits=args.weight_bits, search=args.search)
    data = core_map.to_json()
    if args.output:
        write_text(args.output, json.dumps(data, indent=2) + "\n")
    return {"model": args.model, "output": args.output, "summary": core_map.summary(), "core_map": data}


def print_partition(r: dict[str, Any]) -> None:
    print(r["summary"])
    if r["output"]:
        print(f"  core map written to {r['output']}")


def add_partition_args(p: argparse.ArgumentParser) -> None:
    add_model_args(p, "the spiking model (.sir, .nir, ...)")
    having = ", ".join(installed_targets("resource model")) or "none installed"
    p.add_argument("--target", help=f"the target whose resource model places the neurons (required: {having})")
    p.add_argument("--chips", type=int, default=0, help="chips in the system (default: the resource file's)")
    p.add_argument("--weight-bits", type=int, default=0, help="bits per weight (default: the target's)")
    p.add_argument(
        "--search",
        type=int,
        default=0,
        metavar="N",
        help="sweeps of the joint tiling search (fewer cores, seconds to tens of seconds on large models; default 0)",
    )
    p.add_argument("-o", "--output", metavar="CORE_MAP.json", help="write the full core map as JSON")
