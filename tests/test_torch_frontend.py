"""PyTorch front end: the sinabs MNIST net through from_torch and `spikec import model.pt --arch`."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import spikec
from spikec.cli import main
from spikec.errors import FrontendError
from spikec.frontends.torch_import import from_torch, import_torch_file
from spikec.interp import evaluate

REPO = Path(__file__).resolve().parents[1]


def mnist_images(data_dir: Path, n: int) -> np.ndarray:
    with gzip.open(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz") as fh:
        raw = np.frombuffer(fh.read(), np.uint8, offset=16)
    return raw.reshape(-1, 1, 28, 28)[:n].astype(np.float32)


@pytest.fixture(scope="module")
def sinabs_net(data_dir: Path) -> nn.Module:
    spec = importlib.util.spec_from_file_location("sinabs_mnist", REPO / "examples" / "sinabs_mnist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build()
    net.load_state_dict(torch.load(data_dir / "sinabs" / "mnist_params.pt", weights_only=True, map_location="cpu"))
    return net.eval()


def test_from_torch_matches_torch_on_mnist(sinabs_net: nn.Module, data_dir: Path) -> None:
    x = mnist_images(data_dir, 64)
    graph = spikec.from_torch(sinabs_net, torch.zeros(1, 1, 28, 28))
    assert graph.types[graph.inputs[0]] == (1, 28, 28)
    kinds = [n.kind for n in graph.nodes.values()]
    assert kinds.count("Conv") == 3 and kinds.count("Dense") == 2
    got = evaluate(graph, x).outputs[graph.outputs[0]]
    with torch.no_grad():
        want = sinabs_net(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max())
    assert (got.argmax(1) == want.argmax(1)).all()
    origins = {n.origin for n in graph.nodes.values() if n.kind == "Conv"}
    assert origins == {"torch:0 (Conv2d)", "torch:3 (Conv2d)", "torch:6 (Conv2d)"}


def test_cli_imports_state_dict_with_arch(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = f"{REPO / 'examples' / 'sinabs_mnist.py'}:build"
    weights = str(data_dir / "sinabs" / "mnist_params.pt")
    code = main(
        ["import", weights, "--arch", arch, "--input-shape", "1,28,28", "-o", str(tmp_path / "n.sir"), "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["inputs"] == {next(iter(report["inputs"])): [1, 28, 28]} and report["kinds"]["Conv"] == 3


def test_state_dict_without_arch_says_what_to_do(data_dir: Path) -> None:
    with pytest.raises(FrontendError, match=r"holds weights but no architecture.*--arch"):
        import_torch_file(data_dir / "sinabs" / "mnist_params.pt")


def test_pickled_module_is_refused(tmp_path: Path) -> None:
    torch.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "whole.pt")
    with pytest.raises(FrontendError, match=r"refused.*never unpickles.*state_dict"):
        import_torch_file(tmp_path / "whole.pt")


def test_pt2_archives_are_refused(tmp_path: Path) -> None:
    (tmp_path / "m.pt2").write_bytes(b"PK")
    with pytest.raises(FrontendError, match=r"refused.*weights_only=False"):
        import_torch_file(tmp_path / "m.pt2")


def test_untraceable_module_is_a_frontend_error() -> None:
    class DataDependent(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(FrontendError, match="could not trace DataDependent"):
        from_torch(DataDependent(), torch.ones(1, 3))


def test_eval_takes_a_state_dict_with_arch(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The .pt reader options are shared by every command that reads a model."""
    x = mnist_images(data_dir, 1100)
    with gzip.open(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)[1000:1100].astype(np.int64)
    np.save(tmp_path / "calib.npy", x[:200])
    np.save(tmp_path / "x.npy", x[1000:1100])
    np.save(tmp_path / "y.npy", labels)
    arch = f"{REPO / 'examples' / 'sinabs_mnist.py'}:build"
    code = main([
        "eval", str(data_dir / "sinabs" / "mnist_params.pt"), "--arch", arch, "--input-shape", "1,28,28",
        "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--calib", str(tmp_path / "calib.npy"),
        "--timesteps", "16", "--json",
    ])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["ann"]["accuracy"] >= 0.95 and report["snn"]["accuracy"] >= report["ann"]["accuracy"] - 0.03
