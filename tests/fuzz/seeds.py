"""Valid files of each format spikec reads, written by the tools that make them in the wild.

``write_seeds(folder)`` writes every seed once and returns them by format. Each ``Seed`` knows how the
user's command reads it (``read``): models through ``spikec.models.load_model`` (a ``.pt`` with its
``--arch`` and ``--input-shape``), arrays through ``spikec.arrays.load_arrays``, an artifact's
``report.json`` as ``spikec verify`` does.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ARCH = """import torch.nn as nn


def build():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
"""


@dataclasses.dataclass(frozen=True)
class Seed:
    """A valid file of ``format`` and how a command reads it (``read(path)``)."""

    format: str
    path: Path
    read: Callable[[Path], Any]


def read_model(path: Path, **options: Any) -> Any:
    from spikec.models import load_model

    return load_model(path, **options)


def read_arrays(path: Path) -> Any:
    from spikec.arrays import load_arrays

    return load_arrays(path, "--input")


def read_report(path: Path) -> Any:
    """``report.json`` as ``spikec verify`` reads it before dispatching to the target."""
    from spikec.cli_verify import load_report

    return load_report(path.parent)


def _sir(folder: Path) -> Path:
    from spikec.ir import LIF, Dense, Graph, Input, Output, Subgraph
    from spikec.text import save_sir

    rng = np.random.default_rng(0)
    inner = Graph(
        {"i": Input(shape=(3,)), "lif": LIF(tau=np.full(3, 0.02), v_threshold=np.array(1.0)), "o": Output()},
        [("i", "lif"), ("lif", "o")],
        dt=1e-3,
    )
    nodes = {
        "input": Input(shape=(4,)),
        "fc": Dense(weight=rng.normal(size=(3, 4)).astype(np.float32), bias=np.zeros(3, np.float32)),
        "sub": Subgraph(graph=inner),
        "out": Output(),
    }
    graph = Graph(nodes, [("input", "fc"), ("fc", "sub"), ("sub", "out")], dt=1e-3)
    path = folder / "chain.sir"
    save_sir(graph, path, inline_limit=1 << 20)
    return path


def _sir_sidecar(folder: Path) -> Path:
    from spikec.ir import LIF, Dense, Graph, Input, Output
    from spikec.text import save_sir

    rng = np.random.default_rng(1)
    nodes = {
        "input": Input(shape=(8,)),
        "fc": Dense(weight=rng.normal(size=(6, 8)).astype(np.float32), bias=rng.normal(size=6)),
        "lif": LIF(tau=np.full(6, 0.01), v_threshold=np.ones(6)),
        "out": Output(),
    }
    path = folder / "side" / "net.sir"
    path.parent.mkdir()
    save_sir(Graph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "out")]), path, inline_limit=4)
    return path.with_suffix(".npz")  # the sidecar is what gets damaged; the .sir beside it is read


def _nir(folder: Path) -> Path:
    import nir

    rng = np.random.default_rng(2)

    def r(*shape: int) -> np.ndarray:
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)

    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([6])),
            "li": nir.LI(tau=r(6) * 1e-2, r=r(6), v_leak=np.zeros(6, np.float32)),
            "output": nir.Output(output_type=np.array([6])),
        },
        edges=[("input", "li"), ("li", "output")],
    )
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1, 6, 6])),
            "conv": nir.Conv2d(
                input_shape=(6, 6), weight=r(2, 1, 3, 3), stride=1, padding=1, dilation=1, groups=1, bias=r(2)
            ),
            "if": nir.IF(r=r(2, 6, 6), v_threshold=r(2, 6, 6), v_reset=np.zeros((2, 6, 6), np.float32)),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
            "fc": nir.Affine(weight=r(6, 18), bias=r(6)),
            "lif": nir.LIF(
                tau=r(6) * 1e-2,
                r=r(6),
                v_leak=np.zeros(6, np.float32),
                v_threshold=r(6),
                v_reset=np.zeros(6, np.float32),
            ),
            "sub": sub,
            "output": nir.Output(output_type=np.array([6])),
        },
        edges=[
            ("input", "conv"),
            ("conv", "if"),
            ("if", "pool"),
            ("pool", "flat"),
            ("flat", "fc"),
            ("fc", "lif"),
            ("lif", "sub"),
            ("sub", "output"),
        ],
    )
    path = folder / "net.nir"
    nir.write(path, graph)
    return path


def _netx(folder: Path) -> Path:
    path = folder / "tiny.net"
    shutil.copy(SHARED / "netx" / "tiny" / "tiny.net", path)  # lava-dl's own test network
    return path


def _onnx(folder: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 5),
    )
    path = folder / "cnn.onnx"
    torch.onnx.export(model.eval(), (torch.zeros(1, 1, 8, 8),), path, dynamo=True, external_data=False)
    return path


def _npy(folder: Path) -> Path:
    path = folder / "x.npy"
    np.save(path, np.random.default_rng(3).normal(size=(5, 2, 4)).astype(np.float32))
    return path


def _npz(folder: Path) -> Path:
    path = folder / "xs.npz"
    rng = np.random.default_rng(4)
    np.savez_compressed(path, a=rng.normal(size=(5, 3)), b=rng.integers(0, 9, size=(5, 2), dtype=np.int16))
    return path


def _pt(folder: Path) -> Path:
    import importlib.util

    import torch

    arch = folder / "arch.py"
    arch.write_text(ARCH, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("fuzz_arch", arch)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    path = folder / "w.pt"
    torch.save(module.build().state_dict(), path)
    return path


def _report(folder: Path) -> Path:
    """The ``report.json`` of an artifact ``spikec compile`` wrote (interp target)."""
    import contextlib
    import io

    from spikec.cli import main

    model = folder / "model"
    model.mkdir()
    out = folder / "artifact"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["compile", str(_sir_sidecar(model).with_suffix(".sir")), "--timesteps", "4", "-o", str(out), "--json"]
        )
    assert code == 0
    return out / "report.json"


WRITERS: dict[str, Callable[[Path], Path]] = {
    "sir": _sir,
    "sir-sidecar": _sir_sidecar,
    "nir": _nir,
    "netx": _netx,
    "onnx": _onnx,
    "npy": _npy,
    "npz": _npz,
    "pt": _pt,
    "report": _report,
}


def reader(fmt: str, path: Path) -> Callable[[Path], Any]:
    """How the command a user types reads a file of ``fmt`` (the mutated copy lives where ``path`` does)."""
    if fmt == "sir-sidecar":
        return lambda p: read_model(p.with_suffix(".sir"))
    if fmt == "pt":
        return lambda p: read_model(p, arch=f"{p.parent / 'arch.py'}:build", input_shape=(1, 6, 6))
    if fmt in ("npy", "npz"):
        return read_arrays
    if fmt == "report":
        return read_report
    return read_model


def write_seeds(folder: Path, formats: list[str] | None = None) -> dict[str, Seed]:
    """Every seed (or those of ``formats``) written under ``folder``, each in its own sub-folder."""
    seeds = {}
    for fmt in formats or list(WRITERS):
        sub = folder / fmt
        sub.mkdir(parents=True, exist_ok=True)
        path = WRITERS[fmt](sub)
        seeds[fmt] = Seed(fmt, path, reader(fmt, path))
    return seeds
