"""report.html and ``spikec report DIR``: the page spikec compile writes beside report.json (static, plots embedded,
rendered by headless Chromium), drawn again byte for byte by ``spikec report``, and refused inputs: a read-only
folder, a report of another schema version, a missing, broken or mistyped report.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_models import small_cnn

from spikec.artifact import read_report
from spikec.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    model, calib = small_cnn(folder)
    out = folder / "loihi2"
    argv = ["compile", str(model), "--target", "loihi2", "--calib", str(calib), "--timesteps", "8", "-o", str(out)]
    assert main(argv) == 0
    return out


def _copy(artifact: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(artifact, tmp_path / "art"))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


class Page(HTMLParser):
    """The tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_compile_writes_a_static_page_with_embedded_plots(artifact: Path) -> None:
    report = json.loads((artifact / "report.json").read_text())
    html = (artifact / "report.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    tags = [tag for tag, _ in page.tags]
    images = [attrs["src"] or "" for tag, attrs in page.tags if tag == "img"]
    assert report["model"] in "".join(page.text) and "cnn.onnx" in page.text and ("h1", {}) in page.tags
    assert len(images) >= 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in html and "https://" not in html
    assert not {"script", "link", "iframe", "object"} & set(tags)
    assert report["drift"] and "Drift per layer" in [attrs["alt"] for tag, attrs in page.tags if tag == "img"]
    for heading in (
        "Metrics",
        "Spike rates per layer",
        "ANN-vs-SNN drift per layer",
        "Cores per layer",
        "Energy (estimates)",
    ):
        assert heading in page.text
    assert any(t.startswith("Analog in-memory model") for t in page.text)
    assert "report.html" in report["files"] and "report.html" not in report["sha256"]
    assert read_report(artifact)["target"] == "loihi2"  # spikec verify's check of the files accepts the page


def test_spikec_report_draws_the_same_page_again(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = _copy(artifact, tmp_path)
    first = (art / "report.html").read_bytes()
    (art / "report.html").unlink()
    code, r = _cli(capsys, "report", str(art))
    assert code == 0, r
    assert (art / "report.html").read_bytes() == first
    report = json.loads((art / "report.json").read_text())
    assert r["metrics"]["synaptic_operations"] == report["metrics"]["synaptic_operations"]
    assert r["energy"]["literature_45nm_picojoules"] == report["energy"]["literature_45nm"]["picojoules"]
    assert r["energy"]["analog_in_memory_picojoules"] == report["energy"]["analog_in_memory"]["picojoules"] > 0
    assert (r["energy"]["target_published"], r["energy"]["target_picojoules"]) == (False, None)
    assert main(["report", str(art), "-o", str(tmp_path / "elsewhere.html")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "elsewhere.html").read_bytes() == first
    read_report(art)  # the artifact's files still check


def test_headless_chromium_renders_the_page(artifact: Path, tmp_path: Path) -> None:
    assert CHROMIUM, "chromium is not installed: the project's test setup (.ci/run) installs Debian's chromium"
    shot = tmp_path / "page.png"
    url = (artifact / "report.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1000,1400", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1400, 1000)
    assert np.std(pixels[..., :3]) > 0.05  # not blank: text, tables and plots
    assert (pixels[..., :3] < 0.5).mean() > 0.01  # dark ink on the page
    assert "<h1>cnn.onnx</h1>" in dom.stdout  # the model's name, as Chromium laid the page out


def test_a_read_only_report_folder_is_one_error_and_nothing_changes(artifact: Path, tmp_path: Path) -> None:
    """A read-only tmpfs in a mount namespace of its own (``unshare``, as tests/disk_faults.py): root too is refused."""
    mnt, result = tmp_path / "mnt", tmp_path / "result"
    mnt.mkdir()
    result.mkdir()
    script = f"""
set -e
mount -t tmpfs -o size=16m tmpfs {mnt}
cp -r {artifact} {mnt}/art
printf 'an older page\\n' > {mnt}/art/report.html
mount -o remount,ro {mnt}
set +e
{sys.executable} -m spikec.cli report {mnt}/art --json > {result}/out.json
echo $? > {result}/code
ls -A {mnt}/art > {result}/names
cp {mnt}/art/report.html {result}/page
"""
    namespace = ["unshare", "-m", "--propagation", "private"] if os.geteuid() == 0 else ["unshare", "-rm"]
    subprocess.run([*namespace, "sh", "-c", script], check=True, timeout=300, cwd=Path(__file__).parents[1])
    r = json.loads((result / "out.json").read_text())
    assert (result / "code").read_text().strip() == "1"
    assert r["error_type"] == "OutputError" and "\n" not in r["error"]
    assert f"{mnt}/art/report.html: cannot write" in r["error"] and "read-only" in r["error"]
    assert (result / "page").read_text() == "an older page\n"
    assert ".spk-" not in (result / "names").read_text()  # no temporary file left


def _rewrite(art: Path, change: Any) -> None:
    report = json.loads((art / "report.json").read_text())
    (art / "report.json").write_text(json.dumps(change(report)))


def _without_version(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("schema_version", "metrics", "energy")}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            _without_version,
            "has no schema_version (version 0: written before report.json's schema was versioned); "
            "this spikec reads schema version 1",
        ),
        (
            lambda r: {**r, "schema_version": 2},
            "has schema version 2; this spikec reads schema version 1 "
            "(docs/report-schema.md): use the spikec that wrote it",
        ),
        (
            lambda r: {**r, "metrics": {**r["metrics"], "samples": "many"}},
            "not a valid report: metrics.samples: is str, expected integer",
        ),
        (lambda r: [r], "holds a JSON list, not a spikec report"),
    ],
)
def test_a_report_of_another_version_or_shape_is_refused(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, says: str
) -> None:
    art = _copy(artifact, tmp_path)
    before = (art / "report.html").read_bytes()
    _rewrite(art, change)
    code, r = _cli(capsys, "report", str(art))
    assert code == 1 and r["error_type"] == "ReportSchemaError"
    assert r["error"].startswith(f"{art / 'report.json'}: {says}")
    assert (art / "report.html").read_bytes() == before


def test_a_missing_or_broken_report_json_is_refused(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = _copy(artifact, tmp_path)
    (art / "report.json").write_text("{ not json")
    code, r = _cli(capsys, "report", str(art))
    assert code == 1 and "report.json: is not valid JSON" in r["error"]
    (art / "report.json").unlink()
    code, r = _cli(capsys, "report", str(art))
    assert code == 1 and r["error"].startswith(f"{art}: holds no report.json") and "spikec compile" in r["error"]
    code, r = _cli(capsys, "report", str(tmp_path / "nowhere"))
    assert code == 1 and "no such directory" in r["error"]


def test_without_matplotlib_the_page_keeps_its_tables(artifact: Path) -> None:
    """matplotlib is optional (spikec[report]): a Python where it cannot be imported draws the page without plots."""
    code = (
        "import json, sys\n"
        "sys.modules['matplotlib'] = None  # import matplotlib now raises ImportError\n"
        "from spikec.report.html import render_html\n"
        f"print(render_html(json.load(open({str(artifact / 'report.json')!r}))))\n"
    )
    page = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120).stdout
    assert "<img" not in page and "pip install &#x27;spikec[report]&#x27;" in page
    assert "<h2>Synaptic operations per layer</h2>" in page and "node_conv2d_1" in page


def test_text_from_the_report_is_escaped(artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """report.json is untrusted: a name holding markup is shown as text, never run."""
    art = _copy(artifact, tmp_path)
    hostile = "<script>alert(1)</script><img src=https://example.com/x.png>"
    _rewrite(art, lambda r: {**r, "model": hostile, "host_side": [hostile]})
    code, r = _cli(capsys, "report", str(art))
    assert code == 0, r
    page = (art / "report.html").read_text()
    assert "<script" not in page and "example.com/x.png>" not in page and "&lt;script&gt;" in page
