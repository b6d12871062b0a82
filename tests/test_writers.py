"""Writers that lose nothing: every output written whole or not at all, on real failing file systems.

Each writer (``.sir`` with its sidecar, ``.nir``, netx ``.net``, ``run -o`` arrays, ``partition -o``,
``compile -o`` for the interpreter and for Loihi 2) runs through the command a user types against a full
tmpfs (three fill levels), a read-only tmpfs, and, as ``nobody``, a folder without write permission
(``tests/disk_faults.py``, in its own mount namespace): exit 1, one line naming the output and the fix,
the older output unchanged and no temporary file left. Then the names (any legal name, 255 bytes), the
modes (the user's umask), and outputs that would replace an input (refused).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conversion_models import chain

from spikec.cli import main
from spikec.ir import Conv, Dense, Flatten, ReLU
from spikec.models import save_model

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples" / "models"
FRACTIONS = (0.1, 0.5, 0.9)  # of the new outputs' size that fits on the full disk


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def small_cnn() -> object:
    rng = np.random.default_rng(0)
    return chain(
        ("conv", Conv(weight=rng.normal(0, 0.5, (4, 1, 3, 3)), bias=rng.normal(0, 0.1, 4))),
        ("relu1", ReLU()),
        ("flat", Flatten()),
        ("fc1", Dense(weight=rng.normal(0, 0.2, (16, 64)), bias=rng.normal(0, 0.1, 16))),
        ("relu2", ReLU()),
        ("fc2", Dense(weight=rng.normal(0, 0.3, (3, 16)))),
        input_shape=(1, 6, 6),
    )


@pytest.fixture
def inputs(tmp_path: Path, data_dir: Path) -> dict[str, Path]:
    """Models and arrays the writer cases read: a CNN (.sir with a sidecar), an SNN (.nir), a netx file."""
    folder = tmp_path / "given"
    folder.mkdir()
    save_model(small_cnn(), folder / "cnn.sir")  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    np.save(folder / "calib.npy", rng.uniform(0, 1, (8, 1, 6, 6)))
    np.save(folder / "spikes.npy", (rng.random((6, 1, 2, 34, 34)) < 0.2).astype(np.float64))
    shutil.copy(EXAMPLES / "cnn_sinabs.nir", folder / "snn.nir")
    shutil.copy(data_dir / "netx/tiny/tiny.net", folder / "tiny.net")
    return {p.name: p for p in folder.iterdir()}


# every writer, through the command a user types: {in} holds the inputs, {out} is the failing folder
CASES = [
    ("sir+sidecar", ["import", "{in}/snn.nir", "-o", "{out}/m.sir"], ["m.sir", "m.npz"]),
    ("nir", ["import", "{in}/snn.nir", "-o", "{out}/m.nir"], ["m.nir"]),
    ("netx", ["import", "{in}/tiny.net", "-o", "{out}/m.net"], ["m.net"]),
    ("opt", ["opt", "{in}/cnn.sir", "-p", "fuse", "-o", "{out}/m.sir"], ["m.sir", "m.npz"]),
    ("run -o", ["run", "{in}/snn.nir", "--input", "{in}/spikes.npy", "-o", "{out}/o.npz"], ["o.npz"]),
    ("partition -o", ["partition", "{in}/tiny.net", "--target", "loihi2", "-o", "{out}/cm.json"], ["cm.json"]),
    ("compile interp", ["compile", "{in}/cnn.sir", "--target", "interp", "--calib", "{in}/calib.npy",
                        "--timesteps", "4", "-o", "{out}/art"], ["art"]),
    ("compile loihi2", ["compile", "{in}/tiny.net", "--target", "loihi2", "--timesteps", "5", "-o", "{out}/art"],
     ["art"]),
]  # fmt: skip


def _namespace_command(spec: Path) -> list[str]:
    """Run the fault harness in a mount namespace of its own: as root, dropping to nobody for EACCES."""
    harness = [sys.executable, str(HERE / "disk_faults.py"), str(spec)]
    if os.geteuid() == 0:
        return ["unshare", "-m", "--propagation", "private", *harness, "--drop"]
    return ["unshare", "-rm", "--propagation", "private", *harness]


@pytest.mark.slow
def test_every_writer_on_full_readonly_and_forbidden_disks(inputs: dict[str, Path], tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    cases = [{"name": n, "argv": argv, "outputs": outs} for n, argv, outs in CASES]
    spec.write_text(json.dumps({"inputs": {k: str(v) for k, v in inputs.items()}, "cases": cases,
                                "fractions": FRACTIONS}))  # fmt: skip
    proc = subprocess.run(_namespace_command(spec), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]  # a crash (h5py on a full disk: -11) fails here
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    os.rmdir(found["mount_point"])  # empty on this side of the namespace
    results = found["results"]
    faults = {"full": "disk is full", "readonly": "read-only", "noperm": "no permission"}
    expected = len(CASES) * (len(FRACTIONS) + 1 + (os.geteuid() == 0))
    assert len(results) == expected
    for r in results:
        where = f"{r['case']} on {r['fault']}"
        assert r["code"] == 1, (where, r)
        assert "\n" not in r["error"] and "cannot write" in r["error"], (where, r["error"])
        assert ".spk-" not in r["error"], (where, r["error"])  # the output is named, not a temporary name
        assert faults[r["fault"].split()[0]] in r["error"] and "write elsewhere" in r["error"], (where, r["error"])
        assert r["kept"], f"{where}: an older output changed"
        assert r["appeared"] == [], f"{where}: left {r['appeared']}"
    if os.geteuid() != 0:  # EACCES without root: a folder of mode 0555 refuses this user
        _forbidden_folder_in_process(inputs, tmp_path)


def _forbidden_folder_in_process(inputs: dict[str, Path], tmp_path: Path) -> None:
    for name, argv, _ in CASES:
        folder = tmp_path / "noperm" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        folder.chmod(0o555)
        args = [a.replace("{in}", str(inputs["cnn.sir"].parent)).replace("{out}", str(folder)) for a in argv]
        assert main([*args, "--json"]) == 1
        assert list(folder.iterdir()) == []


@pytest.fixture
def umask() -> Iterator[int]:
    old = os.umask(0o002)
    yield 0o002
    os.umask(old)


def _modes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}


def test_outputs_take_the_users_umask(
    umask: int, inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for _, argv, _ in CASES:
        args = [a.replace("{in}", str(inputs["cnn.sir"].parent)).replace("{out}", str(out)) for a in argv]
        assert _cli(capsys, *args)[0] == 0
        capsys.readouterr()
    modes = _modes(out)
    assert {name for name, mode in modes.items() if (out / name).is_file() and mode != 0o664} == set()
    assert {name for name, mode in modes.items() if (out / name).is_dir() and mode != 0o775} == set()
    assert {"m.sir", "m.npz", "m.nir", "m.net", "o.npz", "cm.json", "art", "art/report.json"} <= set(modes)


@pytest.mark.parametrize("suffix", [".sir", ".nir", ".npz", ".json"])
def test_any_legal_name_is_written(
    suffix: str, inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """255 bytes, the most a Linux name holds: the temporary name must not add to it."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    name = "n" * (limit - len(suffix)) + suffix
    given = inputs["cnn.sir"].parent
    argv = {
        ".sir": ["import", str(given / "snn.nir"), "-o", str(tmp_path / name)],
        ".nir": ["import", str(given / "snn.nir"), "-o", str(tmp_path / name)],
        ".npz": ["run", str(given / "snn.nir"), "--input", str(given / "spikes.npy"), "-o", str(tmp_path / name)],
        ".json": ["partition", str(given / "tiny.net"), "--target", "loihi2", "-o", str(tmp_path / name)],
    }[suffix]
    code, r = _cli(capsys, *argv)
    assert code == 0, r
    assert (tmp_path / name).is_file() and len(name) == limit
    too_long = tmp_path / ("n" + name)
    code, r = _cli(capsys, *argv[:-1], str(too_long))
    assert code == 1 and "name is too long" in r["error"] and too_long.stem in r["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["given", name, *(
        [name[: -len(suffix)] + ".npz"] if suffix == ".sir" else [])])  # fmt: skip


def test_an_output_never_replaces_an_input(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = inputs["cnn.sir"].parent
    shutil.copy(given / "cnn.sir", given / "renamed.sir")  # its header names the sidecar cnn.npz
    before = {p.name: p.read_bytes() for p in given.iterdir()}
    snn, spikes = str(given / "snn.nir"), str(given / "spikes.npy")
    (tmp_path / "alias.nir").symlink_to(given / "snn.nir")
    os.link(given / "spikes.npy", tmp_path / "hard.npz")
    for argv in (
        ["run", snn, "--input", spikes, "-o", snn],  # the model
        ["run", snn, "--input", spikes, "-o", spikes],  # the input
        ["run", snn, "--input", f"input={spikes}", "-o", str(tmp_path / "hard.npz")],  # a hard link to it
        ["run", str(tmp_path / "alias.nir"), "--input", spikes, "-o", snn],  # a symbolic link's target
        ["import", snn, "-o", snn],
        ["opt", str(given / "cnn.sir"), "-p", "fuse", "-o", str(given / "cnn.sir")],
        ["opt", str(given / "renamed.sir"), "-p", "fuse", "-o", str(given / "cnn.sir")],  # cnn.npz: its sidecar
        ["import", str(given / "tiny.net"), "-o", str(given / "calib.sir")],  # -> calib.npz: not an input
        ["partition", str(given / "tiny.net"), "--target", "loihi2", "-o", str(given / "tiny.net")],
    ):
        code, r = _cli(capsys, *argv)
        if argv[-1].endswith("calib.sir"):
            assert code == 0, r
            continue
        assert code == 2 and "is an input of this command" in r["error"] and "choose another -o" in r["error"], r
    after = {p.name: p.read_bytes() for p in given.iterdir() if p.name not in ("calib.sir", "calib.npz")}
    assert after == before


def test_compile_o_refuses_a_folder_holding_an_input_or_other_files(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = inputs["cnn.sir"].parent
    calib = str(given / "calib.npy")

    def compile_to(model: Path, out: Path) -> tuple[int, dict]:
        argv = ["compile", str(model), "--target", "interp", "--calib", calib, "--timesteps", "4", "-o", str(out)]
        return _cli(capsys, *argv)

    art = tmp_path / "art"
    assert compile_to(given / "cnn.sir", art)[0] == 0
    shutil.copy(given / "cnn.sir", art / "mine.sir")  # a model kept in an old artifact, then compiled to it
    shutil.copy(given / "cnn.npz", art / "cnn.npz")
    code, r = compile_to(art / "mine.sir", art)
    assert code == 2 and f"holds {art / 'mine.sir'}, an input of this command" in r["error"], r
    assert (art / "mine.sir").is_file()
    code, r = compile_to(given / "cnn.sir", given)  # the folder of the model
    assert code == 2 and "an input of this command" in r["error"]
    code, r = compile_to(given / "cnn.sir", art)  # an artifact with files spikec did not write
    assert code == 1 and "is not a spikec artifact directory" in r["error"]
    assert (art / "mine.sir").is_file()
    (art / "mine.sir").unlink()
    (art / "cnn.npz").unlink()
    older = {"target": "interp", "files": ["model.npz", "model.sir", "report.json"]}  # no sha256
    (art / "report.json").write_text(json.dumps(older))
    assert compile_to(given / "cnn.sir", art)[0] == 0, "an artifact of an older spikec (no sha256) is replaced"
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "report.json").write_text('{"target": "interp", "files": []}')
    (notes / "todo.txt").write_text("keep me")
    code, r = compile_to(given / "cnn.sir", notes)
    assert code == 1 and "is not a spikec artifact directory" in r["error"]
    assert (notes / "todo.txt").read_text() == "keep me"


@pytest.mark.slow
def test_verify_on_a_full_temporary_disk_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    """``spikec verify`` writes its work files under ``$TMPDIR``: a full one is exit 1 naming it and the fix
    (an ENOSPC from ``np.savez`` was an internal error, exit 3)."""
    art, mnt = tmp_path / "art", tmp_path / "mnt"
    argv = ["compile", str(data_dir / "netx/tiny/tiny.net"), "--target", "loihi2", "--timesteps", "5", "-o", str(art)]
    assert main(argv) == 0
    mnt.mkdir()
    spikec = Path(sys.executable).with_name("spikec")
    script = (
        f"mount -t tmpfs -o size=8k tmpfs {mnt} && head -c 4096 /dev/zero > {mnt}/filler && "
        f"TMPDIR={mnt} {spikec} verify {art} --json"
    )
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    proc = subprocess.run([*unshare, "--propagation", "private", "bash", "-c", script], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["error_type"] == "OutputError" and "\n" not in report["error"], report
    assert str(mnt) in report["error"] and "TMPDIR" in report["error"], report
