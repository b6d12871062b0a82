"""Time-step advice in the report (spikec/report/advice.py, docs/report-schema.md ``timestep_advice``): the ONNX model
zoo's MNIST CNN (../shared/data/onnx/mnist-conv) compiled with real MNIST test images as calibration carries the
advice; ``spikec timesteps --report DIR`` measures accuracy against T on other labelled images into that report,
converting as the compile did (spikec's defaults for interp, the target's reset to zero for loihi2, checked against
``spikec eval --target``), and report.html plots it; bad inputs leave the report as it was."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from spikec.artifact import read_report
from spikec.cli import main
from spikec.data.mnist import load_mnist
from spikec.report.schema import REPORT_SCHEMA, problems

CALIB, EVAL = 16, 96  # MNIST test images: the first calibrate, the next are measured
PLOT = "Accuracy against T"


@pytest.fixture(scope="module")
def model(data_dir: Path) -> Path:
    return data_dir / "onnx" / "mnist-conv" / "model.onnx"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    x, y = load_mnist(data_dir / "mnist")
    folder = tmp_path_factory.mktemp("advice-data")
    arrays = {
        "calib": x[:CALIB],
        "other": x[CALIB + EVAL : 2 * CALIB + EVAL],  # other calibration images: other thresholds
        "data": x[CALIB : CALIB + EVAL],
        "labels": y[CALIB : CALIB + EVAL],
    }
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return {name: folder / f"{name}.npy" for name in arrays}


def _compile(model: Path, calib: Path, target: str, out: Path) -> Path:
    argv = ["compile", str(model), "--target", target, "--calib", str(calib), "--timesteps", "8", "-o", str(out)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, model: Path, files: dict[str, Path]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("advice")
    return {target: _compile(model, files["calib"], target, folder / target) for target in ("interp", "loihi2")}


def _copy(artifact: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(artifact, tmp_path / "art"))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _measure(model: Path, files: dict[str, Path], *more: str) -> list[str]:
    data = ["--data", str(files["data"]), "--labels", str(files["labels"]), "--max-timesteps", "8"]
    return ["timesteps", str(model), "--calib", str(files["calib"]), *data, *more]


def _valid(report: dict[str, Any]) -> None:
    assert [e.message for e in jsonschema.Draft202012Validator(REPORT_SCHEMA).iter_errors(report)] == []
    assert list(problems(report, REPORT_SCHEMA)) == []


def _images(html: str) -> dict[str, str]:
    """alt → src of each image on the page."""
    from html.parser import HTMLParser

    found: dict[str, str] = {}

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "img":
                found[a.get("alt") or ""] = a.get("src") or ""

    Images().feed(html)
    return found


def test_compile_writes_the_advice_the_command_gives(
    artifacts: dict[str, Path], model: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """report.json's section matches the schema and is ``spikec timesteps --json``'s advice on the same calibration,
    beside the compiled T; its thresholds are the conversion's."""
    report = json.loads((artifacts["interp"] / "report.json").read_text())
    _valid(report)
    advice = report["timestep_advice"]
    assert advice["compiled_timesteps"] == report["steps"] == 8
    assert advice["calibration"] == {"samples": CALIB, "source": str(files["calib"])}
    assert "assumed" in advice["rule"]["assumption"] and advice["rule"]["C"] == 2.3
    assert [a["name"] for a in advice["layers"]] == [layer["name"] for layer in report["layers"]]
    assert [a["threshold"] for a in advice["layers"]] == [layer["threshold"] for layer in report["layers"]]
    code, alone = _cli(capsys, "timesteps", str(model), "--calib", str(files["calib"]))
    assert code == 0, alone
    for key in ("rule", "bound", "timesteps", "limiting_layer", "layers"):
        assert advice[key] == alone[key], key
    assert "measured" not in advice


def test_the_page_shows_the_advice_table_until_measured(artifacts: dict[str, Path]) -> None:
    html = (artifacts["interp"] / "report.html").read_text(encoding="utf-8")
    advice = json.loads((artifacts["interp"] / "report.json").read_text())["timestep_advice"]
    assert "<h2>Time steps: advice and accuracy against T</h2>" in html
    assert f"Advised <b>T = {advice['timesteps']}</b>" in html and "compiled with T = 8" in html
    assert "<b>Assumption</b>: the rule&#x27;s form is assumed" in html
    assert all(f"<td>{a['name']}</td>" in html for a in advice["layers"])
    assert "Accuracy against T not measured" in html and PLOT not in _images(html)


@pytest.mark.parametrize("target", ["interp", "loihi2"])
def test_timesteps_records_accuracy_against_t_in_the_report(
    artifacts: dict[str, Path],
    model: Path,
    files: dict[str, Path],
    target: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The measurement lands in report.json (valid, the rest unchanged) and as a plot in report.html, which
    ``spikec report`` draws again byte for byte; the SNN measured is the artifact's conversion (loihi2: reset to
    zero, the searched threshold): its accuracies are those ``spikec eval --target`` reports."""
    art = _copy(artifacts[target], tmp_path)
    before = json.loads((art / "report.json").read_text())
    code, r = _cli(capsys, *_measure(model, files, "--report", str(art)))
    assert code == 0, r
    assert r["report"] == str(art / "report.json")
    report = json.loads((art / "report.json").read_text())
    _valid(report)
    advice = report["timestep_advice"]
    assert advice["measured"] == r["measured"] and advice["measured"]["samples"] == EVAL
    assert advice["bound"]["init"] == before["conversion_settings"]["init"]["value"]  # loihi2: 0, interp: 0.5
    assert {k: v for k, v in report.items() if k != "timestep_advice"} == {
        k: v for k, v in before.items() if k != "timestep_advice"
    }
    code, e = _cli(capsys, "eval", str(model), "--target", target, "--calib", str(files["calib"]), "--data",
                   str(files["data"]), "--labels", str(files["labels"]), "--timesteps", "8")  # fmt: skip
    assert code == 0, e
    assert advice["measured"]["ann_accuracy"] == e["ann"]["accuracy"]
    assert {t: advice["measured"]["by_timesteps"][t] for t in e["snn"]["by_timesteps"]} == e["snn"]["by_timesteps"]

    page = (art / "report.html").read_text(encoding="utf-8")
    src = _images(page)[PLOT]
    assert src.startswith("data:image/png;base64,") and "Accuracy against T not measured" not in page
    from matplotlib.image import imread

    pixels = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
    assert pixels.shape[0] > 100 and np.std(pixels[..., :3]) > 0.05  # a drawn plot, not a blank image
    assert f"at the advised T = {advice['measured']['predicted_timesteps']}" in page
    first = (art / "report.html").read_bytes()
    (art / "report.html").unlink()
    code, r = _cli(capsys, "report", str(art))
    assert code == 0, r
    assert (art / "report.html").read_bytes() == first
    assert r["timestep_advice"] == {
        "timesteps": advice["timesteps"],
        "compiled_timesteps": 8,
        "measured_timesteps_within_tolerance": advice["measured"]["timesteps_within_tolerance"],
    }
    read_report(art)  # spikec verify's check of the artifact's files still passes


def test_a_report_without_the_section_still_renders(
    artifacts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version-1 report written before the section existed (or by a method it does not apply to) draws its page,
    which says how to get the advice."""
    art = _copy(artifacts["interp"], tmp_path)
    report = json.loads((art / "report.json").read_text())
    del report["timestep_advice"]
    (art / "report.json").write_text(json.dumps(report))
    code, r = _cli(capsys, "report", str(art))
    assert code == 0, r
    page = (art / "report.html").read_text(encoding="utf-8")
    assert "<h2>Time steps: advice and accuracy against T</h2>" in page and "Not in this report" in page
    assert "spikec timesteps MODEL --calib C.npy --data X.npy --labels Y.npy --report DIR" in page


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code, r = _cli(capsys, *argv)
    assert code == 1 and not r["ok"], r
    assert "\n" not in r["error"] and "Traceback" not in r["error"]
    return str(r["error"])


def test_bad_report_inputs_change_nothing(
    artifacts: dict[str, Path], model: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = _copy(artifacts["interp"], tmp_path)
    before = {name: (art / name).read_bytes() for name in ("report.json", "report.html")}
    calib = ["--calib", str(files["calib"])]
    message = _error(capsys, ["timesteps", str(model), *calib, "--report", str(art)])
    assert "--report records the accuracy measured against T" in message and "--data" in message
    other = _measure(model, files, "--report", str(art))
    other[other.index("--calib") + 1] = str(files["other"])
    message = _error(capsys, other)
    assert f"{art / 'report.json'}: its layers are not those of {model} converted on this --calib" in message
    assert "ReLU32" in message and "the --calib samples the compile used" in message
    assert "no such directory" in _error(capsys, _measure(model, files, "--report", str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    assert "holds no report.json" in _error(capsys, _measure(model, files, "--report", str(tmp_path / "empty")))
    report = json.loads(before["report.json"])
    (art / "report.json").write_text(json.dumps({**report, "method": "exact"}))
    message = _error(capsys, _measure(model, files, "--report", str(art)))
    assert "compiled with --method exact" in message and "--method percentile, max or binary" in message
    (art / "report.json").write_bytes(before["report.json"])
    assert {name: (art / name).read_bytes() for name in before} == before
    assert not [p.name for p in art.iterdir() if p.name.startswith(".spk-")]


def test_a_read_only_report_folder_is_one_error_before_the_measurement(
    artifacts: dict[str, Path], model: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    """A read-only tmpfs in a mount namespace of its own (as tests/test_report_html.py): root too is refused, before
    the model is converted, and the report is unchanged."""
    mnt, result = tmp_path / "mnt", tmp_path / "result"
    mnt.mkdir()
    result.mkdir()
    argv = " ".join(_measure(model, files, "--report", f"{mnt}/art"))
    script = f"""
set -e
mount -t tmpfs -o size=16m tmpfs {mnt}
cp -r {artifacts["interp"]} {mnt}/art
mount -o remount,ro {mnt}
set +e
{sys.executable} -m spikec.cli {argv} --json > {result}/out.json
echo $? > {result}/code
cp {mnt}/art/report.json {result}/report.json
"""
    namespace = ["unshare", "-m", "--propagation", "private"] if os.geteuid() == 0 else ["unshare", "-rm"]
    subprocess.run([*namespace, "sh", "-c", script], check=True, timeout=300, cwd=Path(__file__).parents[1])
    r = json.loads((result / "out.json").read_text())
    assert (result / "code").read_text().strip() == "1"
    assert r["error_type"] == "OutputError" and "\n" not in r["error"]
    assert r["error"].startswith(f"{mnt}/art: cannot write") and "read-only" in r["error"]
    assert (result / "report.json").read_bytes() == (artifacts["interp"] / "report.json").read_bytes()
