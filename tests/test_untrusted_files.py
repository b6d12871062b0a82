"""Hostile and broken input files, each as the command a user types meets it: one line, exit 1, nothing read
from outside the file, nothing written, no hang (issue 14's cases; docs/security.md, "Reading untrusted files").
Files that point outside themselves, what the path is, nesting, numbers and headers, the HDF5 library on
damaged files; the values inside files are in ``test_untrusted_values.py``.

Every case asserts the CLI's contract (``untrusted_helpers.refused``): exit 1, ``ok`` false, one line naming
the file (and the dataset, node or field) and what to do, the error type, and that no output was written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from untrusted_helpers import SECRET, onnx_file, refused, small_nir

from spikec.cli import main
from spikec.safe_read import load_npy


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


def test_damaged_npz_members(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The campaign found these (npz/flip): a compressed member whose deflate stream is broken (zlib.error),
    and a member needing a zip version Python does not read (NotImplementedError)."""
    model = str(Path(__file__).parent / "golden" / "lif_chain.sir")
    np.savez_compressed(tmp_path / "x.npz", input=np.arange(60.0).reshape(30, 1, 2))
    data = bytearray((tmp_path / "x.npz").read_bytes())
    start = 30 + len("input.npy") + int.from_bytes(data[28:30], "little")  # the member's compressed data
    broken = bytearray(data)
    broken[start] ^= 0xFF  # the first deflate block's header: an invalid block type
    (tmp_path / "zlib.npz").write_bytes(bytes(broken))
    version = bytearray(data)
    central = version.index(b"PK\x01\x02")
    version[central + 6 : central + 8] = (109).to_bytes(2, "little")  # "version needed to extract": 10.9
    (tmp_path / "version.npz").write_bytes(bytes(version))
    for name, pattern in {
        "zlib.npz": r"zlib\.npz: a damaged \.npz archive \(error: Error -3 while decompressing data",
        "version.npz": r"version\.npz: not a readable \.npz archive \(zip file version 10\.9\)",
    }.items():
        refused(capsys, ["run", model, "--input", str(tmp_path / name)], "FileError", pattern)


def test_a_group_where_netx_keeps_a_number(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The campaign found it (netx/hdf5-field): a layer's bias replaced by a group was a TypeError."""
    model = tmp_path / "tiny.net"
    shutil.copy(data_dir / "netx" / "tiny" / "tiny.net", model)
    model.chmod(0o644)
    with h5py.File(model, "a") as f:
        if "bias" in f["layer/1"]:
            del f["layer/1/bias"]
        f["layer/1"].create_group("bias")["x"] = 1
    refused(
        capsys,
        ["import", str(model), "-o", str(tmp_path / "o.sir")],
        "FrontendError",
        r"tiny\.net: netx layer 1 \(conv\): dataset 'bias' is a group of \['x'\], not numbers",
    )
