"""report.json's documented schema (spikec/report/schema.py, docs/report-schema.md) against real reports: a
torch-exported CNN compiled for the interpreter and for Loihi 2, each report checked with jsonschema (the
reference implementation) and with spikec's own check, which must agree; the page documents every field."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_models import small_cnn

from spikec.cli import main
from spikec.report.schema import REPORT_SCHEMA, SCHEMA_VERSION, problems

DOC = Path(__file__).resolve().parents[1] / "docs" / "report-schema.md"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("schema")
    model, calib = small_cnn(folder)
    found = {}
    for target in ("interp", "loihi2"):
        out = folder / target
        argv = ["compile", str(model), "--target", target, "--calib", str(calib), "--timesteps", "8", "-o", str(out)]
        assert main(argv) == 0
        found[target] = json.loads((out / "report.json").read_text())
    return found


@pytest.mark.parametrize("target", ["interp", "loihi2"])
def test_real_reports_match_the_documented_schema(reports: dict[str, dict[str, Any]], target: str) -> None:
    report = reports[target]
    assert report["schema_version"] == SCHEMA_VERSION
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    assert [e.message for e in jsonschema.Draft202012Validator(REPORT_SCHEMA).iter_errors(report)] == []
    assert list(problems(report, REPORT_SCHEMA)) == []
    assert ("placement" in report) == (target == "loihi2")  # a target that places neurons on cores
    advice = report["timestep_advice"]  # a rate-coded compile with calibration samples
    assert advice["compiled_timesteps"] == report["steps"] == 8
    assert [a["name"] for a in advice["layers"]] == [layer["name"] for layer in report["layers"]]
    assert advice["bound"]["init"] == report["init"]  # the conversion's: loihi2 starts membranes at 0


def test_a_broken_report_is_caught_by_both_checks(reports: dict[str, dict[str, Any]]) -> None:
    report = json.loads(json.dumps(reports["loihi2"]))
    report["metrics"]["samples"] = "16"
    report["energy"]["literature_45nm"]["layers"][0]["picojoules"] = -1.0
    del report["pipeline"]
    errors = jsonschema.Draft202012Validator(REPORT_SCHEMA).iter_errors(report)
    reference = sorted(".".join(map(str, e.absolute_path)) for e in errors)
    assert reference == ["", "energy.literature_45nm.layers.0.picojoules", "metrics.samples"]  # "": pipeline missing
    ours = list(problems(report, REPORT_SCHEMA))
    assert ours == [
        "pipeline: missing",
        "metrics.samples: is str, expected integer",
        "energy.literature_45nm.layers[0].picojoules: is -1.0, below 0",
    ]


def _keys(schema: dict[str, Any]) -> Iterator[str]:
    for key, sub in schema.get("properties", {}).items():
        yield key
        yield from _keys(sub)
    for sub in (schema.get("items"), schema.get("additionalProperties")):
        if isinstance(sub, dict):
            yield from _keys(sub)


def test_the_page_documents_every_field_and_the_version() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Za-z_0-9]+)`", text))  # upper case too: timestep_advice.rule's `T`, `C`
    missing = sorted(set(_keys(REPORT_SCHEMA)) - documented)
    assert missing == [], f"docs/report-schema.md does not describe {missing}"
    assert f"schema version {SCHEMA_VERSION}" in text.lower()
