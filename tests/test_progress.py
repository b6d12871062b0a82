"""Progress bars (spikec.progress): a rich bar per stage with counts on a terminal, nothing elsewhere or under --json;
every stage of a compile and the run of ``spikec verify`` report."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from test_cli_compile import small_cnn

from spikec.cli import main
from spikec.compiler import CompileJob, compile_model
from spikec.methods import ConversionOptions
from spikec.models import save_model
from spikec.progress import ProgressBars, progress_bars, stderr_progress

ESC = "\x1b["  # the terminal control sequences a live display redraws itself with


def terminal(buffer: io.StringIO) -> Console:
    return Console(file=buffer, force_terminal=True, width=120, color_system=None)


def test_bars_show_each_stage_with_its_counts_and_detail() -> None:
    buffer = io.StringIO()
    bars = ProgressBars(terminal(buffer))
    bars("calibration", 5, 20)
    bars("calibration", 20, 20)
    bars("conversion: partition", 1, 2)
    bars("verification: the vendor's run", 0, 0)  # an unknown amount: a pulsing bar, no count yet
    bars.close()
    bars.close()  # idempotent
    text = buffer.getvalue()
    assert ESC in text, "drawn as a live display"
    assert "calibration" in text and "20/20" in text
    assert "conversion" in text and "1/2" in text and "partition" in text
    assert "verification" in text and "0/?" in text and "the vendor's run" in text
    assert "0:00:00" in text, "elapsed and time left"


@pytest.mark.parametrize("case", ["json", "not a terminal"])
def test_no_bars_under_json_or_off_a_terminal(case: str) -> None:
    buffer = io.StringIO()
    console = terminal(buffer) if case == "json" else Console(file=buffer, force_terminal=False)
    with progress_bars(enabled=case != "json", console=console) as bars:
        assert bars is None and stderr_progress() is None
    assert buffer.getvalue() == ""


def test_the_command_finds_its_bars_and_they_stop_with_it() -> None:
    buffer = io.StringIO()
    with progress_bars(console=terminal(buffer)) as bars:
        assert bars is not None and stderr_progress() is bars
        bars("emission", 1, 3)
    assert stderr_progress() is None and not bars.started
    assert "emission" in buffer.getvalue() and "1/3" in buffer.getvalue()


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    model, calib = tmp_path / "cnn.sir", tmp_path / "calib.npy"
    save_model(small_cnn(), model)  # type: ignore[arg-type]
    np.save(calib, np.random.default_rng(1).uniform(0, 255, size=(20, 6, 6)).astype(np.uint8))
    return {"model": model, "calib": calib}


def test_compile_reports_calibration_conversion_metrics_and_emission(files: dict[str, Path], tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    options = ConversionOptions(timesteps=16, progress=lambda *call: calls.append(call))
    job = CompileJob(
        model=files["model"], output=tmp_path / "art", target="loihi2", options=options, calib=files["calib"]
    )
    compile_model(job)
    stages = list(dict.fromkeys(stage.partition(": ")[0] for stage, _, _ in calls))
    assert stages[0] == "calibration" and stages[-3:] == ["conversion", "metrics", "emission"]
    assert ("calibration", 20, 20) in calls
    report = json.loads((tmp_path / "art" / "report.json").read_text())
    passes = [step["pass"].partition("{")[0] for step in report["pipeline"]]
    conversion = [call for call in calls if call[0].startswith("conversion")]
    n = len(passes)
    assert conversion == [*((f"conversion: {p}", i, n) for i, p in enumerate(passes)), ("conversion", n, n)]
    emission = [call for call in calls if call[0].startswith("emission")]
    assert emission == [
        ("emission: loihi2 files", 0, 3), ("emission: report.json", 1, 3), ("emission: report.html", 2, 3),
        ("emission", 3, 3),
    ]  # fmt: skip


def run_on_terminal(*argv: str) -> tuple[int, str, str]:
    """``spikec ARGV`` with stderr on a pseudo-terminal and stdout on a pipe: (exit code, stdout, stderr)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikec", *argv], stdout=subprocess.PIPE, stderr=follower, env=env
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    return proc.wait(), out, b"".join(chunks).decode(errors="replace")


def compile_argv(files: dict[str, Path], out: Path, target: str = "interp") -> list[str]:
    return ["compile", str(files["model"]), "--target", target, "--calib", str(files["calib"]), "-o", str(out)]


def test_compile_draws_bars_on_a_terminal_and_the_summary_on_stdout(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "art"
    code, stdout, stderr = run_on_terminal(*compile_argv(files, out), "--timesteps", "16")
    assert code == 0, stderr
    assert ESC in stderr and "calibration" in stderr and "20/20" in stderr and "emission" in stderr
    assert "timing: " in stderr
    assert ESC not in stdout and stdout.splitlines()[-1] == f"report: {out / 'report.html'}"


def test_compile_json_on_a_terminal_writes_nothing_to_stderr(files: dict[str, Path], tmp_path: Path) -> None:
    code, stdout, stderr = run_on_terminal(*compile_argv(files, tmp_path / "art"), "--timesteps", "16", "--json")
    assert code == 0 and stderr == ""
    result = json.loads(stdout)
    assert result["ok"] and result["summary"]["report_html"] == str(tmp_path / "art" / "report.html")


def test_verify_shows_the_targets_run_on_a_terminal(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "art"
    assert main([*compile_argv(files, out, target="akida"), "--json"]) == 0
    capsys.readouterr()
    code, stdout, stderr = run_on_terminal("verify", str(out))
    assert code == 0, stderr
    assert "verification" in stderr and "akida against the interpreter" in stderr and ESC in stderr
    assert stdout.startswith(f"verified {out} (akida)")
