"""spikec: a neuromorphic compiler from ANN/SNN models to spiking IR and neuromorphic chips."""

from __future__ import annotations

from typing import Any

from spikec.errors import SpikecError
from spikec.ir import Edge, Graph

__version__ = "0.1.0"

__all__ = ["Edge", "Graph", "SpikecError", "__version__", "from_torch", "load_model", "save_model"]


def from_torch(module: Any, example_input: Any, *, batch_axis: int | str | bool | None = None) -> Graph:
    """Import a PyTorch ``nn.Module`` traced on ``example_input`` (see docs/torch-frontend.md).

    Imported lazily so that ``import spikec`` does not import torch.
    """
    from spikec.frontends.torch_import import from_torch as _from_torch

    return _from_torch(module, example_input, batch_axis=batch_axis)


def load_model(path: Any, **options: Any) -> Graph:
    """Read any supported model file (.onnx, .pt, .nir, .sir) into a verified graph."""
    from spikec.models import load_model as _load

    return _load(path, **options)


def save_model(graph: Graph, path: Any) -> None:
    """Write a graph as .sir or .nir (atomically)."""
    from spikec.models import save_model as _save

    _save(graph, path)
