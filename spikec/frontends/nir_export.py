"""Export SIR graphs to NIR 1.0.8 (through the ``nir`` package, so the file is to spec).

Kinds NIR cannot express (MaxPool, ReLU, Clip, Reshape, Transpose, Concat, and neurons with a
subtractive or no reset) fail with an error naming the node and what to do. ``Add`` becomes an
``Identity`` (NIR sums a node's inputs). The file is written with h5py in nir's own layout
(``nir.write`` cannot write Identity in 1.0.8). The graph's ``dt`` goes into the graph
metadata so a spikec round trip keeps it. Node names are the SIR names, which NIR takes as they are:
a NIR name SIR could not hold was renamed on import (``nir_graph.sir_names``; ``origin`` keeps it),
and the names in reports are the names in the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

from spikec.errors import SpikecError
from spikec.fileio import write_hdf5
from spikec.ir import ann, snn, structure
from spikec.ir.graph import Graph
from spikec.ir.node import Node, Shape
from spikec.registry import Registry

Exporter = Callable[[Any, Shape], "nir.NIRNode | dict[str, Any]"]
NIR_EXPORTERS: Registry[type[Node], Exporter] = Registry("NIR exporter")


class ExportError(SpikecError):
    """A node has no NIR equivalent."""


def exporter(*kinds: type[Node]) -> Callable[[Exporter], Exporter]:
    return NIR_EXPORTERS.register(*kinds)


def _full(value: np.ndarray, shape: Shape) -> np.ndarray:
    """NIR wants neuron parameters per neuron: broadcast (keeping dtype)."""
    return np.array(np.broadcast_to(value, shape))


@exporter(structure.Input)
def _input(node: structure.Input, shape: Shape) -> nir.NIRNode:
    return nir.Input(input_type=np.array(node.shape))


@exporter(structure.Output)
def _output(node: structure.Output, shape: Shape) -> nir.NIRNode:
    return nir.Output(output_type=np.array(shape))


@exporter(ann.Identity, ann.Add)
def _identity(node: Node, shape: Shape) -> dict[str, Any]:
    # nir 1.0.8's own Identity cannot be written or read (its to_dict fails); write the layout
    # it intends, {"type": "Identity", "shape": ...}, which spikec (and NIR >= 1.1) reads.
    return {"type": "Identity", "shape": np.array(shape), "metadata": {}}


@exporter(ann.Dense)
def _dense(node: ann.Dense, shape: Shape) -> nir.NIRNode:
    if node.bias is None:
        return nir.Linear(weight=np.array(node.weight))
    return nir.Affine(weight=np.array(node.weight), bias=np.array(node.bias))


@exporter(ann.Scale)
def _scale(node: ann.Scale, shape: Shape) -> nir.NIRNode:
    return nir.Scale(scale=np.array(node.scale))


@exporter(ann.Conv)
def _conv(node: ann.Conv, shape: Shape) -> nir.NIRNode:
    bias = np.array(node.bias) if node.bias is not None else np.zeros(node.weight.shape[0], node.weight.dtype)
    common = dict(
        weight=np.array(node.weight),
        stride=np.array(node.stride),
        padding=np.array(node.padding),
        dilation=np.array(node.dilation),
        groups=node.groups,
        bias=bias,
    )
    if node.spatial_dims == 1:  # nir's Conv1d takes plain ints
        common.update(stride=node.stride[0], padding=node.padding[0], dilation=node.dilation[0])
        return nir.Conv1d(input_shape=shape[1], **common)
    return nir.Conv2d(input_shape=tuple(shape[1:]), **common)


@exporter(ann.SumPool, ann.AvgPool)
def _pool(node: ann._Pool, shape: Shape) -> nir.NIRNode:
    if len(node.kernel_size) != 2:
        raise ExportError("NIR has only 2-d pooling")
    kind = nir.SumPool2d if isinstance(node, ann.SumPool) else nir.AvgPool2d
    return kind(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride), padding=np.array(node.padding))


@exporter(ann.Flatten)
def _flatten(node: ann.Flatten, shape: Shape) -> nir.NIRNode:
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=node.start_dim, end_dim=node.end_dim)


def _value_reset(node: Any) -> None:
    if node.reset != snn.Reset.VALUE:
        raise ExportError(
            f"reset={node.reset!r}: NIR neurons only reset to v_reset; export before the pass that "
            "changed the reset mode, or keep the model in .sir"
        )
    if getattr(node, "firing", snn.Firing.ABOVE) != snn.Firing.ABOVE:
        raise ExportError(
            f"firing={node.firing!r}: NIR neurons fire only when v > v_threshold (strict); keep the model in .sir"
        )


@exporter(snn.IF)
def _if(node: snn.IF, shape: Shape) -> nir.NIRNode:
    _value_reset(node)
    if node.polarity != snn.Polarity.UNIPOLAR or np.any(node.v_init != 0):
        raise ExportError(
            "a bipolar IF or one with a non-zero v_init (spikec extensions for ANN conversion) has no NIR "
            "equivalent; keep the model in .sir"
        )
    return nir.IF(
        r=_full(node.r, shape), v_threshold=_full(node.v_threshold, shape), v_reset=_full(node.v_reset, shape)
    )


@exporter(snn.LIF)
def _lif(node: snn.LIF, shape: Shape) -> nir.NIRNode:
    _value_reset(node)
    if np.any(node.v_init != 0):
        raise ExportError(
            "a LIF with a non-zero v_init (a spikec extension) has no NIR equivalent; keep the model in .sir"
        )
    return nir.LIF(
        tau=_full(node.tau, shape),
        r=_full(node.r, shape),
        v_leak=_full(node.v_leak, shape),
        v_threshold=_full(node.v_threshold, shape),
        v_reset=_full(node.v_reset, shape),
    )


@exporter(snn.CubaLIF)
def _cuba_lif(node: snn.CubaLIF, shape: Shape) -> nir.NIRNode:
    _value_reset(node)
    return nir.CubaLIF(
        tau_syn=_full(node.tau_syn, shape),
        tau_mem=_full(node.tau_mem, shape),
        r=_full(node.r, shape),
        v_leak=_full(node.v_leak, shape),
        v_threshold=_full(node.v_threshold, shape),
        v_reset=_full(node.v_reset, shape),
        w_in=_full(node.w_in, shape),
    )


@exporter(snn.LI)
def _li(node: snn.LI, shape: Shape) -> nir.NIRNode:
    return nir.LI(tau=_full(node.tau, shape), r=_full(node.r, shape), v_leak=_full(node.v_leak, shape))


@exporter(snn.CubaLI)
def _cuba_li(node: snn.CubaLI, shape: Shape) -> nir.NIRNode:
    return nir.CubaLI(
        tau_syn=_full(node.tau_syn, shape),
        tau_mem=_full(node.tau_mem, shape),
        r=_full(node.r, shape),
        v_leak=_full(node.v_leak, shape),
        w_in=_full(node.w_in, shape),
    )


@exporter(snn.I)
def _integrator(node: snn.I, shape: Shape) -> nir.NIRNode:
    return nir.I(r=_full(node.r, shape))


@exporter(snn.Threshold)
def _threshold(node: snn.Threshold, shape: Shape) -> nir.NIRNode:
    return nir.Threshold(threshold=_full(node.threshold, shape))


@exporter(snn.Delay)
def _delay(node: snn.Delay, shape: Shape) -> nir.NIRNode:
    return nir.Delay(delay=_full(node.delay, shape))


def to_nir_dict(graph: Graph) -> dict[str, Any]:
    """The graph in NIR's dictionary layout (what ``nir.NIRGraph.to_dict`` gives), nested."""
    nodes: dict[str, Any] = {}
    for name, node in graph.nodes.items():
        forward = [e for e in graph.in_edges(name) if not e.recurrent]
        in_shape = graph.types[forward[0].src] if forward else graph.types[name]
        if isinstance(node, structure.Subgraph):
            nodes[name] = to_nir_dict(node.graph)
            continue
        convert = NIR_EXPORTERS.get(type(node))
        if convert is None:
            supported = ", ".join(sorted(k.kind for k in NIR_EXPORTERS))
            raise ExportError(
                f"{graph.describe(name)} has no NIR equivalent; NIR can take: {supported}, Subgraph. "
                "Keep this model in .sir, or lower the node first"
            )
        try:
            converted = convert(node, in_shape)
        except ExportError as err:
            raise ExportError(f"{graph.describe(name)}: {err}") from None
        nodes[name] = converted if isinstance(converted, dict) else converted.to_dict()
    return {
        "type": "NIRGraph",
        "nodes": nodes,
        "edges": [(e.src, e.dst) for e in graph.edges],
        "metadata": {"dt": np.float64(graph.dt)},
    }


def _write_group(group: h5py.Group, entries: dict[str, Any]) -> None:
    for key, value in entries.items():
        if key in ("input_type", "output_type") and not isinstance(value, dict):
            continue
        if isinstance(value, dict):
            if value or key != "metadata":
                _write_group(group.create_group(str(key)), value)
        elif isinstance(value, str):
            group.create_dataset(key, data=value, dtype=h5py.string_dtype())
        elif key == "edges":
            data = np.array(value, dtype=object).reshape(-1, 2)
            group.create_dataset(key, data=data, dtype=h5py.string_dtype())
        elif isinstance(value, np.ndarray) and value.ndim > 0:
            group.create_dataset(key, data=value, dtype=value.dtype, compression="gzip")
        else:
            group.create_dataset(key, data=value)


def export_nir(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` as a NIR 1.0.8 HDF5 file: built in memory, then written atomically (``write_hdf5``)."""
    tree = to_nir_dict(graph)

    def fill(f: h5py.File) -> None:
        f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype())
        _write_group(f.create_group("node"), tree)

    write_hdf5(path, fill)
