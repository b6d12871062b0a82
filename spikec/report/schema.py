"""report.json's schema: its version, the JSON Schema of the fields every report has, and the check that a report
read back (``spikec report DIR``) is one this spikec renders.

``SCHEMA_VERSION`` grows by one whenever a field is removed, renamed or changes meaning (adding a field does
not change it); docs/report-schema.md describes every field of the version. Reports written before the field
existed have none: version 0. ``REPORT_SCHEMA`` is a JSON Schema (draft 2020-12); ``problems`` checks the part
of it spikec uses (``type``, ``required``, ``properties``, ``items``, ``enum``, ``minimum``, ``const``) without a
dependency, naming the field of each problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from spikec.errors import InputError

SCHEMA_VERSION = 1
_NUMBER = {"type": "number"}
_COUNT = {"type": "number", "minimum": 0}
_FRACTION = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_NAMED = {"name": {"type": "string"}, "kind": {"type": "string"}}

METRICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "definitions",
        "samples",
        "timesteps",
        "footprint_bytes",
        "parameters",
        "connection_sparsity",
        "activation_sparsity",
        "synaptic_operations",
        "membrane_updates",
        "synapse_layers",
        "neuron_layers",
    ],
    "properties": {
        "definitions": {"type": "string"},
        "samples": {"type": "integer", "minimum": 0},
        "timesteps": {"type": "integer", "minimum": 1},
        "footprint_bytes": {"type": "integer", "minimum": 0},
        "parameters": {"type": "integer", "minimum": 0},
        "connection_sparsity": _FRACTION,
        "activation_sparsity": _FRACTION,
        "synaptic_operations": {
            "type": "object",
            "required": ["dense", "effective_macs", "effective_acs"],
            "properties": {"dense": _COUNT, "effective_macs": _COUNT, "effective_acs": _COUNT},
        },
        "membrane_updates": _COUNT,
        "synapse_layers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "name",
                    "kind",
                    "weights",
                    "connection_sparsity",
                    "dense",
                    "effective_macs",
                    "effective_acs",
                ],
                "properties": {
                    **_NAMED,
                    "weights": {"type": "integer", "minimum": 0},
                    "connection_sparsity": _FRACTION,
                    "dense": _COUNT,
                    "effective_macs": _COUNT,
                    "effective_acs": _COUNT,
                },
            },
        },
        "neuron_layers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "kind", "neurons", "spiking", "activation_sparsity", "membrane_updates"],
                "properties": {
                    **_NAMED,
                    "neurons": {"type": "integer", "minimum": 0},
                    "spiking": {"type": "boolean"},
                    "activation_sparsity": _FRACTION,
                    "membrane_updates": {"type": ["number", "null"], "minimum": 0},
                },
            },
        },
    },
}

_FIGURE = {
    "type": "object",
    "required": ["picojoules", "chip", "source"],
    "properties": {
        "picojoules": _NUMBER,
        "chip": {"type": "string"},
        "source": {"type": "string"},
        "note": {"type": "string"},
    },
}

ENERGY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["estimate", "note", "unit", "literature_45nm", "target"],
    "properties": {
        "estimate": {"const": True},
        "note": {"type": "string"},
        "unit": {"const": "picojoules per sample"},
        "literature_45nm": {
            "type": "object",
            "required": ["e_mac_pj", "e_ac_pj", "source", "picojoules", "ann_picojoules", "layers"],
            "properties": {
                "e_mac_pj": _NUMBER,
                "e_ac_pj": _NUMBER,
                "source": {"type": "string"},
                "picojoules": _COUNT,
                "ann_picojoules": _COUNT,
                "layers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "macs", "acs", "picojoules"],
                        "properties": {"name": {"type": "string"}, "macs": _COUNT, "acs": _COUNT, "picojoules": _COUNT},
                    },
                },
            },
        },
        "analog_in_memory": {
            "type": "object",
            "required": ["e_mac_pj", "tops_per_watt", "source", "picojoules", "analog_picojoules", "layers"],
            "properties": {
                "e_mac_pj": _NUMBER,
                "tops_per_watt": _NUMBER,
                "high_precision_e_mac_pj": _NUMBER,
                "source": {"type": "string"},
                "picojoules": _COUNT,
                "analog_picojoules": _COUNT,
                "digital_picojoules": _COUNT,
                "layers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "analog", "picojoules"],
                        "properties": {"name": {"type": "string"}, "analog": {"type": "boolean"}, "picojoules": _COUNT},
                    },
                },
            },
        },
        "target": {
            "type": "object",
            "required": ["name", "published", "picojoules"],
            "properties": {
                "name": {"type": "string"},
                "published": {"type": "boolean"},
                "reason": {"type": "string"},
                "picojoules": {"type": ["number", "null"], "minimum": 0},
                "synaptic_picojoules": _COUNT,
                "membrane_picojoules": {"type": ["number", "null"], "minimum": 0},
                "figures": {
                    "type": "object",
                    "required": ["synaptic_operation"],
                    "properties": {"synaptic_operation": _FIGURE, "membrane_update": _FIGURE},
                },
            },
        },
    },
}

PLACEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["cores_used", "layers"],
    "properties": {
        "cores_used": {"type": "integer", "minimum": 0},
        "layers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "cores", "neurons"],
                "properties": {
                    "name": {"type": "string"},
                    "cores": {"type": "integer", "minimum": 0},
                    "neurons": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
}

_POSITIVE = {"type": "integer", "minimum": 1}
_ACCURACY = {"type": "number", "minimum": 0, "maximum": 1}

TIMESTEP_ADVICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["calibration", "compiled_timesteps", "rule", "bound", "timesteps", "limiting_layer", "layers"],
    "properties": {
        "calibration": {
            "type": "object",
            "required": ["samples", "source"],
            "properties": {"samples": _POSITIVE, "source": {"type": "string"}},
        },
        "compiled_timesteps": _POSITIVE,
        "rule": {
            "type": "object",
            "required": ["T", "C", "C_interval", "source", "assumption"],
            "properties": {
                "T": {"type": "string"},
                "C": _NUMBER,
                "C_interval": {"type": "array", "items": _NUMBER},
                "source": {"type": "string"},
                "assumption": {"type": "string"},
            },
        },
        "bound": {
            "type": "object",
            "required": ["epsilon", "init"],
            "properties": {"epsilon": {"type": "string"}, "init": {"type": "number", "minimum": 0, "maximum": 1}},
        },
        "timesteps": _POSITIVE,
        "limiting_layer": {"type": "string"},
        "layers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "name",
                    "origin",
                    "shape",
                    "features",
                    "rows",
                    "effective_dimension",
                    "rule_timesteps",
                    "timesteps",
                    "timesteps_interval",
                    "threshold",
                    "bound",
                    "relative_bound",
                ],
                "properties": {
                    "name": {"type": "string"},
                    "origin": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "features": _POSITIVE,
                    "rows": {"type": "integer", "minimum": 0},
                    "effective_dimension": _COUNT,
                    "rule_timesteps": _COUNT,
                    "timesteps": _POSITIVE,
                    "timesteps_interval": {"type": "array", "items": _POSITIVE},
                    "threshold": _COUNT,
                    "bound": _COUNT,
                    "relative_bound": _COUNT,
                },
            },
        },
        "measured": {
            "type": "object",
            "required": [
                "samples",
                "source",
                "ann_accuracy",
                "max_timesteps",
                "by_timesteps",
                "predicted_timesteps",
                "accuracy_at_predicted",
                "tolerance_pp",
                "timesteps_within_tolerance",
            ],
            "properties": {
                "samples": _POSITIVE,
                "source": {"type": "string"},
                "ann_accuracy": _ACCURACY,
                "max_timesteps": _POSITIVE,
                "by_timesteps": {"type": "object", "additionalProperties": _ACCURACY},
                "predicted_timesteps": _POSITIVE,
                "accuracy_at_predicted": _ACCURACY,
                "tolerance_pp": _COUNT,
                "timesteps_within_tolerance": {"type": ["integer", "null"], "minimum": 1},
            },
        },
    },
}

_SETTING = {"type": "object", "required": ["value", "by"], "properties": {"by": {"type": "string"}}}
_RATE_LAYER = {
    "type": "object",
    "required": ["name", "origin", "shape", "activation_scale", "threshold", "shared_with", "spike_rate"],
    "properties": {
        "name": {"type": "string"},
        "origin": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "activation_scale": {"type": ["number", "array"]},
        "threshold": {"type": ["number", "array"]},
        "shared_with": {"type": "array", "items": {"type": "string"}},
        "spike_rate": {"type": ["number", "null"], "minimum": 0},
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "spikec report.json",
    "type": "object",
    "required": [
        "schema_version",
        "model",
        "target",
        "spikec_version",
        "method",
        "steps",
        "conversion_settings",
        "host_side",
        "pipeline",
        "metrics",
        "energy",
        "files",
        "sha256",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "model": {"type": "string"},
        "target": {"type": "string"},
        "spikec_version": {"type": "string"},
        "method": {"type": "string"},
        "steps": {"type": "integer", "minimum": 1},
        "conversion_settings": {"type": "object", "additionalProperties": _SETTING},
        "host_side": {"type": "array", "items": {"type": "string"}},
        "pipeline": {"type": "array", "items": {"type": "object", "required": ["pass", "status"]}},
        "metrics": METRICS_SCHEMA,
        "energy": ENERGY_SCHEMA,
        "placement": PLACEMENT_SCHEMA,
        "drift": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "origin", "drift", "error", "rate"],
                "properties": {
                    "name": {"type": "string"},
                    "origin": {"type": "string"},
                    "drift": {"type": ["number", "null"], "minimum": -1, "maximum": 1},
                    "error": {"type": ["number", "null"], "minimum": 0},
                    "rate": {"type": "number", "minimum": 0},
                },
            },
        },
        "timestep_advice": TIMESTEP_ADVICE_SCHEMA,
        "files": {"type": "array", "items": {"type": "string"}},
        "sha256": {"type": "object", "additionalProperties": {"type": "string"}},
        "artifact": {"type": "object"},
        # the rate methods' fields (percentile, max, binary); other methods' in docs/report-schema.md
        "timesteps": {"type": "integer", "minimum": 0},
        "calibration_samples": {"type": "integer", "minimum": 0},
        "layers": {"type": "array", "items": _RATE_LAYER},
        "outputs": {"type": "array", "items": _RATE_LAYER},
    },
}

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": int | float,
    "null": type(None),
}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def problems(value: Any, schema: Mapping[str, Any], where: str = "") -> Iterator[str]:
    """Each way ``value`` breaks ``schema`` (the subset of JSON Schema above), as ``'<field>: <problem>'``."""
    at = where or "(the report)"
    if "const" in schema and value != schema["const"]:
        yield f"{at}: is {value!r}, expected {schema['const']!r}"
        return
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is(value, t) for t in names):
            yield f"{at}: is {type(value).__name__}, expected {' or '.join(names)}"
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{at}: is {value!r}, expected one of {schema['enum']}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{at}: is {value}, below {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{at}: is {value}, above {schema['maximum']}"
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                yield f"{where + '.' if where else ''}{key}: missing"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from problems(item, sub, f"{where}.{key}" if where else key)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from problems(item, schema["items"], f"{where}[{i}]")


class ReportSchemaError(InputError):
    """A report.json this spikec cannot render: another schema version, or fields of the wrong type."""


def check_report(report: Any, path: Path) -> dict[str, Any]:
    """``report`` if it is a report of ``SCHEMA_VERSION`` whose fields match ``REPORT_SCHEMA``; else a
    ``ReportSchemaError`` naming the file, the version found and expected (or the first problems), and the fix."""
    recompile = "re-run `spikec compile` to write a current report"
    if not isinstance(report, dict):
        raise ReportSchemaError(f"{path}: holds a JSON {type(report).__name__}, not a spikec report; {recompile}")
    version = report.get("schema_version", 0)
    if version != SCHEMA_VERSION:
        shown = (
            f"schema version {version!r}"
            if "schema_version" in report
            else ("no schema_version (version 0: written before report.json's schema was versioned)")
        )
        newer = isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
        fix = "use the spikec that wrote it, or a newer one" if newer else recompile
        raise ReportSchemaError(
            f"{path}: has {shown}; this spikec reads schema version {SCHEMA_VERSION} (docs/report-schema.md): {fix}"
        )
    found = list(problems(report, REPORT_SCHEMA))
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise ReportSchemaError(f"{path}: not a valid report: {'; '.join(found[:3])}{more}; {recompile}")
    return report
