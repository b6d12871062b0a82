"""The ``check`` command: verify a model and, with ``--binary-spikes``, run the binary-spike check.

``spikec check MODEL --binary-spikes [--inputs binary] [--allow-ternary] [--json]`` exits 1 when
some synaptic op reads non-spike values or some node is not event-driven; ``--json`` lists every
value's class and every offender (also on failure).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikec.cli_args import add_model_args, model_options
from spikec.spike_check import NotBinarySpikes, SpikeClass, check_spikes


def add_check_args(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument(
        "--binary-spikes",
        action="store_true",
        help="prove which values are 0/1 spikes; fail on synaptic ops that read anything else",
    )
    p.add_argument(
        "--inputs",
        choices=[c.label for c in SpikeClass],
        default="real",
        help="how graph inputs are fed (binary/ternary after encode-input{mode=poisson}; default real)",
    )
    p.add_argument("--allow-ternary", action="store_true", help="accept -1/0/1 spikes (bipolar IF) as events")


def check_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.models import load_model

    graph = load_model(Path(args.model), **model_options(args))  # loading verifies the graph
    result: dict[str, Any] = {"model": args.model, "nodes": len(graph.nodes), "verified": True}
    if args.binary_spikes:
        report = check_spikes(graph, inputs=args.inputs, allow_ternary=args.allow_ternary)
        result |= report.to_dict()
        if not report.ok:
            err = NotBinarySpikes(f"{args.model}: {report.summary()}", report)
            err.details = {"model": args.model, **err.details}
            raise err
    return result


def print_check(r: dict[str, Any]) -> None:
    print(f"{r['model']}: {r['nodes']} nodes, verified")
    if "classes" in r:
        counts: dict[str, int] = {}
        for label in r["classes"].values():
            counts[label] = counts.get(label, 0) + 1
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"  binary spikes: every synaptic op reads spikes (values: {shown})")
