"""Lava's array layout, for ``spikec run --layout loihi2``: arrays as lava-dl users hold them.

A Lava process for a spikec tensor of shape (C, H, W) has shape (X, Y, C) = (W, H, C): spikec's axes
reversed (netx reads a layer's ``shape[::-1]``). A time series puts time last, (X, Y, C, T), as a
``RingBuffer``'s data and a sink's or Monitor's output do, and has no batch axis (Lava runs one
sample). An array of the process shape alone is a constant over every step: what a netx LIF input
layer takes as its bias (lava-dl sets ``bias_mant`` once). Both directions are the full reversal of
spikec's (T, *shape) axes, so a spikec array ``x`` of one sample is ``x.T`` in Lava's layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from spikec.errors import InputError
from spikec.ir.graph import Graph


def from_lava(name: str, array: np.ndarray, shape: tuple[int, ...], steps: int | None) -> np.ndarray:
    """Lava's ``(*reversed(shape))`` (held for ``steps`` steps) or ``(*reversed(shape), T)`` → spikec's
    ``(T, 1, *shape)``."""
    lava = tuple(reversed(shape))
    if array.shape == lava:
        if steps is None:
            raise InputError(
                f"input '{name}' has Lava's shape {lava} without a time axis (a constant, such as a bias): "
                f"give --steps to hold it that long"
            )
        array = np.broadcast_to(array[..., None], (*lava, steps))
    elif array.ndim != len(lava) + 1 or array.shape[:-1] != lava:
        raise InputError(
            f"input '{name}' has shape {array.shape}; in Lava's layout (--layout loihi2) the graph's input "
            f"{shape} is {lava} (a constant) or ({', '.join(map(str, lava))}, T) (time last, one sample)"
        )
    return np.ascontiguousarray(np.transpose(array)[:, None])


def inputs_from_lava(
    graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray], steps: int | None
) -> dict[str, np.ndarray]:
    """Every input of ``graph`` from Lava's layout to spikec's (T, 1, *shape) (see ``from_lava``)."""
    if not graph.is_spiking:
        raise InputError("--layout loihi2 applies to spiking graphs (Lava runs steps); this graph is an ANN")
    if not isinstance(inputs, Mapping):
        if len(graph.inputs) != 1:
            raise InputError(f"the graph has inputs {list(graph.inputs)}: pass one array per input (name=file.npy)")
        inputs = {graph.inputs[0]: inputs}
    return {
        name: from_lava(name, np.asarray(a), graph.types[name], steps) if name in graph.types else np.asarray(a)
        for name, a in inputs.items()
    }  # names that are not inputs are left for the interpreter's own error


def to_lava(array: np.ndarray) -> np.ndarray:
    """spikec's (T, 1, *shape) → Lava's (*reversed(shape), T)."""
    if array.ndim < 2 or array.shape[1] != 1:
        raise InputError(f"Lava's layout holds one sample; this array has shape {array.shape} (T, batch, ...)")
    return np.ascontiguousarray(np.transpose(array[:, 0]))
