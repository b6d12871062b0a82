"""Build and run Lava 0.10 process graphs from a Loihi-dialect network description (spikec's Loihi 2 artifact).

Runs INSIDE the Lava environment (Python 3.10): imports only the standard library, numpy, scipy (a lava-nc
dependency) and lava-nc, never spikec. This one module is both

* the body of an emitted artifact's ``run_lava.py`` (``spikec compile --target loihi2`` copies it verbatim
  behind a header): ``python run_lava.py --inputs X.npy --steps T [--out out.npz] [--probe-all]`` reads
  ``network.json`` and ``weights.npz`` beside itself, and
* the builder behind ``lava_sim.py`` (``spikec.targets.loihi2.lava_env.simulate_in_lava``, the tests against Lava).

A network is ``{"nodes": [{"name", "kind", "inputs": [names], "shape": [SIR shape], "params": {...}}],
"outputs": [Output node names]}`` in SIR's topological order; a node's array fields (``weight``,
``vth``, …) come from ``weights(node, field)``. Inputs are fed in SIR layout (T, *shape).

Layouts: SIR (C, H, W) is Lava's (X, Y, C) = (W, H, C) transposed; a SIR conv kernel (O, I, kH, kW)
becomes Lava's true-convolution kernel ``w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``, stride etc.
reversed. Each kind has one builder in ``BUILDERS``. Lava's ports sum what arrives, as SIR's edges do.

Two things Lava 0.10's ``Conv`` cannot take are built from other processes, bit for bit: a conv with a synaptic
delay is a ``DelaySparse`` over the conv's connectivity (``conv_matrix``, SIR order; the source port is
flattened into it and its output reshaped back), and a conv with more than 127 groups (Lava stores ``groups``
as int8) runs with the largest divisor of its groups below 128, its weights block-diagonal within each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv
from lava.proc.dense.process import DelayDense, Dense
from lava.proc.graded.process import GradedVec
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF, LIFReset
from lava.proc.monitor.process import Monitor
from lava.proc.sdn.process import ActivationMode, Delta, Sigma, SigmaDelta
from lava.proc.sparse.process import DelaySparse, Sparse
from lava.utils.weightutils import SignMode, determine_sign_mode
from scipy.sparse import csr_matrix

Node = dict[str, Any]
Arrays = Callable[[str], np.ndarray]
Weights = Callable[[str, str], np.ndarray]  # (node name, field) -> array


def to_lava(a: np.ndarray) -> np.ndarray:
    """SIR (C, H, W) -> Lava (X, Y, C); 1-d unchanged."""
    return a.transpose(2, 1, 0) if a.ndim == 3 else a


def from_lava(a: np.ndarray) -> np.ndarray:
    """Monitor data (T, X, Y, C) -> SIR (T, C, H, W)."""
    return a.transpose(0, 3, 2, 1) if a.ndim == 4 else a


class Built:
    """A node's Lava process: where its input goes (``inp``), its output port, and variables to record.

    ``send``: the port the next node connects to, when not ``out`` (a reshaped view); ``adapt``: how a source's
    port is reshaped before it connects to ``inp``; ``flat``: ``out`` holds the SIR shape flattened."""

    def __init__(
        self,
        proc: Any,
        inp: Any,
        out: Any,
        shape: tuple[int, ...],
        record: dict[str, Any],
        send: Any = None,
        adapt: Callable[[Any], Any] | None = None,
        flat: bool = False,
    ) -> None:
        self.proc, self.inp, self.out, self.shape, self.record = proc, inp, out, shape, record
        self.send, self.adapt, self.flat = send if send is not None else out, adapt, flat


def build_dense(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    """LoihiDense -> Dense / DelayDense, or Sparse / DelaySparse (same arithmetic, CSR weights) when
    network.json names that process; delays when the node carries per-synapse delays."""
    p = node["params"]
    weights = arr("weight").astype(np.int32)
    kwargs: dict[str, Any] = {
        "weight_exp": p["weight_exp"],
        "num_weight_bits": p["num_weight_bits"],
        "num_message_bits": p["num_message_bits"],
        # set explicitly: Sparse would apply Lava's rule to its CSR matrix, so apply it to the dense one here
        "sign_mode": SignMode(p["sign_mode"]) if p["sign_mode"] else determine_sign_mode(weights),
    }
    try:
        delays = np.broadcast_to(arr("delay"), weights.shape).astype(int)  # Lava wants int exactly
    except KeyError:
        delays = None
    proc: Any
    if node.get("process") in ("Sparse", "DelaySparse"):  # network.json names it; lava_sim sends none
        rows, cols = np.nonzero(weights)
        sparse = csr_matrix((weights[rows, cols], (rows, cols)), shape=weights.shape)
        if delays is None:
            proc = Sparse(weights=sparse, **kwargs)
        else:
            lags = csr_matrix((delays[rows, cols], (rows, cols)), shape=weights.shape, dtype=int)
            proc = DelaySparse(weights=sparse, delays=lags, max_delay=int(np.max(delays)), **kwargs)
    elif delays is None:
        proc = Dense(weights=weights, **kwargs)
    else:
        proc = DelayDense(weights=weights, delays=delays, **kwargs)
    return Built(proc, proc.s_in, proc.a_out, (weights.shape[0],), {})


def conv_matrix(weight: np.ndarray, shape: tuple[int, ...], p: dict[str, Any]) -> tuple[csr_matrix, tuple[int, ...]]:
    """A SIR conv (weight (O, C/groups, kH, kW) on a (C, H, W) input) as a sparse matrix from the flattened input
    to the flattened output (both SIR order), and the output shape."""
    c, h, w = shape
    o, per_in, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = p["stride"], p["padding"], p["dilation"]
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_out = o // p["groups"]
    rows, cols, values = [], [], []
    for i in range(kh):
        for j in range(kw):
            y, x = np.arange(ho) * sh - ph + i * dh, np.arange(wo) * sw - pw + j * dw
            oy, ox = np.nonzero((y >= 0) & (y < h))[0], np.nonzero((x >= 0) & (x < w))[0]
            out_pos = (oy[:, None] * wo + ox[None, :]).ravel()
            in_pos = (y[oy][:, None] * w + x[ox][None, :]).ravel()
            oc, ic = np.nonzero(weight[:, :, i, j])
            cin = (oc // per_out) * per_in + ic
            rows.append((oc[:, None] * ho * wo + out_pos[None, :]).ravel())
            cols.append((cin[:, None] * h * w + in_pos[None, :]).ravel())
            values.append(np.repeat(weight[oc, ic, i, j], out_pos.size))
    matrix = csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(o * ho * wo, c * h * w), dtype=np.int32)  # fmt: skip
    return matrix, (o, ho, wo)


def _coarser_groups(weight: np.ndarray, groups: int, most: int = 127) -> tuple[np.ndarray, int]:
    """The same conv with the largest divisor of ``groups`` up to ``most`` groups (zeros between the old ones)."""
    fewer = max(g for g in range(1, most + 1) if groups % g == 0)
    merge = groups // fewer
    o, per_in = weight.shape[:2]
    per_out = o // groups
    wide = np.zeros((o, per_in * merge, *weight.shape[2:]), weight.dtype)
    for oc in range(o):
        part = (oc // per_out) % merge  # which of the merged groups this output channel came from
        wide[oc, part * per_in : (part + 1) * per_in] = weight[oc]
    return wide, fewer


def build_partial_dense(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    """LoihiPartialDense -> the Dense/Sparse of its weight placed at columns [in_offset, in_offset + W) of the
    whole input, zeros elsewhere (Lava has no port slicing; network.json names Sparse for it)."""
    p = node["params"]
    weight = arr("weight")

    def wide(field: str) -> np.ndarray:
        value = arr(field)
        if field not in ("weight", "delay"):
            return value
        full = np.zeros((weight.shape[0], p["in_size"]), value.dtype)
        full[:, p["in_offset"] : p["in_offset"] + weight.shape[1]] = value  # a scalar delay broadcasts
        return full

    return build_dense(node, wide, shape)


def build_conv(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    p = node["params"]
    if p.get("delay") or p.get("weight_exp"):
        return _sparse_conv(node, arr, shape)
    weight, groups = arr("weight"), p["groups"]
    if groups > 127:  # Lava's Conv keeps groups in an int8
        weight, groups = _coarser_groups(weight, groups)
    proc = Conv(
        weight=weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).astype(np.int32),
        input_shape=(shape[2], shape[1], shape[0]),
        stride=tuple(p["stride"][::-1]),
        padding=tuple(p["padding"][::-1]),
        dilation=tuple(p["dilation"][::-1]),
        groups=groups,
        num_message_bits=p["num_message_bits"],
    )
    x, y, c = proc.output_shape
    return Built(proc, proc.s_in, proc.a_out, (c, y, x), {})


def _sparse_conv(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    """LoihiConv with a delay or a weight exponent -> DelaySparse / Sparse over its connectivity (weights as they
    are: the dialect checks that Lava's weight processing keeps them)."""
    p = node["params"]
    weights, out_shape = conv_matrix(arr("weight").astype(np.int64), shape, p)
    kwargs: dict[str, Any] = {
        "num_weight_bits": 8,
        "weight_exp": int(p.get("weight_exp", 0)),
        "sign_mode": determine_sign_mode(weights.data),
        "num_message_bits": p["num_message_bits"],
    }
    proc: Any
    if p.get("delay"):
        delays = weights.astype(int)  # Lava wants int exactly
        delays.data[:] = p["delay"]
        proc = DelaySparse(weights=weights, delays=delays, max_delay=int(p["delay"]), **kwargs)
    else:
        proc = Sparse(weights=weights, **kwargs)  # fmt: skip
    send = proc.a_out.reshape(out_shape).transpose([2, 1, 0])  # SIR (C, H, W) -> Lava (X, Y, C)
    return Built(proc, proc.s_in, proc.a_out, out_shape, {}, send=send,
                 adapt=lambda port: port.transpose([2, 1, 0]).flatten(), flat=True)  # fmt: skip


def _per_neuron(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return to_lava(np.broadcast_to(a, shape).astype(np.int32))


def _one_vth(node: Node, arr: Arrays, process: str) -> int:
    if np.unique(arr("vth")).size != 1:
        raise ValueError(f"{node['name']}: Lava's {process} takes one vth per process")
    return int(np.max(arr("vth")))


def build_lif(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    """LoihiLIF -> LIF, or LIFReset with a reset interval; a bias-mode input arrives as ``feed_bias``."""
    p = node["params"]
    kwargs: dict[str, Any] = {
        "shape": to_lava(np.zeros(shape)).shape,
        "du": p["du"],
        "dv": p["dv"],
        "vth": _one_vth(node, arr, "LIF"),
        "bias_mant": _per_neuron(arr("bias_mant"), shape),
        "bias_exp": _per_neuron(arr("bias_exp"), shape),
    }
    if p["input_mode"] == "bias":
        kwargs["bias_mant"] = _per_neuron(arr("feed_bias"), shape)
    if p["reset_interval"]:
        proc = LIFReset(reset_interval=p["reset_interval"], reset_offset=p["reset_offset"], **kwargs)
    else:
        proc = LIF(**kwargs)
    return Built(proc, proc.a_in, proc.s_out, shape, {"i": proc.u, "v": proc.v})


def _delta_kwargs(node: Node, arr: Arrays, shape: tuple[int, ...]) -> dict[str, Any]:
    p = node["params"]
    return {
        "shape": to_lava(np.zeros(shape)).shape,
        "vth": _one_vth(node, arr, "Delta/SigmaDelta"),
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


def build_graded_vec(node: Node, arr: Arrays, shape: tuple[int, ...]) -> Built:
    """LoihiGradedVec -> GradedVec (lava.proc.graded): sends its input where |input| > vth; no state kept."""
    proc = GradedVec(shape=to_lava(np.zeros(shape)).shape, vth=_one_vth(node, arr, "GradedVec"))
    return Built(proc, proc.a_in, proc.s_out, shape, {})


BUILDERS: dict[str, Callable[[Node, Arrays, tuple[int, ...]], Built]] = {
    "LoihiDense": build_dense,
    "LoihiPartialDense": build_partial_dense,
    "LoihiGradedVec": build_graded_vec,
    "LoihiConv": build_conv,
    "LoihiLIF": build_lif,
    "LoihiDelta": build_delta,
    "LoihiSigmaDelta": build_sigma_delta,
    "LoihiSigma": build_sigma,
}


def _bias_input(node: Node) -> bool:
    return node["kind"] == "LoihiLIF" and node["params"]["input_mode"] == "bias"


class ProcessGraph:
    """The Lava processes of one network fed with one sample: ``built`` by node, the spike sources."""

    def __init__(self, built: dict[str, Built], sources: list[Any], aliases: dict[str, tuple[str, bool]]) -> None:
        self.built, self.sources = built, sources
        self.aliases = aliases  # Output/Flatten name -> (the built node it shows, flattened?)


def build(network: dict[str, Any], weights: Weights, feeds: dict[str, np.ndarray]) -> ProcessGraph:
    """Lava processes and connections for ``network``; ``feeds`` (T, *shape) per Input, SIR layout."""
    nodes: list[Node] = network["nodes"]
    built: dict[str, Built] = {}
    ports: dict[str, tuple[Any, tuple[int, ...]]] = {}  # name -> (output port as the next node sees it, SIR shape)
    aliases: dict[str, tuple[str, bool]] = {}
    sources: list[Any] = []
    for node in nodes:  # pass 1: processes and output ports, in SIR's topological order
        name, kind = node["name"], node["kind"]
        if kind == "Input":
            shape = tuple(node["shape"])
            feed = np.asarray(feeds[name])
            if tuple(feed.shape[1:]) != shape:
                raise ValueError(f"input '{name}': fed {feed.shape[1:]}, the network takes {shape}")
            consumers = [n for n in nodes if name in n["inputs"]]
            if consumers and all(_bias_input(n) for n in consumers):
                ports[name] = (None, shape)  # consumed as bias_mant (constant)
                continue
            lava_feed = np.moveaxis(np.stack([to_lava(f) for f in feed]), 0, -1).astype(np.int32)
            src = RingBuffer(data=lava_feed)
            sources.append(src)
            ports[name] = (src.s_out, shape)
            continue
        if kind in ("Output", "Flatten"):
            src_name = node["inputs"][0]
            port, shape = ports[src_name]
            flat = kind == "Flatten"
            if flat and len(shape) > 1:  # Lava holds (C, H, W) as (X, Y, C): back to SIR order, then row-major
                port = (port.transpose([2, 1, 0]) if len(shape) == 3 else port).flatten()
            shown, was_flat = aliases.get(src_name, (src_name, False))
            aliases[name] = (shown, was_flat or flat)
            ports[name] = (port, (int(np.prod(shape)),) if flat else shape)
            continue
        # the first forward input gives the shape (a recurrent edge's source comes later in the order)
        src_name = next(s for s in node["inputs"] if s in ports)
        shape = ports[src_name][1]

        def arr(field: str, name: str = name, src_name: str = src_name) -> np.ndarray:
            if field == "feed_bias":
                feed = np.asarray(feeds[src_name])
                if not np.all(feed == feed[:1]):
                    raise ValueError(f"{name}: a bias-mode input must be constant over time for Lava's bias_mant")
                return feed[0]
            return np.asarray(weights(name, field))

        b = BUILDERS[kind](node, arr, shape)
        built[name] = b
        ports[name] = (b.send, b.shape)
    for node in nodes:  # pass 2: connections (Lava's ports sum what arrives)
        if node["name"] not in built or _bias_input(node):
            continue
        b = built[node["name"]]
        for src_name in node["inputs"]:
            port = ports[src_name][0]
            (b.adapt(port) if b.adapt else port).connect(b.inp)
    return ProcessGraph(built, sources, aliases)


def run(
    graph: ProcessGraph, steps: int, record: list[str] | None, *, states: bool, select_tag: str = "fixed_pt"
) -> dict[str, np.ndarray]:
    """Run ``steps`` steps on Lava's CPU models; (T, *shape) SIR layout per recorded name.

    ``record``: names of nodes (Output/Flatten names resolve to what they show) whose outputs are
    recorded; ``None`` records every process. ``states`` adds ``name.i``/``name.v`` (u/v, sigma/act).
    Every Monitor is an OS process of its own: record little to run fast.
    """
    wanted = list(graph.built) if record is None else list(record)
    monitors: list[tuple[str, Any, Any, bool, tuple[int, ...] | None]] = []
    for label in wanted:
        shown, flat = graph.aliases.get(label, (label, False))
        b = graph.built[shown]
        for var, target in [("", b.out), *(b.record.items() if states else ())]:
            m = Monitor()
            m.probe(target, steps)
            unflatten = b.shape if b.flat and not var else None  # a process that holds its SIR shape flattened
            monitors.append((label + (f".{var}" if var else ""), m, target, flat and not var, unflatten))
    first = next(iter(graph.built.values())).proc
    first.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=select_tag))
    out: dict[str, np.ndarray] = {}
    try:
        for label, m, target, flat, unflatten in monitors:
            recorded = from_lava(np.asarray(m.get_data()[target.process.name][target.name]))
            if unflatten is not None:
                recorded = recorded.reshape(recorded.shape[0], *unflatten)
            out[label] = recorded.reshape(recorded.shape[0], -1) if flat else recorded
    finally:
        first.stop()
    return out


# -- the artifact's command line (run_lava.py) ------------------------------------------------------------


def load_inputs(path: Path, network: dict[str, Any]) -> dict[str, np.ndarray]:
    """``--inputs``: an .npy for the one Input, or an .npz by Input name; (T, N, *shape) or (T, *shape)."""
    names = [n["name"] for n in network["nodes"] if n["kind"] == "Input"]
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):
        if len(names) != 1:
            raise SystemExit(f"{path}: the network has inputs {names}; give an .npz with one array per input")
        arrays = {names[0]: loaded}
    else:
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
    feeds: dict[str, np.ndarray] = {}
    for node in network["nodes"]:
        if node["kind"] != "Input":
            continue
        if node["name"] not in arrays:
            raise SystemExit(f"{path}: no array for input '{node['name']}'")
        a = np.asarray(arrays[node["name"]])
        shape = tuple(node["shape"])
        if tuple(a.shape[1:]) == shape:
            a = a[:, None]
        if tuple(a.shape[2:]) != shape:
            raise SystemExit(f"{path}: input '{node['name']}' is {a.shape}; expected (T, N, *{shape}) or (T, *{shape})")
        if not np.array_equal(a, np.round(a)):
            raise SystemExit(f"{path}: input '{node['name']}' must hold integers (Loihi fixed point)")
        feeds[node["name"]] = a
    return feeds


def _pad(feed: np.ndarray, steps: int) -> np.ndarray:
    """Zeros after the input's end (as ``spikec run`` does); cut when it is longer."""
    if feed.shape[0] >= steps:
        return feed[:steps]
    return np.concatenate([feed, np.zeros((steps - feed.shape[0], *feed.shape[1:]), feed.dtype)])


def main(argv: list[str] | None = None, here: Path | None = None) -> None:
    """Run the artifact beside this file for every sample; outputs (T, N, *shape) into ``--out``."""
    here = here or Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Run this spikec Loihi 2 artifact in Lava (CPU, bit-accurate).")
    parser.add_argument("--inputs", required=True, type=Path, help="X.npy (T, N, *shape) or .npz by input name")
    parser.add_argument("--steps", type=int, help="time steps (default: the input's length; longer pads with zeros)")
    parser.add_argument("--out", type=Path, default=Path("out.npz"), help="outputs (and trace/<node>) .npz")
    parser.add_argument("--probe-all", action="store_true", help="also record every layer as trace/<node>")
    parser.add_argument("--states", action="store_true", help="also record u and v (trace/<name>.i, trace/<name>.v)")
    parser.add_argument("--select-tag", default="fixed_pt", choices=["fixed_pt", "floating_pt"])
    args = parser.parse_args(argv)
    network = json.loads((here / "network.json").read_text(encoding="utf-8"))
    feeds = load_inputs(args.inputs, network)
    steps = args.steps or max(v.shape[0] for v in feeds.values())
    feeds = {k: _pad(v, steps) for k, v in feeds.items()}
    samples = next(iter(feeds.values())).shape[1]
    with np.load(here / "weights.npz", allow_pickle=False) as data:
        weights = {k: data[k] for k in data.files}
    outputs: list[str] = network["outputs"]
    layers = [n["name"] for n in network["nodes"] if n["kind"] in BUILDERS]
    record = outputs + ([n for n in layers if n not in outputs] if args.probe_all else [])
    results: dict[str, list[np.ndarray]] = {}
    start = time.perf_counter()
    for i in range(samples):
        graph = build(network, lambda node, field: weights[f"{node}/{field}"], {k: v[:, i] for k, v in feeds.items()})
        for label, value in run(graph, steps, record, states=args.states, select_tag=args.select_tag).items():
            results.setdefault(label, []).append(value)
    seconds = time.perf_counter() - start
    arrays = {(k if k in outputs else f"trace/{k}"): np.stack(v, axis=1) for k, v in results.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)  # type: ignore[arg-type]
    summary = {"samples": samples, "steps": steps, "seconds": seconds, "out": str(args.out)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
