"""The one ``.npy``/``.npz`` loader (spikec.arrays) that run, compile, eval and the targets' verify use: numeric
arrays only (never unpickled), feeds by input name, and errors that name the option and the file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from spikec.arrays import load_array, load_arrays, load_feeds
from spikec.errors import FileError, InputError
from spikec.ir import LIF, Graph, Input, Output

REPO = Path(__file__).resolve().parents[1]


def _two_inputs() -> Graph:
    nodes = {"a": Input(shape=(3,)), "b": Input(shape=(3,)), "lif": LIF(tau=np.array(0.01)), "y": Output()}
    return Graph(nodes, [("a", "lif"), ("b", "lif"), ("lif", "y")])


def test_npy_and_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(6.0).reshape(2, 3))
    np.savez(tmp_path / "xs.npz", a=np.ones(3), b=np.zeros((2, 2), np.int8))
    np.testing.assert_array_equal(load_arrays(tmp_path / "x.npy"), np.arange(6.0).reshape(2, 3))
    both = load_arrays(tmp_path / "xs.npz")
    assert isinstance(both, dict) and sorted(both) == ["a", "b"] and both["b"].dtype == np.int8
    assert load_array(tmp_path / "x.npy", "--calib").shape == (2, 3)
    with pytest.raises(InputError, match=r"^--calib .*xs\.npz: give one array as \.npy, not an \.npz archive$"):
        load_array(tmp_path / "xs.npz", "--calib")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"^--data .*bad\.npy: no such file$"),
        ("pickle", r"^--data .*bad\.npy: holds Python objects \(dtype object\), which spikec never unpickles"),
        ("text", r"^--data .*bad\.npy: not a numpy \.npy/\.npz file"),
    ],
)
def test_bad_files_name_option_and_file(content: str | None, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    if content == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content == "text":
        path.write_text("1, 2, 3\n")
    with pytest.raises(FileError, match=message):
        load_arrays(path, "--data")


def test_feeds_by_input_name(tmp_path: Path) -> None:
    graph = _two_inputs()
    np.savez(tmp_path / "ab.npz", a=np.ones((5, 3)), b=np.zeros((5, 2, 3)))
    with pytest.raises(InputError, match=r"differ in length or batch"):
        load_feeds(graph, tmp_path / "ab.npz")
    np.savez(tmp_path / "ab.npz", a=np.ones((5, 3)), b=np.zeros((5, 3)))
    feeds = load_feeds(graph, tmp_path / "ab.npz")
    assert {k: v.shape for k, v in feeds.items()} == {"a": (5, 1, 3), "b": (5, 1, 3)}  # (T, *shape): a batch of one
    np.save(tmp_path / "a.npy", np.ones((5, 3)))
    with pytest.raises(InputError, match=r"^--inputs .*a\.npy: the graph has inputs \['a', 'b'\]: pass one array"):
        load_feeds(graph, tmp_path / "a.npy")
    np.savez(tmp_path / "wrong.npz", a=np.ones((5, 4)), b=np.ones((5, 3)))
    with pytest.raises(InputError, match=r"^--inputs .*wrong\.npz: input 'a' has shape \(5, 4\), but the graph"):
        load_feeds(graph, tmp_path / "wrong.npz")


def test_no_other_loader_in_the_commands() -> None:
    """The commands and the compile driver read arrays only through spikec.arrays."""
    files = [*REPO.glob("spikec/cli*.py"), REPO / "spikec/compiler.py", REPO / "spikec/methods.py"]
    found = [f"{f.name}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
             if re.search(r"np\.load\(", line)]  # fmt: skip
    assert found == []
