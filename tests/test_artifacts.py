"""Artifacts: byte-identical for identical inputs, every file's sha256 recorded and checked by ``spikec verify``
before anything in them runs, and the Lava environment found only where spikec's own setup put it."""

from __future__ import annotations

import json
import sys
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
    assert report["sha256"] == file_hashes(tmp_path / "one")
    assert set(report["sha256"]) == set(one) - {"report.json", "report.html"}  # the reports are not in the record
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


@pytest.mark.slow
def test_every_writer_gives_the_same_bytes_twice(data_dir: Path, tmp_path: Path) -> None:
    """Each file-writing command run twice, more than 2 s apart (zip and HDF5 can hold times), into folders of
    different names: ``import`` to .sir (+ .npz sidecar), .nir and netx .net, ``opt``, ``run -o`` and
    ``partition -o`` write the same bytes."""
    onnx = data_dir / "onnx/mnist-conv/model.onnx"
    nir = data_dir / "nir/cnn/cnn_sinabs.nir"
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).integers(0, 2, (3, 1, 2, 34, 34)).astype(np.float64))

    def write_all(folder: Path) -> dict[str, bytes]:
        folder.mkdir()
        commands = [
            ["import", str(onnx), "-o", str(folder / "ann.sir")],
            ["import", str(nir), "-o", str(folder / "snn.nir")],
            ["import", str(nir), "-o", str(folder / "snn.sir")],
            ["import", str(data_dir / "netx/tiny/tiny.net"), "-o", str(folder / "tiny.net")],
            ["opt", str(folder / "ann.sir"), "-p", "fold-batchnorm", "-o", str(folder / "ann-opt.sir")],
            ["run", str(nir), "--input", str(x), "-o", str(folder / "out.npz")],
            ["partition", str(nir), "--target", "loihi2", "-o", str(folder / "core_map.json")],
        ]
        for argv in commands:
            assert main(argv) == 0, argv
        return _files(folder)

    first = write_all(tmp_path / "one")
    time.sleep(2.1)
    second = write_all(tmp_path / "two")
    assert set(first) == set(second) and len(first) >= 9
    assert [name for name in first if first[name] != second[name]] == []


def test_a_lava_script_past_its_time_leaves_no_process_behind(tmp_path: Path) -> None:
    """Lava's runtime runs one process per Lava process; a script that times out is killed with all of
    them (a timed-out verify left a dozen busy Lava processes running for minutes)."""
    pid_file = tmp_path / "grandchild.pid"
    script = tmp_path / "spawns.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    with pytest.raises(spikec.errors.TargetError, match="ran past 2 s"):
        lava_env.run_in_lava_env(Path(sys.executable), [str(script)], timeout=2)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped by init, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_verify_timeout_cuts_the_vendor_run_and_says_how_to_give_it_longer(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``verify --timeout`` bounds Lava's run (a large model's run can take longer than the default 600 s); past
    it: exit 1, one line naming the option, no Lava process left."""
    code, report = _cli(capsys, "verify", str(tiny), "--timeout", "0.5")
    assert code == 1 and "ran past 0.5 s" in report["error"] and "--timeout" in report["error"], report
    code, report = _cli(capsys, "verify", str(tiny), "--timeout", "-1")
    assert code == 1 and "--timeout must be" in report["error"]
    code, report = _cli(capsys, "verify", str(tiny), "--timeout", "300")
    assert code == 0 and report["mismatches"] == 0


def test_verify_timeout_is_refused_by_a_target_without_a_time_limit(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "art"
    argv = ["compile", str(data_dir / "nir/cnn/cnn_sinabs.nir"), "--target", "interp", "--timesteps", "4"]
    assert _cli(capsys, *argv, "-o", str(out))[0] == 0
    code, report = _cli(capsys, "verify", str(out), "--timeout", "5")
    assert code == 2 and "drop --timeout" in report["error"], report
