"""Values inside model files and options, checked as they are read, and work estimated before it is done:
each as the command a user types meets it (issue 14's cases; docs/security.md, "Reading untrusted files").
The files themselves (outside references, kinds, nesting, headers) are in ``test_untrusted_files.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from untrusted_helpers import onnx_file, refused, small_nir

from spikec.cli import main


# -- values checked as they are read ------------------------------------------------------------------------
@pytest.mark.parametrize("dt", ["0", "-1", "nan", "inf"])
def test_dt_must_be_finite_and_positive(dt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = (Path(__file__).parent / "golden" / "lif_chain.sir").read_text()
    (tmp_path / "m.sir").write_text(golden.replace("graph dt=0.001", f"graph dt={dt}"))
    refused(
        capsys,
        ["import", str(tmp_path / "m.sir"), "-o", str(tmp_path / "o.sir")],
        "ParseError",
        rf"m\.sir:2:10: dt must be a finite number of seconds per step > 0, got {dt}",
    )
    nir_model = small_nir(tmp_path / "m.nir")
    refused(
        capsys,
        ["import", str(nir_model), "--dt", dt, "-o", str(tmp_path / "o.sir")],
        "InputError",
        r"--dt must be a finite number of seconds per step > 0",
    )


def test_onnx_versions_and_nir_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    refused(
        capsys,
        ["import", str(onnx_file(tmp_path / "new.onnx", relu, [], opset=999)), "-o", str(tmp_path / "o.sir")],
        "FrontendError",
        r"new\.onnx: the model uses ONNX opset 999, newer than spikec supports",
    )
    twice = onnx.load(str(onnx_file(tmp_path / "twice.onnx", relu, [])))
    twice.opset_import.append(helper.make_opsetid("ai.onnx", 999))
    onnx.save(twice, str(tmp_path / "twice.onnx"))
    refused(
        capsys,
        ["import", str(tmp_path / "twice.onnx"), "-o", str(tmp_path / "o.sir")],
        "FrontendError",
        r"imports the default ONNX domain at several opsets \[17, 999\]",
    )
    model = small_nir(tmp_path / "v.nir")
    with h5py.File(model, "a") as f:
        del f["version"]
        f["version"] = "garbage!!"
    refused(
        capsys,
        ["import", str(model), "-o", str(tmp_path / "o.sir")],
        "FrontendError",
        r"v\.nir: NIR version 'garbage!!' is not a version number",
    )
    model = small_nir(tmp_path / "s.nir")
    with h5py.File(model, "a") as f:
        del f["node/nodes/input/shape"]
        f["node/nodes/input/shape"] = np.array([1.5])
    refused(
        capsys,
        ["import", str(model), "-o", str(tmp_path / "o.sir")],
        "FrontendError",
        r"s\.nir: NIR node 'input' \(Input\): field 'shape' = \[1\.5\] must hold integers",
    )


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (
            ("layer/1/stride", np.array([0, 0])),
            r"netx layer 1 \(conv\): dataset 'stride' = \[0, 0\] must hold integers >= 1",
        ),
        (("layer/1/weight", "abc"), r"netx layer 1 \(conv\): dataset 'weight' is 'abc', not numbers"),
        (("layer/2/neuron/vThMant", "x"), r"netx layer 2 \(conv\): neuron field 'vThMant' is 'x', not one number"),
        (
            ("layer/0/shape", np.array([3, -16, 16])),
            r"netx layer 0 \(input\): dataset 'shape' = \[3, -16, 16\] must hold",
        ),
    ],
)
def test_netx_fields_of_the_wrong_type(
    edit: tuple[str, Any], pattern: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "tiny.net"
    shutil.copy(data_dir / "netx" / "tiny" / "tiny.net", model)
    model.chmod(0o644)
    name, value = edit
    with h5py.File(model, "a") as f:
        del f[name]
        f[name] = value
    refused(capsys, ["import", str(model), "-o", str(tmp_path / "o.sir")], "FrontendError", rf"tiny\.net: {pattern}")


def test_option_values_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(Path(__file__).parent / "golden" / "lif_chain.sir")
    refused(
        capsys,
        ["partition", model, "--target", "loihi2", "--weight-bits", "-1"],
        "InputError",
        r"^--weight-bits must be >= 0, got -1$",
    )
    refused(
        capsys,
        ["partition", model, "--target", "loihi2", "--search", "-5"],
        "InputError",
        r"^--search must be >= 0, got -5$",
    )
    art = tmp_path / "art"
    assert main(["compile", model, "--timesteps", "4", "-o", str(art)]) == 0
    capsys.readouterr()
    refused(capsys, ["verify", str(art), "--steps", "0"], "InputError", r"^--steps must be >= 1, got 0$")
    report = json.loads((art / "report.json").read_text())
    (art / "report.json").write_text(json.dumps({**report, "steps": "abc"}))
    refused(capsys, ["verify", str(art)], "InputError", r"report\.json: 'steps' is 'abc', not an integer >= 1")
    (art / "report.json").write_text("[" * 100000 + "]" * 100000)
    refused(capsys, ["verify", str(art)], "FileError", r"report\.json: is not valid JSON \(RecursionError")


@pytest.fixture(scope="module")
def exported_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN classifier (3 classes) written by torch's ONNX exporter."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3)
    )
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    torch.onnx.export(model.eval(), (torch.zeros(1, 1, 6, 6),), path, dynamo=True, external_data=False)
    return path


@pytest.mark.parametrize("label", [99, -1])
def test_eval_labels_outside_the_classes(
    label: int, exported_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = exported_cnn
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((20, 1, 6, 6)))
    labels = rng.integers(0, 3, 20)
    labels[7] = label
    np.save(tmp_path / "y.npy", labels)
    argv = [
        "eval",
        str(model),
        "--data",
        str(tmp_path / "x.npy"),
        "--labels",
        str(tmp_path / "y.npy"),
        "--timesteps",
        "8",
    ]
    refused(
        capsys,
        argv,
        "InputError",
        rf"--labels .*y\.npy: label {label} \(entry 7\) is not a class of the model, "
        r"whose output has \d+ classes",
    )


# -- .pt state_dicts and --arch ------------------------------------------------------------------------------
ARCH = """import torch.nn as nn
raise_on_import = False


def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def raising():
    raise ValueError("boom")


def not_a_module():
    return 42
"""


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("empty", r"w\.pt: the file is empty: not a PyTorch state_dict"),
        (
            "shape",
            r"w\.pt: Sequential fails on an example input of shape \(1, 5\): RuntimeError: .*check the input shape",
        ),
        ("missing", r"--arch .*nope\.py: no such file"),
        ("module", r"--arch 'no_such_pkg\.mod:build': no module named 'no_such_pkg'"),
        ("raising", r"--arch '.*arch\.py:raising': calling it raised ValueError: boom"),
        ("not_module", r"--arch '.*arch\.py:not_a_module': returned a int, not a torch\.nn\.Module"),
        ("syntax", r"--arch '.*bad\.py:build': .*bad\.py:1: syntax error"),
    ],
)
def test_pt_problems(case: str, pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "arch.py").write_text(ARCH)
    (tmp_path / "bad.py").write_text("def build(:\n")
    weights = tmp_path / "w.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).state_dict(), weights)
    arch = {
        "missing": f"{tmp_path / 'nope.py'}:build",
        "module": "no_such_pkg.mod:build",
        "raising": f"{tmp_path / 'arch.py'}:raising",
        "not_module": f"{tmp_path / 'arch.py'}:not_a_module",
        "syntax": f"{tmp_path / 'bad.py'}:build",
    }.get(case, f"{tmp_path / 'arch.py'}:build")
    if case == "empty":
        weights.write_bytes(b"")
    shape = "5" if case == "shape" else "4"
    out = tmp_path / "o.sir"
    argv = ["import", str(weights), "--arch", arch, "--input-shape", shape, "-o", str(out)]
    refused(capsys, argv, "FileError" if case == "missing" else "FrontendError", pattern, output=out)


# -- resources ---------------------------------------------------------------------------------------------
def test_a_tiny_onnx_asking_for_huge_work_is_refused_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reps = numpy_helper.from_array(np.array([1, 2 * 10**8], np.int64), "reps")
    path = onnx_file(tmp_path / "tile.onnx", [helper.make_node("Tile", ["x", "reps"], ["y"])], [reps])
    assert path.stat().st_size < 200
    start = time.perf_counter()
    refused(
        capsys,
        ["import", str(path), "-o", str(tmp_path / "o.sir")],
        "ResourceLimit",
        r"tile\.onnx: ONNX node 'Tile' \(Tile\): repeating an activation 200,000,000 times makes a Concat of "
        r"200,000,000 inputs \(about 37\.3 GB",
    )
    const = numpy_helper.from_array(np.ones((1, 100), np.float32), "c")
    nodes = [helper.make_node("Tile", ["c", "reps"], ["t"]), helper.make_node("Add", ["x", "t"], ["y"])]
    path = onnx_file(tmp_path / "fold.onnx", nodes, [reps, const])
    refused(
        capsys,
        ["import", str(path), "-o", str(tmp_path / "o.sir")],
        "ResourceLimit",
        r"fold\.onnx: ONNX node 'Tile' \(Tile\): folding Tile into a constant of 20,000,000,000 values",
    )
    assert time.perf_counter() - start < 20


def test_runs_refuse_before_allocating(
    exported_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = exported_cnn
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).random((4, 1, 6, 6)))
    argv = [
        "compile",
        str(model),
        "--calib",
        str(tmp_path / "calib.npy"),
        "--timesteps",
        "1000000000",
        "-o",
        str(tmp_path / "art"),
    ]
    refused(
        capsys,
        argv,
        "ResourceLimit",
        r"a run of 1,000,000,000 steps × 4 samples .* needs about [\d.]+ [GT]B of "
        r"memory, more than the .*; lower --timesteps \(or --batch-size\)",
        output=tmp_path / "art",
    )
    golden = str(Path(__file__).parent / "golden" / "lif_chain.sir")
    np.save(tmp_path / "in.npy", np.ones((3, 1, 2)))
    monkeypatch.setenv("SPIKEC_MEMORY_LIMIT", "1G")
    refused(
        capsys,
        ["run", golden, "--input", str(tmp_path / "in.npy"), "--steps", "100000000"],
        "ResourceLimit",
        r"a run of 100,000,000 steps × 1 sample .* needs about 2\.24 GB of memory, more than the 1 GB "
        r"\$SPIKEC_MEMORY_LIMIT allows; run fewer --steps",
    )
