"""Build Lava 0.10 processes from Loihi-dialect SIR graphs and run them on Lava's CPU models.

Runs INSIDE the Lava environment (Python 3.10, .venv-lava), started by ``spikec.lava_env.run_lava_script``:
``python lava_sim.py in.npz out.npz``. It imports nothing from spikec. ``in.npz`` holds ``spec`` (JSON):

    {"select_tag": "fixed_pt", "networks": [{"steps": T, "record": null or [names], "nodes": [
        {"name": ..., "kind": ..., "inputs": [names], "params": {scalar fields}}, ...]}]}

and arrays named ``<net>/<node>/<field>`` (node array fields) and ``<net>/<input node>/feed``
(the input per step, SIR layout (T, *shape)). For each network every node's output (and a neuron's
``u``/``v`` state, a sigma-delta's ``sigma``/``act``) is recorded with Monitors as ``<net>/<node>``
and ``<net>/<node>.<var>``, (T, *shape) in SIR layout (``record`` limits this to some nodes' outputs:
every Monitor is a process of its own and slows Lava down). Several networks share one subprocess.

Layouts: SIR (C, H, W) is Lava's (X, Y, C) = (W, H, C) transposed; a SIR conv kernel (O, I, kH, kW)
becomes Lava's true-convolution kernel ``w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``, stride etc. reversed.
This is the seed of the Lava emitter: one builder per node kind in ``BUILDERS``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv
from lava.proc.dense.process import DelayDense, Dense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF, LIFReset
from lava.proc.monitor.process import Monitor
from lava.proc.sdn.process import ActivationMode, Delta, Sigma, SigmaDelta
from lava.utils.weightutils import SignMode


def to_lava(a: np.ndarray) -> np.ndarray:
    """SIR (C, H, W) -> Lava (X, Y, C); 1-d unchanged."""
    return a.transpose(2, 1, 0) if a.ndim == 3 else a


def from_lava(a: np.ndarray) -> np.ndarray:
    """Monitor data (T, X, Y, C) -> SIR (T, C, H, W)."""
    return a.transpose(0, 3, 2, 1) if a.ndim == 4 else a


class Built:
    """A node's Lava process: where its input goes (``inp``), its output port, and variables to record."""

    def __init__(self, proc: Any, inp: Any, out: Any, shape: tuple[int, ...], record: dict[str, Any]) -> None:
        self.proc, self.inp, self.out, self.shape, self.record = proc, inp, out, shape, record


Node = dict[str, Any]
Arrays = Callable[[str], np.ndarray]


def build_dense(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    p = node["params"]
    kwargs: dict[str, Any] = {
        "weights": arr("weight").astype(np.int32),
        "weight_exp": p["weight_exp"],
        "num_weight_bits": p["num_weight_bits"],
        "num_message_bits": p["num_message_bits"],
    }
    if p["sign_mode"]:
        kwargs["sign_mode"] = SignMode(p["sign_mode"])
    try:
        delays = np.broadcast_to(arr("delay"), kwargs["weights"].shape).astype(int)  # Lava wants int exactly
    except KeyError:
        delays = None
    proc = Dense(**kwargs) if delays is None else DelayDense(delays=delays, **kwargs)
    return Built(proc, proc.s_in, proc.a_out, (arr("weight").shape[0],), {})


def build_conv(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    p = node["params"]
    weight = arr("weight")[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).astype(np.int32)
    proc = Conv(
        weight=weight,
        input_shape=(shape[2], shape[1], shape[0]),
        stride=tuple(p["stride"][::-1]),
        padding=tuple(p["padding"][::-1]),
        dilation=tuple(p["dilation"][::-1]),
        groups=p["groups"],
        num_message_bits=p["num_message_bits"],
    )
    x, y, c = proc.output_shape
    return Built(proc, proc.s_in, proc.a_out, (c, y, x), {})


def _per_neuron(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return to_lava(np.broadcast_to(a, shape).astype(np.int32))


def build_lif(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    p = node["params"]
    lava_shape = to_lava(np.zeros(shape)).shape
    kwargs: dict[str, Any] = {
        "shape": lava_shape,
        "du": p["du"],
        "dv": p["dv"],
        "vth": int(np.max(arr("vth"))),
        "bias_mant": _per_neuron(arr("bias_mant"), shape),
        "bias_exp": _per_neuron(arr("bias_exp"), shape),
    }
    if np.unique(arr("vth")).size != 1:
        raise ValueError(f"{node['name']}: Lava's LIF takes one vth per process")
    if p["input_mode"] == "bias":
        kwargs["bias_mant"] = _per_neuron(arr("feed_bias"), shape)
    if p["reset_interval"]:
        proc = LIFReset(reset_interval=p["reset_interval"], reset_offset=p["reset_offset"], **kwargs)
    else:
        proc = LIF(**kwargs)
    return Built(proc, proc.a_in, proc.s_out, shape, {"i": proc.u, "v": proc.v})


def _delta_kwargs(node: Node, arr: Arrays, shape: tuple[int, ...]) -> dict[str, Any]:
    p = node["params"]
    if np.unique(arr("vth")).size != 1:
        raise ValueError(f"{node['name']}: Lava's Delta/SigmaDelta take one vth per process")
    return {
        "shape": to_lava(np.zeros(shape)).shape,
        "vth": int(np.max(arr("vth"))),
        "spike_exp": p["spike_exp"],
        "state_exp": p["state_exp"],
        "cum_error": bool(p["cum_error"]),
    }


def build_delta(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    proc = Delta(**_delta_kwargs(node, arr, shape))
    return Built(proc, proc.a_in, proc.s_out, shape, {"v": proc.act})


def build_sigma_delta(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    mode = ActivationMode.RELU if node["params"]["act_mode"] == "relu" else ActivationMode.UNIT
    bias = _per_neuron(arr("bias"), shape)
    proc = SigmaDelta(act_mode=mode, bias=bias, **_delta_kwargs(node, arr, shape))
    return Built(proc, proc.a_in, proc.s_out, shape, {"i": proc.sigma, "v": proc.act})


def build_sigma(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    proc = Sigma(shape=to_lava(np.zeros(shape)).shape)
    return Built(proc, proc.a_in, proc.s_out, shape, {"v": proc.sigma})


BUILDERS: dict[str, Callable[[Node, Arrays, tuple[int, ...]], Built]] = {
    "LoihiDense": build_dense,
    "LoihiConv": build_conv,
    "LoihiLIF": build_lif,
    "LoihiDelta": build_delta,
    "LoihiSigmaDelta": build_sigma_delta,
    "LoihiSigma": build_sigma,
}


def run_network(key: str, net: dict[str, Any], data: Any, select_tag: str) -> dict[str, np.ndarray]:
    steps = int(net["steps"])
    built: dict[str, Built] = {}
    ports: dict[str, tuple[Any, tuple[int, ...]]] = {}  # name -> (output port as the next node sees it, SIR shape)
    sources: list[Any] = []
    by_name = {node["name"]: node for node in net["nodes"]}
    for node in net["nodes"]:  # pass 1: processes and output ports, in SIR's topological order
        name, kind = node["name"], node["kind"]

        def arr(field: str, name: str = name) -> np.ndarray:
            return np.asarray(data[f"{key}/{name}/{field}"])

        if kind == "Input":
            feed = arr("feed")  # (T, *shape) SIR layout
            shape = tuple(feed.shape[1:])
            consumers = [n for n in net["nodes"] if name in n["inputs"]]
            if all(n["kind"] == "LoihiLIF" and n["params"]["input_mode"] == "bias" for n in consumers):
                ports[name] = (None, shape)  # consumed as bias_mant (constant)
                continue
            lava_feed = np.moveaxis(np.stack([to_lava(f) for f in feed]), 0, -1).astype(np.int32)
            src = RingBuffer(data=lava_feed)
            sources.append(src)
            ports[name] = (src.s_out, shape)
            continue
        if kind in ("Output", "Flatten"):
            port, shape = ports[node["inputs"][0]]
            if kind == "Flatten" and len(shape) == 3:
                port = port.transpose([2, 1, 0]).flatten()
            ports[name] = (port, (int(np.prod(shape)),) if kind == "Flatten" else shape)
            continue
        # the first forward input gives the shape (a recurrent edge's source comes later in the order)
        src_name = next(s for s in node["inputs"] if s in ports)
        shape = ports[src_name][1]
        if kind == "LoihiLIF" and node["params"]["input_mode"] == "bias":
            feed = np.asarray(data[f"{key}/{src_name}/feed"])
            if not np.all(feed == feed[0]):
                raise ValueError(f"{name}: a bias-mode input must be constant over time for Lava's bias_mant")

            def with_bias(field: str, name: str = name, feed: np.ndarray = feed) -> np.ndarray:
                return feed[0] if field == "feed_bias" else np.asarray(data[f"{key}/{name}/{field}"])

            b = BUILDERS[kind](node, with_bias, shape)
        else:
            b = BUILDERS[kind](node, arr, shape)
        built[name] = b
        ports[name] = (b.out, b.shape)
    for name, b in built.items():  # pass 2: connections (Lava's ports sum what arrives)
        node = by_name[name]
        if node["kind"] == "LoihiLIF" and node["params"]["input_mode"] == "bias":
            continue
        for src_name in node["inputs"]:
            ports[src_name][0].connect(b.inp)

    monitors: list[tuple[str, Any, Any]] = []
    record = net.get("record")  # None: every node and its state; else these nodes' outputs only
    for name, b in built.items():
        if record is not None and name not in record:
            continue
        for var, target in [("", b.out), *(b.record.items() if record is None else ())]:
            m = Monitor()
            m.probe(target, steps)
            monitors.append((f"{key}/{name}" + (f".{var}" if var else ""), m, target))
    first = next(iter(built.values())).proc
    first.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=select_tag))
    out: dict[str, np.ndarray] = {}
    for label, m, target in monitors:
        recorded = m.get_data()[target.process.name][target.name]
        out[label] = from_lava(np.asarray(recorded))
    first.stop()
    return out


def main(src: str, dst: str) -> None:
    with np.load(src, allow_pickle=False) as data:
        spec = json.loads(str(data["spec"]))
        results: dict[str, np.ndarray] = {}
        for i, net in enumerate(spec["networks"]):
            results |= run_network(str(i), net, data, spec.get("select_tag", "fixed_pt"))
    np.savez(dst, **results)  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
