"""report.html: one static page drawn from report.json — no network, no scripts, plots embedded as PNG ``data:``
URIs (``spikec.report.plots``).

Sections: the compile (model, target, method, T), the NeuroBench metrics, spike rates per layer, ANN-vs-SNN drift per
layer (when the report holds it: ``spikec eval`` measures it), the time-step advice and, when measured (``spikec
timesteps --report DIR``), the accuracy against T with the advised T marked, synaptic operations per layer, cores per
layer (targets that place neurons), the energy estimates with their sources, and the conversion settings. Every value
from the report is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import PurePath
from typing import Any

from spikec.report import plots

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.n { text-align: right; }
.note { color: #555; font-size: 0.9em; } .estimate { background: #fff6d5; padding: 0.5em; }
"""


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return escape(str(value))
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f"<td class='n'>{_number(value)}</td>" if numeric else f"<td>{_number(value)}</td>"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plot(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str, log: bool = False
) -> str:
    if not labels:
        return ""
    if not plots.available():
        return f'<p class="note">No plot: matplotlib is not installed ({escape(plots.INSTALL)}).</p>'
    uri = plots.bars(labels, series, ylabel=ylabel, title=title, log=log)
    return f'<p><img alt="{escape(title)}" src="{uri}"></p>'


def _summary(r: Mapping[str, Any]) -> str:
    m = r["metrics"]
    ops = m["synaptic_operations"]
    rows = [
        ("samples measured", m["samples"]),
        ("time steps per sample", m["timesteps"]),
        ("footprint (bytes, as spikec stores the parameters)", m["footprint_bytes"]),
        ("parameters", m["parameters"]),
        ("connection sparsity", m["connection_sparsity"]),
        ("activation sparsity (spiking layers)", m["activation_sparsity"]),
        ("synaptic operations per sample: dense", ops["dense"]),
        ("synaptic operations per sample: effective MACs", ops["effective_macs"]),
        ("synaptic operations per sample: effective ACs", ops["effective_acs"]),
        ("membrane updates per sample", m["membrane_updates"]),
    ]
    note = (
        "NeuroBench's definitions (docs/report-schema.md), measured in spikec's interpreter on the SNN before the "
        "target's pipeline."
    )
    if not m["samples"]:
        note += " No samples were given (compile --calib or --inputs): only the static metrics are filled."
    return f"<h2>Metrics</h2><p class='note'>{escape(note)}</p>" + _table(["metric", "value"], rows)


def _rates(r: Mapping[str, Any]) -> str:
    layers = [n for n in r["metrics"]["neuron_layers"] if n["spiking"] and n["activation_sparsity"] is not None]
    names = [n["name"] for n in layers]
    active = [1.0 - n["activation_sparsity"] for n in layers]
    conversion = {layer["name"]: layer.get("spike_rate") for layer in r.get("layers", []) if isinstance(layer, dict)}
    rows = [
        (n["name"], n["kind"], n["neurons"], a, conversion.get(n["name"]), n["membrane_updates"])
        for n, a in zip(layers, active, strict=True)
    ]
    header = [
        "layer",
        "kind",
        "neurons",
        "nonzero outputs per neuron-step",
        "spike rate (conversion)",
        "membrane updates per sample",
    ]
    if not rows:
        return "<h2>Spike rates per layer</h2><p class='note'>No spiking layer was measured.</p>"
    plot = _plot("Spike rate per layer", names, {"spike rate": active}, "spikes per neuron per step")
    return "<h2>Spike rates per layer</h2>" + plot + _table(header, rows)


def _drift(r: Mapping[str, Any]) -> str:
    drift = r.get("drift")
    head = "<h2>ANN-vs-SNN drift per layer</h2>"
    if not drift:
        return head + (
            "<p class='note'>Not in this report: only a conversion that keeps its balanced ANN (the rate methods) "
            "with calibration samples measures it; <code>spikec eval MODEL --data X.npy --labels Y.npy</code> "
            "measures it on labelled data.</p>"
        )
    note = (
        "<p class='note'>Per converted layer, on the metric samples: the correlation of the balanced ANN's "
        "activation with the SNN's spike count / T (1 is a perfect match) and the relative error "
        "Σ|a − r| / Σ|a| (docs/conversion.md).</p>"
    )
    shown = [d for d in drift if d["drift"] is not None]
    plot = _plot("Drift per layer", [d["name"] for d in shown], {"correlation": [d["drift"] for d in shown]}, "drift")
    rows = [(d["name"], d["drift"], d["error"], d["rate"]) for d in drift]
    return head + note + plot + _table(["layer", "correlation", "relative error", "spike rate"], rows)


def _timesteps(r: Mapping[str, Any]) -> str:
    advice = r.get("timestep_advice")
    head = "<h2>Time steps: advice and accuracy against T</h2>"
    if not advice:
        return head + (
            "<p class='note'>Not in this report: a rate-coded compile (<code>--method percentile</code>, "
            "<code>max</code> or <code>binary</code>) with <code>--calib</code> writes the advice; "
            "<code>spikec timesteps MODEL --calib C.npy --data X.npy --labels Y.npy --report DIR</code> adds the "
            "accuracy against T (docs/timesteps.md).</p>"
        )
    rule, calibration = advice["rule"], advice["calibration"]
    low, high = rule["C_interval"]
    facts = (
        f"<p>Advised <b>T = {_number(advice['timesteps'])}</b> (the largest layer's: "
        f"{escape(advice['limiting_layer'])}); compiled with T = {_number(advice['compiled_timesteps'])}. Per layer "
        f"T = {escape(rule['T'])} with C = {_number(rule['C'])} (95 % interval {_number(low)}–{_number(high)}; "
        f"{escape(rule['source'])}), d_eff from {_number(calibration['samples'])} calibration samples.</p>"
        f"<p class='estimate'><b>Assumption</b>: {escape(rule['assumption'])}.</p>"
        f"<p class='note'>Bound: |rate·θ − mean input| ≤ {escape(advice['bound']['epsilon'])}, "
        f"init = {_number(advice['bound']['init'])}: the error one layer adds on its own at the advised T.</p>"
    )
    rows = [
        (
            a["name"], a["features"], a["effective_dimension"], a["rule_timesteps"], a["timesteps"],
            "–".join(str(t) for t in a["timesteps_interval"]), a["threshold"], a["bound"],
        )
        for a in advice["layers"]
    ]  # fmt: skip
    header = ["layer", "features", "d_eff", "T* (unrounded)", "T", "T (C interval)", "threshold θ", "bound at T"]
    return head + facts + _table(header, rows) + _measured(advice)


def _measured(advice: Mapping[str, Any]) -> str:
    m = advice.get("measured")
    if not m:
        return (
            "<p class='note'>Accuracy against T not measured: <code>spikec timesteps MODEL --calib C.npy --data "
            "X.npy --labels Y.npy --report DIR</code> measures it and draws this page again.</p>"
        )
    by_t = {int(t): a for t, a in m["by_timesteps"].items()}
    found = m["timesteps_within_tolerance"]
    text = (
        f"<p>Measured on {_number(m['samples'])} labelled samples ({escape(m['source'])}): ANN "
        f"{100 * m['ann_accuracy']:.2f}%, SNN {100 * m['accuracy_at_predicted']:.2f}% at the advised T = "
        f"{_number(m['predicted_timesteps'])}; the first measured T within {_number(m['tolerance_pp'])} pp of the "
        + (
            f"ANN: <b>T = {_number(found)}</b>.</p>"
            if found is not None
            else f"ANN: none up to T = {_number(m['max_timesteps'])}.</p>"
        )
    )
    marks = {"advised": int(m["predicted_timesteps"]), "compiled": int(advice["compiled_timesteps"])}
    if marks["compiled"] == marks["advised"]:
        del marks["compiled"]
    plot = ""
    if not plots.available():
        plot = f'<p class="note">No plot: matplotlib is not installed ({escape(plots.INSTALL)}).</p>'
    elif by_t:
        title = "Accuracy against T"
        uri = plots.accuracy_against_timesteps(by_t, ann=m["ann_accuracy"], marks=marks, title=title)
        plot = f'<p><img alt="{title}" src="{uri}"></p>'
    table = _table(["T", "SNN accuracy (%)"], [(t, round(100 * a, 2)) for t, a in sorted(by_t.items())])
    return text + plot + table


def _operations(r: Mapping[str, Any]) -> str:
    layers = r["metrics"]["synapse_layers"]
    if not layers:
        return ""
    names = [s["name"] for s in layers]
    series = {
        "effective MACs": [s["effective_macs"] for s in layers],
        "effective ACs": [s["effective_acs"] for s in layers],
    }
    rows = [
        (
            s["name"],
            s["kind"],
            s["weights"],
            s["connection_sparsity"],
            s["dense"],
            s["effective_macs"],
            s["effective_acs"],
        )
        for s in layers
    ]
    header = ["layer", "kind", "weights", "connection sparsity", "dense ops", "effective MACs", "effective ACs"]
    plot = _plot("Synaptic operations per sample", names, series, "operations per sample")
    return "<h2>Synaptic operations per layer</h2>" + plot + _table(header, rows)


def _placement(r: Mapping[str, Any]) -> str:
    placed = r.get("placement")
    if not placed:
        return ""
    layers = placed["layers"]
    plot = _plot("Cores per layer", [p["name"] for p in layers], {"cores": [p["cores"] for p in layers]}, "cores")
    used = f"{_number(placed['cores_used'])} cores used in all (target {escape(r['target'])})"
    head = f"<h2>Cores per layer</h2><p>{used}.</p>"
    return head + plot + _table(["layer", "cores", "neurons"], [(p["name"], p["cores"], p["neurons"]) for p in layers])


def _analog(aimc: Mapping[str, Any] | None) -> str:
    """The analog in-memory estimate's paragraph (absent from reports written before it existed)."""
    if aimc is None:
        return ""
    return (
        f"<p>Analog in-memory model (weighted layers on crossbars at {aimc['e_mac_pj']:.3g} pJ per dense MAC, "
        f"attention digital): <b>{_number(aimc['picojoules'])} pJ</b> per sample, "
        f"{_number(aimc['analog_picojoules'])} pJ of it analog.</p>"
        f"<p class='note'>Source: {escape(aimc['source'])}.</p>"
    )


def _energy(r: Mapping[str, Any]) -> str:
    e = r["energy"]
    lit, chip = e["literature_45nm"], e["target"]
    parts = [
        "<h2>Energy (estimates)</h2>",
        f"<p class='estimate'><b>Estimates</b>, not measurements: {escape(e['note'])}. Unit: {escape(e['unit'])}.</p>",
        f"<p>45 nm MAC/AC model: <b>{_number(lit['picojoules'])} pJ</b> per sample for the SNN "
        f"(E_MAC {lit['e_mac_pj']} pJ, E_AC {lit['e_ac_pj']} pJ); the same network as an ANN, one pass of dense "
        f"MACs: {_number(lit['ann_picojoules'])} pJ.</p>",
        f"<p class='note'>Source: {escape(lit['source'])}.</p>",
        _plot(
            "45 nm estimate per layer",
            [x["name"] for x in lit["layers"]],
            {"pJ": [x["picojoules"] for x in lit["layers"]]},
            "pJ per sample",
        ),
        _table(
            ["layer", "MACs", "ACs", "pJ"], [(x["name"], x["macs"], x["acs"], x["picojoules"]) for x in lit["layers"]]
        ),
    ]
    parts.append(_analog(e.get("analog_in_memory")))
    if chip.get("published"):
        rows = [
            (
                what.replace("_", " "),
                f["picojoules"],
                f["chip"],
                f["source"] + (f" ({f['note']})" if f.get("note") else ""),
            )
            for what, f in chip["figures"].items()
        ]
        parts.append(
            f"<p>Target {escape(chip['name'])}'s published figures: <b>{_number(chip['picojoules'])} pJ</b> per "
            "sample.</p>" + _table(["per", "pJ", "chip", "source"], rows)
        )
    else:
        parts.append(
            f"<p>Target {escape(chip['name'])}: no estimate: {escape(str(chip.get('reason', 'no public figure')))}.</p>"
        )
    return "".join(parts)


def _settings(r: Mapping[str, Any]) -> str:
    settings = r.get("conversion_settings") or {}
    rows = [(key, str(s.get("value")), str(s.get("by", "")), str(s.get("reason", ""))) for key, s in settings.items()]
    notes = "".join(f"<li>{escape(n)}</li>" for n in r.get("host_side", []))
    out = "<h2>Conversion settings</h2>" + (_table(["option", "value", "by", "why"], rows) if rows else "<p>None.</p>")
    return out + (f"<h2>Left to the host</h2><ul>{notes}</ul>" if notes else "")


def render_html(report: Mapping[str, Any]) -> str:
    """report.html for ``report`` (a report.json of ``spikec.report.schema.SCHEMA_VERSION``)."""
    r = report
    title = f"spikec report: {r['model']} for {r['target']}"
    facts = (
        f"target <b>{escape(r['target'])}</b>, method <b>{escape(r['method'])}</b>, T = {_number(r['steps'])} steps, "
        f"spikec {escape(r['spikec_version'])}, report schema {_number(r['schema_version'])}"
    )
    body = "".join(
        [
            f"<h1>{escape(PurePath(str(r['model'])).name)}</h1>",
            f"<p>model <code>{escape(str(r['model']))}</code>, {facts}</p>",
            _summary(r),
            _rates(r),
            _drift(r),
            _timesteps(r),
            _operations(r),
            _placement(r),
            _energy(r),
            _settings(r),
            "<p class='note'>Drawn from report.json by spikec; <code>spikec report DIR</code> draws it again.</p>",
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
