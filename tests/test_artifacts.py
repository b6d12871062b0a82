"""Artifacts: byte-identical for identical inputs, every file's sha256 recorded and checked by ``spikec verify``
before anything in them runs, and the Lava environment found only where spikec's own setup put it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from test_writers import small_cnn

import spikec
from spikec.artifact import file_hashes
from spikec.cli import main
from spikec.models import save_model
from spikec.targets.loihi2 import lava_env
from spikec.targets.loihi2.lava_env import find_lava_python


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def given(tmp_path: Path) -> Path:
    folder = tmp_path / "given"
    folder.mkdir()
    save_model(small_cnn(), folder / "cnn.sir")  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    np.save(folder / "calib.npy", rng.uniform(0, 1, (12, 1, 6, 6)))
    np.save(folder / "x.npy", rng.integers(0, 2, (4, 2, 1, 6, 6)).astype(np.float64))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("target", ["interp", "loihi2", "akida"])
def test_identical_inputs_give_byte_identical_artifacts(
    target: str, given: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Compiled twice, seconds apart (zip entries hold times to 2 s), into folders of different names."""
    argv = ["compile", str(given / "cnn.sir"), "--target", target, "--calib", str(given / "calib.npy")]
    argv += ["--timesteps", "4", *(["--inputs", str(given / "x.npy")] if target == "interp" else [])]
    code, first = _cli(capsys, *argv, "-o", str(tmp_path / "one"))
    assert code == 0, first
    time.sleep(2.1)
    code, second = _cli(capsys, *argv, "-o", str(tmp_path / "two"))
    assert code == 0, second
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert set(one) == set(two) and len(one) >= 3
    assert [name for name in one if one[name] != two[name]] == []
    assert b'"seconds"' not in one["report.json"]
    assert first["timings"] and all(t["seconds"] >= 0 for t in first["timings"])  # the times: in the result only
    report = json.loads(one["report.json"])
    assert report["sha256"] == file_hashes(tmp_path / "one") and set(report["sha256"]) == set(one) - {"report.json"}
    main([*argv, "-o", str(tmp_path / "three")])  # without --json: the times on stderr
    assert "timing:" in capsys.readouterr().err


@pytest.fixture
def tiny(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "tiny"
    argv = ["compile", str(data_dir / "netx/tiny/tiny.net"), "--target", "loihi2", "--timesteps", "5"]
    assert _cli(capsys, *argv, "-o", str(out))[0] == 0
    return out


def test_verify_refuses_an_artifact_whose_files_changed_before_running_it(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run_lava.py that would leave a mark when run: verify must refuse it by its sha256 (and, with the hash
    in report.json edited to match, as not spikec's own run_lava.py), and never run it."""
    mark = tmp_path / "it-ran"
    run_lava, report_path = tiny / "run_lava.py", tiny / "report.json"
    original, report = run_lava.read_text(), json.loads(report_path.read_text())
    run_lava.write_text(f"open({str(mark)!r}, 'w').close()\n" + original)

    def refused(expected: str) -> None:
        code, r = _cli(capsys, "verify", str(tiny))
        assert code == 1 and expected in r["error"] and "\n" not in r["error"], r
        assert "re-run" in r["error"] and not mark.exists()

    refused("run_lava.py: changed since spikec compile wrote it")
    report_path.write_text(json.dumps({**report, "sha256": file_hashes(tiny)}))
    refused("run_lava.py: not the run_lava.py this spikec")
    run_lava.write_text(original)
    report_path.write_text(json.dumps(report))
    (tiny / "notes.txt").write_text("mine")
    refused("notes.txt: not a file of this artifact")
    (tiny / "notes.txt").unlink()
    weights = (tiny / "weights.npz").read_bytes()
    (tiny / "weights.npz").unlink()
    refused("weights.npz: missing from the artifact")
    (tmp_path / "weights.npz").write_bytes(weights)
    (tiny / "weights.npz").symlink_to(tmp_path / "weights.npz")
    refused("weights.npz: a link or special file")
    (tiny / "weights.npz").unlink()
    (tiny / "weights.npz").write_bytes(weights)
    report_path.write_text(json.dumps({k: v for k, v in report.items() if k != "sha256"}))
    refused("records no sha256")


def _plant_interpreter(folder: Path, mark: Path) -> Path:
    planted = folder / ".venv-lava" / "bin" / "python"
    planted.parent.mkdir(parents=True)
    planted.write_text(f"#!/bin/sh\ntouch '{mark}'\nexit 1\n")
    planted.chmod(0o755)
    return planted


def test_a_lava_interpreter_planted_above_the_current_directory_never_runs(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``.venv-lava/bin/python`` in a shared folder above (or at) the current directory is not spikec's."""
    mark = tmp_path / "planted-ran"
    shared = tmp_path / "shared"
    planted = _plant_interpreter(shared, mark)
    below = shared / "a" / "b"
    below.mkdir(parents=True)
    monkeypatch.delenv(lava_env.ENV_VAR, raising=False)
    assert lava_env.source_root() == Path(spikec.__file__).resolve().parents[1]  # this checkout
    for cwd in (below, shared):
        monkeypatch.chdir(cwd)
        assert find_lava_python() != planted
    monkeypatch.chdir(below)
    empty = tmp_path / "checkout-without-lava"
    empty.mkdir()
    monkeypatch.setattr(lava_env, "source_root", lambda: empty)  # a source tree whose Lava env was never made
    code, r = _cli(capsys, "verify", str(tiny))
    assert code == 1 and "the Lava environment is missing" in r["error"] and "SPIKEC_LAVA_PYTHON" in r["error"]
    assert not mark.exists()
    monkeypatch.setattr(lava_env, "source_root", lambda: None)  # a wheel install: only $SPIKEC_LAVA_PYTHON
    code, r = _cli(capsys, "verify", str(tiny))
    assert code == 1 and "not run from its source tree" in r["error"] and not mark.exists()
    monkeypatch.setenv(lava_env.ENV_VAR, str(planted))  # named by the user: that one is used
    code, r = _cli(capsys, "verify", str(tiny))
    assert code == 1 and mark.exists()
