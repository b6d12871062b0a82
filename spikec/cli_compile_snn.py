"""``spikec compile`` of a model that is already an SNN (a netx ``.net``, a Loihi-dialect ``.sir``): no conversion.

Without ``--calib`` the model is taken as it is: the target's pipeline lowers it (``Target.lower``),
``legalize`` checks it, and ``emit`` writes the artifact, all into a temporary directory renamed to ``-o``.
``--timesteps`` becomes the artifact's ``steps`` (what ``spikec verify`` runs by default); ``--inputs X.npy``
(T, N, *shape) is stored as ``inputs.npz``, verify's default inputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from spikec import __version__
from spikec.errors import InputError, SpikecError


def compile_snn(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.cli_convert import REPORT, load_ann, replace_directory, sample_feeds
    from spikec.plugins import load_target

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise SpikecError(f"-o {out}: exists and is not a directory")
    if args.timesteps < 1:
        raise SpikecError(f"--timesteps must be >= 1, got {args.timesteps}")
    target = load_target(args.target)
    graph = load_ann(args)
    if not graph.is_spiking:
        raise InputError(f"{args.model} is an ANN (no spiking nodes): pass --calib X.npy to convert it to an SNN")
    feeds = sample_feeds(graph, args.inputs)
    lowered = target.lower(graph, args.pass_option)
    lowered = dataclasses.replace(lowered, graph=target.legalize(lowered.graph))
    pipeline = [dict(step) for step in lowered.log]
    files: list[str] = []

    def build(tmp: Path) -> None:
        artifact = target.emit(lowered, tmp)
        if feeds:
            np.savez_compressed(tmp / "inputs.npz", **feeds)  # type: ignore[arg-type]
        path = tmp / REPORT
        emitted = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        report = {
            "model": args.model,
            "target": target.name,
            "spikec_version": __version__,
            "method": "snn",
            "steps": args.timesteps,
            "pipeline": pipeline,
            **emitted,
        }
        report["files"] = sorted({*artifact.files, REPORT, *(["inputs.npz"] if feeds else [])})
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        files.extend(report["files"])

    replace_directory(out, build)
    return {
        "model": args.model,
        "target": target.name,
        "method": "snn",
        "output": str(out),
        "files": files,
        "steps": args.timesteps,
        "pipeline": pipeline,
        "sample_inputs": int(next(iter(feeds.values())).shape[1]) if feeds else 0,
    }


def print_compile_snn(r: dict[str, Any]) -> None:
    print(f"compiled {r['model']} for {r['target']} -> {r['output']} ({', '.join(r['files'])}), T={r['steps']}")
    for step in r["pipeline"]:
        reason = f" ({step['reason']})" if "reason" in step else ""
        print(f"  pass {step['pass']}: {step['status']}{reason}")
