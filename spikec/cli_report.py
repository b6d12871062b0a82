"""``spikec report DIR``: draw ``DIR/report.html`` again from ``DIR/report.json`` (what ``spikec compile`` wrote).

The report is read as untrusted (``spikec.safe_read.read_json``), refused unless it is of the schema version this
spikec renders (``spikec.report.schema.check_report``: the version found and the one expected are named), and the
page written atomically (``spikec.fileio``): a folder that cannot be written is one ``OutputError`` naming the
file, and nothing is left half-written. ``-o FILE`` writes the page elsewhere. The result summarises the
report's metrics and energy estimates (``--json`` prints it whole).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikec.errors import InputError


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", metavar="DIR", help="artifact directory written by spikec compile (holds report.json)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the page here (default DIR/report.html)")


def report_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.artifact import REPORT, REPORT_HTML
    from spikec.fileio import refuse_overwrite, write_text
    from spikec.report.html import render_html
    from spikec.report.schema import check_report
    from spikec.safe_read import read_json

    directory = Path(args.directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory; give the folder spikec compile -o wrote")
    path = directory / REPORT
    if not path.exists() and not path.is_symlink():
        raise InputError(
            f"{directory}: holds no report.json, so no report to draw; make one with "
            f"`spikec compile MODEL --target TARGET --timesteps T -o {directory}`"
        )
    report = check_report(read_json(path, expect="spikec report.json"), path)
    out = Path(args.output) if args.output else directory / REPORT_HTML
    refuse_overwrite("-o", [out], [path])
    write_text(out, render_html(report))
    metrics, energy = report["metrics"], report["energy"]
    return {
        "report": str(out),
        "model": report["model"],
        "target": report["target"],
        "method": report["method"],
        "steps": report["steps"],
        "schema_version": report["schema_version"],
        "metrics": {k: v for k, v in metrics.items() if k not in ("synapse_layers", "neuron_layers")},
        "energy": {
            "estimate": True,
            "literature_45nm_picojoules": energy["literature_45nm"]["picojoules"],
            "ann_45nm_picojoules": energy["literature_45nm"]["ann_picojoules"],
            "analog_in_memory_picojoules": (energy.get("analog_in_memory") or {}).get("picojoules"),
            "target_picojoules": energy["target"]["picojoules"],
            "target_published": energy["target"]["published"],
        },
        **_advice(report),
    }


def _advice(report: dict[str, Any]) -> dict[str, Any]:
    """The time-step advice in brief, when the report holds it."""
    advice = report.get("timestep_advice")
    if not advice:
        return {}
    measured = advice.get("measured") or {}
    return {
        "timestep_advice": {
            "timesteps": advice["timesteps"],
            "compiled_timesteps": advice["compiled_timesteps"],
            "measured_timesteps_within_tolerance": measured.get("timesteps_within_tolerance"),
        }
    }


def print_report(r: dict[str, Any]) -> None:
    m, e = r["metrics"], r["energy"]
    ops = m["synaptic_operations"]
    target = (
        f"{e['target_picojoules']:,.0f} pJ from {r['target']}'s published figures"
        if e["target_picojoules"] is not None
        else f"no public figure for {r['target']}"
    )
    analog = e["analog_in_memory_picojoules"]
    aimc = "" if analog is None else f"{analog:,.0f} pJ on analog in-memory crossbars; "
    print(f"wrote {r['report']}: {r['model']} for {r['target']} ({r['method']}, T={r['steps']})")
    print(
        f"  per sample: {ops['effective_macs']:,.0f} MACs + {ops['effective_acs']:,.0f} ACs of {ops['dense']:,.0f} "
        f"dense ops, {m['membrane_updates']:,.0f} membrane updates; footprint {m['footprint_bytes']:,} bytes"
    )
    print(
        f"  energy (estimates): {e['literature_45nm_picojoules']:,.0f} pJ at 45 nm (ANN "
        f"{e['ann_45nm_picojoules']:,.0f} pJ); {aimc}{target}"
    )
    advice = r.get("timestep_advice")
    if advice:
        found = advice["measured_timesteps_within_tolerance"]
        shown = "" if found is None else f"; measured: T = {found} within 1 pp of the ANN"
        advised, compiled = advice["timesteps"], advice["compiled_timesteps"]
        print(f"  time steps: advised T = {advised}, compiled with T = {compiled}{shown}")
