"""Write a Loihi-dialect chain as a lava-dl netx ``.net`` file (HDF5, lava-dl's layout), with h5py only.

The inverse of ``spikec.targets.loihi2.netx``'s reader: dense/conv synapses and their neurons become
``/layer/<i>`` groups, ``dense_rec`` keeps its recurrent weights, dense weights are stored as the
integers the synapse applies. What netx cannot hold (delays, fractional weights, several
thresholds per layer, graphs that are not a chain) is a ``TargetError`` naming the node. LIF resets
have no field: the writer warns with the ``netx.hdf5.Network(reset_interval=…, reset_offset=…)``
that restores them.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikec.errors import SpikecWarning, TargetError
from spikec.fileio import write_hdf5
from spikec.ir import Flatten, Graph, Input, Node, Output
from spikec.targets.loihi2.dialect import (
    InputMode,
    LoihiConv,
    LoihiDelta,
    LoihiDense,
    LoihiLIF,
    LoihiSigma,
    LoihiSigmaDelta,
)
from spikec.targets.loihi2.netx import LIF_BIAS_EXP, SDNN_EXP


def _recurrent_synapses(graph: Graph) -> dict[str, str]:
    """neuron -> its dense_rec synapse (an unbuffered LoihiDense fed by the neuron, back to it by a recurrent edge)."""
    recs: dict[str, str] = {}
    for e in graph.edges:
        if not e.recurrent:
            continue
        node = graph.nodes[e.src]
        fed_by = [i.src for i in graph.in_edges(e.src)]
        outs = [o.dst for o in graph.edges if o.src == e.src]
        if not (isinstance(node, LoihiDense) and not node.buffered and fed_by == [e.dst] and outs == [e.dst]):
            raise TargetError(
                f"netx holds recurrence only as dense_rec (a neuron's spikes back through an unbuffered "
                f"LoihiDense into the same neuron); edge {e} is not one"
            )
        recs[e.dst] = e.src
    return recs


def _chain(graph: Graph, recs: dict[str, str]) -> list[str]:
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TargetError("netx describes a chain of layers: the graph needs one input and one output")
    order = [n for n in graph.order if n not in recs.values()]
    for a, b in itertools.pairwise(order):
        if [e.src for e in graph.in_edges(b) if e.src not in recs.values()] != [a]:
            raise TargetError(f"netx describes a chain of layers: node '{b}' does not follow '{a}' alone")
    return order


def _effective_dense(graph: Graph, name: str, syn: LoihiDense) -> np.ndarray:
    """The integer weights the synapse applies (netx stores those, not mantissa and exponent)."""
    from spikec.targets.loihi2.kernels import dense_weights

    effective = dense_weights(syn) * 2.0**syn.weight_exp
    if not np.array_equal(effective, np.round(effective)):
        raise _fail(graph, name, "weight_exp < 0 leaves fractional weights; netx cannot store them")
    return effective.astype(np.float32)


def _fail(graph: Graph, name: str, problem: str) -> TargetError:
    return TargetError(f"{graph.describe(name)}: {problem}")


def _scalar(graph: Graph, name: str, value: np.ndarray, field: str) -> int:
    values = np.unique(np.asarray(value))
    if values.size != 1:
        raise _fail(graph, name, f"netx stores one {field} per layer; this node has {values.size} values")
    return int(values[0])


def _neuron_group(graph: Graph, name: str, node: Node) -> tuple[dict[str, Any], np.ndarray | None]:
    """netx neuron datasets and the layer bias (or None) of a neuron node."""
    if isinstance(node, LoihiLIF):  # the reset has no netx field: export_netx warns how to restore it
        exp = _scalar(graph, name, node.bias_exp, "bias_exp")
        bias = np.asarray(node.bias_mant)
        if np.any(bias != 0) and exp != LIF_BIAS_EXP:
            raise _fail(graph, name, f"netx LIF neurons have bias_exp {LIF_BIAS_EXP}; this one has {exp}")
        group = {
            "type": "CUBA",
            "iDecay": node.du + 1,
            "vDecay": node.dv,
            "vThMant": _scalar(graph, name, node.vth, "vth"),
            "refDelay": 1,
            "gradedSpike": False,
        }
        return group, (bias if np.any(bias != 0) else None)
    if isinstance(node, LoihiDelta | LoihiSigmaDelta):
        if (node.spike_exp, node.state_exp) != (SDNN_EXP, SDNN_EXP) or node.cum_error:
            raise _fail(graph, name, f"netx SDNN neurons have spike_exp = state_exp = {SDNN_EXP} and no cum_error")
        if isinstance(node, LoihiSigmaDelta) and node.act_mode != "relu":
            raise _fail(graph, name, "netx SDNN neurons use the ReLU activation")
        bias = np.asarray(node.bias) if isinstance(node, LoihiSigmaDelta) else np.zeros(())
        group = {"type": "SDNN", "vThMant": _scalar(graph, name, node.vth, "vth")}
        return group, (bias if np.any(bias != 0) else None)
    if isinstance(node, LoihiSigma):
        return {"type": "SDNN", "vThMant": 0, "sigma_output": True}, None
    raise _fail(graph, name, f"netx has no neuron for kind {node.kind}")


def _layer_bias(bias: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if bias is None:
        return None
    b = np.broadcast_to(bias, shape)
    if len(shape) == 3 and np.all(b == b[:, :1, :1]):
        return b[:, 0, 0].astype(np.float32)
    return b.astype(np.float32).reshape(shape if len(shape) > 1 else (-1,))


def netx_layers(graph: Graph) -> list[dict[str, Any]]:
    """The netx layer descriptions (datasets per ``/layer/<i>``) of a Loihi-dialect chain."""
    recs = _recurrent_synapses(graph)
    order = _chain(graph, recs)
    layers: list[dict[str, Any]] = []
    pending: tuple[str, LoihiDense | LoihiConv] | None = None
    for name in order:
        node = graph.nodes[name]
        shape = graph.types[name]
        if isinstance(node, Input | Output):
            continue
        if isinstance(node, Flatten):
            layers.append({"type": "flatten", "shape": np.asarray(shape, np.int64)})
            continue
        if isinstance(node, LoihiDense | LoihiConv):
            pending = (name, node)
            continue
        group, bias = _neuron_group(graph, name, node)
        if pending is None:
            if layers or (isinstance(node, LoihiLIF) and node.input_mode != InputMode.BIAS):
                raise _fail(graph, name, "netx needs a synapse (dense or conv) before every neuron but the input layer")
            layers.append({"type": "input", "shape": np.asarray(shape, np.int64), "neuron": group})
            continue
        syn_name, syn = pending
        layer: dict[str, Any] = {"shape": np.asarray(shape, np.int64), "neuron": group}
        if syn.delay is not None and np.any(syn.delay):
            raise _fail(graph, syn_name, "netx has no synaptic delays (Lava's DelayDense/DelaySparse)")
        if isinstance(syn, LoihiDense):
            layer |= {
                "type": "dense",
                "weight": _effective_dense(graph, syn_name, syn),
                "inFeatures": syn.weight.shape[1],
                "outFeatures": syn.weight.shape[0],
            }
        else:
            if syn.weight_exp:
                raise _fail(graph, syn_name, "netx conv layers have no weight exponent (it is Lava's Sparse here)")
            layer |= {
                "type": "conv",
                "weight": np.asarray(syn.weight, np.float32)[..., None],
                "stride": np.asarray(syn.stride, np.int64),
                "padding": np.asarray(syn.padding, np.int64),
                "dilation": np.asarray(syn.dilation, np.int64),
                "groups": syn.groups,
                "inChannels": syn.weight.shape[1] * syn.groups,
                "outChannels": syn.weight.shape[0],
                "kernelSize": np.asarray(syn.weight.shape[2:], np.int64),
            }
        if name in recs:
            if layer["type"] != "dense":
                raise _fail(graph, name, "netx has recurrent weights only on dense layers (dense_rec)")
            rec = graph.nodes[recs[name]]
            assert isinstance(rec, LoihiDense)
            layer |= {"type": "dense_rec", "weight_rec": _effective_dense(graph, recs[name], rec)}
        layer_bias = _layer_bias(bias, shape)
        if layer_bias is not None:
            layer["bias"] = layer_bias
        layers.append(layer)
        pending = None
    if pending is not None:
        raise _fail(graph, pending[0], "a synapse must be followed by a neuron in netx")
    return layers


def _write_value(group: h5py.Group, key: str, value: Any) -> None:
    if isinstance(value, dict):
        sub = group.create_group(key)
        for k, v in value.items():
            _write_value(sub, k, v)
    elif key == "type" and group.name.endswith("neuron"):
        group.create_dataset(key, data=value.encode("ascii"), dtype=h5py.string_dtype("ascii"))
    elif key == "type":
        group.create_dataset(key, data=np.asarray([value.encode("ascii")], dtype="S10"))
    else:
        group.create_dataset(key, data=value)


def _reset_arguments(graph: Graph) -> str | None:
    """How lava-dl's ``Network`` restores the LIF layers' resets (netx files have no field for them), or None.

    ``Network(reset_interval=N, reset_offset=R)`` resets the k-th neuron layer at ``t ≡ R + 1 + k (mod N)``.
    """
    neurons = [
        graph.nodes[n]
        for n in _chain(graph, _recurrent_synapses(graph))
        if isinstance(graph.nodes[n], LoihiLIF | LoihiDelta | LoihiSigmaDelta | LoihiSigma)
    ]
    lifs = [(k, node) for k, node in enumerate(neurons) if isinstance(node, LoihiLIF)]
    if not any(node.reset_interval for _, node in lifs):
        return None
    k0, first = lifs[0]
    interval = first.reset_interval
    offset = (first.reset_offset - 1 - k0) % interval if interval else 0
    if interval and all(
        n.reset_interval == interval and (n.reset_offset - 1 - k - offset) % interval == 0 for k, n in lifs
    ):
        return f"netx.hdf5.Network(net_config=..., reset_interval={interval}, reset_offset={offset})"
    per_layer = [(k, n.reset_interval, n.reset_offset) for k, n in lifs]
    return (
        f"netx.hdf5.Network(net_config=...), then set each LIF layer's neuron reset by hand: per-layer resets "
        f"(neuron layer, interval, offset) {per_layer}, which one reset_interval and reset_offset cannot express"
    )


def export_netx(graph: Graph, path: str | Path) -> None:
    """Write a Loihi-dialect chain as a netx ``.net`` file in lava-dl's layout (atomically).

    LIF resets (``reset_interval``) have no netx field: a ``SpikecWarning`` says how to load the file with them.
    """
    layers = netx_layers(graph)
    reset = _reset_arguments(graph)
    if reset is not None:
        warnings.warn(
            f"{Path(path).name}: netx files do not store the LIF reset; load it with {reset}",
            SpikecWarning,
            stacklevel=2,
        )

    def fill(f: h5py.File) -> None:
        top = f.create_group("layer")
        for i, layer in enumerate(layers):
            group = top.create_group(str(i))
            for key, value in layer.items():
                _write_value(group, key, value)
        sim = f.create_group("simulation")
        sim.create_dataset("Ts", data=1)
        sim.create_dataset("tSample", data=1)

    write_hdf5(path, fill)  # built in memory: HDF5's file driver crashes on a full disk
