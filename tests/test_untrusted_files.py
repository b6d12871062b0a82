"""Hostile and broken input files, each as the command a user types meets it: one line, exit 1, nothing read
from outside the file, nothing written, no hang (issue 14's cases; docs/security.md, "Reading untrusted files").

Every case asserts the CLI's contract: exit 1, ``ok`` false, one line naming the file (and the dataset,
node or field) and what to do, the error type, and that no output was written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np
import onnx
import pytest
import torch
from fuzz.oracle import time_limit
from onnx import TensorProto, helper, numpy_helper

from spikec.cli import main
from spikec.safe_read import load_npy

SECRET = b"TOP-SECRET-BYTES" * 8


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], error_type: str, pattern: str, *, output: Path | None = None
) -> str:
    """Run the CLI and assert the refusal: exit 1, one line matching ``pattern``, nothing at ``output``."""
    with time_limit(60):
        code, report = run_cli(capsys, *argv)
    assert code == 1 and report["ok"] is False, report
    assert report["error_type"] == error_type, report
    lines = report["error"].split("\n")  # one line; a ParseError adds the source line and a caret under it
    assert len(lines) == 1 or (error_type == "ParseError" and len(lines) == 3 and lines[2].strip() == "^"), lines
    assert re.search(pattern, lines[0]), report["error"]
    if output is not None:
        assert not output.exists() and not list(output.parent.glob(f".{output.name}*")), "an output was written"
    return str(report["error"])


def small_nir(path: Path) -> Path:
    """Input → Affine → Output, written by the nir package."""
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([2])),
        nir.Affine(np.ones((3, 2), np.float32), np.zeros(3, np.float32)),
        nir.Output(np.array([3])),
    )
    nir.write(path, graph)
    return path


def onnx_file(path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], opset: int = 17) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])
    model = helper.make_model(
        helper.make_graph(nodes, "m", [x], [y], inits), opset_imports=[helper.make_opsetid("", opset)]
    )
    path.write_bytes(model.SerializeToString())
    return path


# -- files that point outside themselves -------------------------------------------------------------------
def test_hdf5_external_storage_never_reads_the_other_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A NIR file whose weight dataset keeps its raw data in another file (``H5Pset_external``): before, import
    copied that file's bytes into the output weights, exit 0."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    model = small_nir(tmp_path / "model.nir")
    with h5py.File(model, "a") as f:
        del f["node/nodes/affine/weight"]
        f["node/nodes/affine"].create_dataset("weight", shape=(3, 2), dtype="<f4", external=[(str(secret), 0, 24)])
    out = tmp_path / "out.sir"
    refused(
        capsys,
        ["import", str(model), "-o", str(out)],
        "UnsafeFile",
        r"model\.nir: dataset '/node/nodes/affine/weight' stores its data in the external file '.*secret\.bin': "
        r"spikec reads nothing outside the file",
        output=out,
    )
    assert not any(SECRET[:16] in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != secret)


@pytest.mark.parametrize("kind", ["virtual", "external link", "soft link", "filter plugin"])
def test_hdf5_references_out_of_the_file_are_refused(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = small_nir(tmp_path / "model.nir")
    other = small_nir(tmp_path / "other.nir")
    with h5py.File(model, "a") as f:
        group = f["node/nodes/affine"]
        del group["weight"]
        if kind == "virtual":
            layout = h5py.VirtualLayout(shape=(3, 2), dtype="f4")
            layout[:] = h5py.VirtualSource(str(other), "node/nodes/affine/weight", shape=(3, 2))
            group.create_virtual_dataset("weight", layout)
        elif kind == "external link":
            group["weight"] = h5py.ExternalLink(str(other), "/node/nodes/affine/weight")
        elif kind == "soft link":
            group["weight"] = h5py.SoftLink("/node/nodes/affine/bias")
        else:
            group.create_dataset(
                "weight", data=np.ones((3, 2), "f4"), chunks=True, compression=307, allow_unknown_filter=True
            )
    expected = {
        "virtual": r"'/node/nodes/affine/weight' is a virtual dataset",
        "external link": r"'/node/nodes/affine/weight' is an external link to .* in file '.*other\.nir'",
        "soft link": r"'/node/nodes/affine/weight' is a soft link",
        "filter plugin": r"'/node/nodes/affine/weight' uses HDF5 filter 307, a plugin spikec does not load",
    }[kind]
    refused(capsys, ["import", str(model), "-o", str(tmp_path / "o.sir")], "UnsafeFile", expected)


def test_netx_external_storage_is_refused(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET * 100)
    model = tmp_path / "tiny.net"
    shutil.copy(data_dir / "netx" / "tiny" / "tiny.net", model)
    model.chmod(0o644)
    with h5py.File(model, "a") as f:
        shape = f["layer/1/weight"].shape
        del f["layer/1/weight"]
        f["layer/1"].create_dataset(
            "weight", shape=shape, dtype="f4", external=[(str(secret), 0, int(np.prod(shape)) * 4)]
        )
    refused(
        capsys,
        ["import", str(model), "-o", str(tmp_path / "o.sir")],
        "UnsafeFile",
        r"tiny\.net: dataset '/layer/1/weight' stores its data in the external file",
    )


@pytest.mark.parametrize("location", ["../secret.bin", "/abs", "link.bin"])
def test_onnx_external_data_outside_the_model_folder(
    location: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    path = onnx_file(folder / "m.onnx", [helper.make_node("MatMul", ["x", "W"], ["y"])], [weight])
    model = onnx.load(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, location="w.data", size_threshold=0)
    assert main(["import", str(path), "-o", str(tmp_path / "ok.sir")]) == 0  # beside the model: read
    capsys.readouterr()
    location = str(secret) if location == "/abs" else location
    if location == "link.bin":
        (folder / "link.bin").symlink_to(secret)
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(model, str(path))
    expected = "must be a file name relative" if location.startswith("/") else "outside the model's folder"
    refused(capsys, ["import", str(path), "-o", str(tmp_path / "o.sir")], "UnsafeFile", rf"tensor 'W' .*{expected}")


# -- what the path is ---------------------------------------------------------------------------------------
def test_a_directory_fifo_or_device_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dir.onnx").mkdir()
    os.mkfifo(tmp_path / "pipe.sir")
    (tmp_path / "zero.onnx").symlink_to("/dev/zero")
    (tmp_path / "broken.nir").symlink_to(tmp_path / "gone.nir")
    cases = {
        "dir.onnx": r"dir\.onnx: is a directory, not a model file",
        "pipe.sir": r"pipe\.sir: is a named pipe \(FIFO\), not a model file",  # it used to block forever
        "zero.onnx": r"zero\.onnx: is a character device, not a model file",  # it used to fill the memory
        "broken.nir": r"broken\.nir: a broken link \(to .*gone\.nir\)",
        "missing.sir": r"missing\.sir: no such file$",
    }
    for name, pattern in cases.items():
        start = time.perf_counter()
        refused(capsys, ["import", str(tmp_path / name), "-o", str(tmp_path / "o.sir")], "FileError", pattern)
        assert time.perf_counter() - start < 10


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    """Run as a user whose permissions apply (root keeps reading through them: drop its override)."""
    model = tmp_path / "locked.sir"
    shutil.copy(Path(__file__).parent / "golden" / "lif_chain.sir", model)
    model.chmod(0)
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    argv = [*prefix, sys.executable, "-m", "spikec", "import", str(model), "-o", str(tmp_path / "o.sir")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert re.search(
        r"error: .*locked\.sir: cannot be read: permission denied; check the file's permissions\n$", result.stderr
    ), result.stderr


# -- nesting, numbers, headers -----------------------------------------------------------------------------
def test_deep_nesting_and_huge_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inner = "graph dt=0.001 { %i = Input(shape=[1]) %o = Output() %i -> %o }"
    for _ in range(3000):
        inner = (
            f"graph dt=0.001 {{ %i = Input(shape=[1]) %s = Subgraph(graph={inner}) %o = Output() %i -> %s %s -> %o }}"
        )
    (tmp_path / "deep.sir").write_text(f"sir 1\n{inner}\n")
    refused(
        capsys,
        ["import", str(tmp_path / "deep.sir"), "-o", str(tmp_path / "o.sir")],
        "ParseError",
        r"deep\.sir:2:\d+: graphs nested more than 64 deep",
    )
    big = "9" * 5000
    (tmp_path / "big.sir").write_text(f"sir 1\ngraph dt=0.001 {{ %i = Input(shape=[{big}]) %o = Output() %i -> %o }}\n")
    refused(
        capsys,
        ["import", str(tmp_path / "big.sir"), "-o", str(tmp_path / "o.sir")],
        "ParseError",
        r"big\.sir:2:\d+: expected an integer, got 999999999999\.\.\. \(5000 characters\) \(outside the int64",
    )


def test_deeply_nested_nir_graphs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NIR graphs nested in each other as nir.write lays them out (a RecursionError before): refused at the
    HDF5 walk's depth bound (1,500 graphs: 3,000 groups) or at the NIR nesting bound (70 graphs)."""
    for depth, error_type, pattern in [
        (1500, "FileError", r"deep\.nir: groups nested more than 512 deep"),
        (70, "FrontendError", r"deep\.nir: NIR graphs nested more than 64 deep"),
    ]:
        with h5py.File(tmp_path / "deep.nir", "w") as f:  # nir.write's layout, written by hand: nir recurses too
            f["version"] = "1.0.8"
            group = f.create_group("node")
            for _ in range(depth):
                group["type"] = "NIRGraph"
                group["edges"] = np.array([["input", "g"], ["g", "output"]], dtype="S")
                nodes = group.create_group("nodes")
                for port in ("input", "output"):
                    nodes.create_group(port)["type"] = port.capitalize()
                    nodes[port]["shape"] = np.array([2])
                group = nodes.create_group("g")
            group["type"] = "Identity"
        refused(capsys, ["import", str(tmp_path / "deep.nir"), "-o", str(tmp_path / "o.sir")], error_type, pattern)


def test_npy_files_are_checked_before_allocation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = Path(__file__).parent / "golden" / "lif_chain.sir"
    with open(tmp_path / "huge.npy", "wb") as fh:  # 100 bytes declaring 8 TB: a MemoryError before
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    good = np.arange(6.0).reshape(3, 1, 2)
    np.save(tmp_path / "good.npy", good)
    data = (tmp_path / "good.npy").read_bytes()
    (tmp_path / "garbled.npy").write_bytes(data[:10] + b"{'descr': <f8, garbage" + data[32:])
    np.savez(tmp_path / "x.npz", input=np.ones((50, 1, 2)))
    whole = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(whole[: len(whole) // 2])
    cases = {
        "huge.npy": r"--input .*huge\.npy: truncated: its header declares <f8\[1000000000000\] \(7\.28 TB\), the file",
        "garbled.npy": r"--input .*garbled\.npy: its \.npy header is garbled",
        "trunc.npz": r"--input .*trunc\.npz: not a readable \.npz archive \(File is not a zip file\); is it truncated",
    }
    for name, pattern in cases.items():
        argv = ["run", str(model), "--input", str(tmp_path / name), "-o", str(tmp_path / "o.npz")]
        refused(capsys, argv, "FileError", pattern, output=tmp_path / "o.npz")
    np.testing.assert_array_equal(load_npy(tmp_path / "good.npy"), good)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused(
        capsys,
        ["run", str(model), "--input", str(tmp_path / "obj.npy")],
        "FileError",
        r"obj\.npy: holds Python objects \(dtype object\), which spikec never unpickles",
    )


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


# -- the HDF5 library on damaged files ---------------------------------------------------------------------
def test_a_file_libhdf5_loops_on_is_stopped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The campaign found it (nir/splice/12: bytes spliced into a nir.write file): libhdf5 2.0 loops forever
    reading the version string from the damaged global heap. The reader runs in a child process, killed
    after its time (10 s plus 1 s per 20 MB; 1 s here)."""
    from spikec.safe_read import hdf5

    monkeypatch.setattr(hdf5, "MIN_SECONDS", 1.0)
    model = Path(__file__).parent / "data" / "untrusted" / "hdf5-heap-loop.nir"
    start = time.perf_counter()
    refused(
        capsys,
        ["import", str(model), "-o", "never.sir"],
        "FileError",
        r"hdf5-heap-loop\.nir: reading it did not finish in 1 s \(the HDF5 library loops on some damaged files\)",
    )
    assert time.perf_counter() - start < 15 and not Path("never.sir").exists()


def test_a_reader_that_crashes_is_one_line() -> None:
    """A C library that dies on a file (a signal) kills the child, not spikec."""
    import signal

    from spikec.errors import FileError, UnsafeFile
    from spikec.safe_read.isolate import isolated

    def crash() -> None:
        os.kill(os.getpid(), signal.SIGSEGV)

    with pytest.raises(FileError, match=r"^m\.nir: the HDF5 library crashed \(SIGSEGV\) reading it"):
        isolated(crash, seconds=10, name="m.nir", expect="NIR file")

    def refuse() -> None:
        raise UnsafeFile("m.nir: dataset '/x' is a soft link")

    with pytest.raises(UnsafeFile, match=r"^m\.nir: dataset '/x' is a soft link$"):
        isolated(refuse, seconds=10, name="m.nir", expect="NIR file")
    value = {"a": np.arange(3), "s": "text", "n": np.float32(1.5), "strings": np.array(["x", "y"], dtype=object)}
    back = isolated(lambda: value, seconds=10, name="m.nir", expect="NIR file")
    assert back["s"] == "text" and back["n"] == np.float32(1.5) and back["n"].dtype == np.float32
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["strings"].tolist() == ["x", "y"]


def test_onnx_text_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """atheris found these: protobuf hands back a name that is not UTF-8 as bytes (graph name), or the
    importer decodes a text attribute (MaxPool's auto_pad) deep inside a handler."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])
    pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="NOTSET")
    model = helper.make_model(
        helper.make_graph([pool], "main_gXaph", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    data = model.SerializeToString()
    cases = {"name": (b"main_gXaph", b"main_g\xf8aph"), "attr": (b"NOTSET", b"NOTSE\xa4")}
    for name, (good, bad) in cases.items():
        (tmp_path / f"{name}.onnx").write_bytes(data.replace(good, bad))
        pattern = rf"{name}\.onnx: a name or text in the model is not UTF-8 \({re.escape(repr(bad))}\): the file"
        argv = ["import", str(tmp_path / f"{name}.onnx"), "-o", str(tmp_path / "o.sir")]
        refused(capsys, argv, "FrontendError", pattern)


def test_values_from_a_file_are_quoted_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The campaign found it (nir/hdf5-field/34): a NIR node's type replaced by a 5-d array made a message of
    many lines (numpy's repr); values from files are quoted on one short line."""
    model = small_nir(tmp_path / "m.nir")
    with h5py.File(model, "a") as f:
        del f["node/nodes/affine/type"]
        f["node/nodes/affine/type"] = np.zeros((2, 3, 4, 5, 6))
    error = refused(
        capsys,
        ["import", str(model), "-o", str(tmp_path / "o.sir")],
        "FrontendError",
        r"m\.nir: NIR node 'affine' has type \[\[\[\[\[0\.0, 0\.0, .*\.\.\., not a type name$",
    )
    assert len(error) < 300
