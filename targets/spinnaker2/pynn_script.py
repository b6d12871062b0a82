"""Run a spikec SpiNNaker2 artifact through PyNN 0.13: Brian2 simulates it, sPyNNaker maps it onto a virtual board.

    python run_pynn.py --backend brian2 --inputs X.npz [--steps T] [--out out.npz]
    python run_pynn.py --backend spinnaker [--steps T] [--mapping mapping.json]   # spynnaker.cfg in the cwd

Reads network.json and network.npz beside itself; imports numpy, the standard library and PyNN (with Brian2 or
sPyNNaker) only. X.npz holds each input's 0/1 spikes (T, N, *shape) by input name. Populations are PyNN's
IF_curr_delta with tau_m = −dt/ln(alpha_decay) per neuron (no leak, 1e12 ms, for alpha_decay = 1), v_thresh =
θ + 1/2 (integer v > θ; θ·(1 + 1e-9) for a float v: ties do not fire), v_reset, tau_refrac = 0;
synapses are delta steps v += w, excitatory and inhibitory projections apart (PyNN takes one sign per
projection); a bias is a projection from a source that fires every step, a leaky population's v₀ one from a
source that fires once (emit.py). A population with a synaptic current is IF_curr_exp (tau_syn =
−dt/ln(syn_decay), cm so that v reads the current with gain 1: ``current_cell``), and on Brian2 its projections
run before ``groups``, so v reads the current that holds this step's spikes. On Brian2 (numpy code generation
unless --codegen cython) the schedule is start, groups, synapses, thresholds, resets, end, so a step integrates
its input, fires and resets in the order of spikec's semantics, and a spike sent at step s over a delay of d
steps is integrated at step s + d + 1; every population runs ``lag`` steps behind the SIR step it computes
(network.json), the delays keep every path aligned, and out.npz holds each output in SIR time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SCHEDULE = ["start", "groups", "synapses", "thresholds", "resets", "end"]
NO_LEAK_TAU_MS = {"brian2": 1e12, "spinnaker": 1e4}  # sPyNNaker holds parameters in 16.15 fixed point (< 65536)
NEVER = {"brian2": 1e12, "spinnaker": 32767.0}  # a readout's threshold
# A float v that reaches θ exactly (a first input equal to θ) does not fire (v > θ); Brian2's exact step multiplies
# by exp(−dt/τ), equal to the decay to an ulp, so its v may land an ulp above: its threshold is θ·(1 + TIE).
TIE = 1e-9
TIE_MOVED = 1e-6  # a current-based neuron with tau_syn = tau_m (``current_cell``): v within about 3e-8


def load() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    spec = json.loads((HERE / "network.json").read_text(encoding="utf-8"))
    with np.load(HERE / "network.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return spec, arrays


def brian2_connect(projection: Any, pre: np.ndarray, post: np.ndarray, weight: np.ndarray, delay_ms: float) -> None:
    """All synapses of a projection in one Brian2 call: PyNN's list connectors set each synapse's weight and
    delay from Python one at a time (minutes per million synapses); the result is the same Synapses object."""
    import brian2

    syn = projection._brian2_synapses[0][0]
    syn.connect(i=pre.astype(np.int64), j=post.astype(np.int64))
    unit = brian2.mV if syn.variables["weight"].dim == brian2.volt.dim else brian2.nA
    syn.weight[:] = weight.astype(np.float64) * unit
    syn.delay[:] = delay_ms * brian2.ms
    projection._n_connections = int(pre.size)


class BulkConnector:
    """A PyNN connector for a fixed (pre, post, weight) list: one Brian2 call on Brian2 (``brian2_connect``), PyNN's
    own FromListConnector (an (n, 4) array) elsewhere."""

    def __init__(self, sim: Any, backend: str, pre: np.ndarray, post: np.ndarray, w: np.ndarray, delay_ms: float):
        self.backend, self.args = backend, (pre, post, w, delay_ms)
        if backend != "brian2":  # sorted by (pre, post): sPyNNaker's row-length estimate groups it in that order
            order = np.lexsort((post, pre))
            rows = np.column_stack([pre[order], post[order], w[order], np.full(pre.size, delay_ms)])
            self.native = sim.FromListConnector(rows.astype(np.float64))

    def project(self, sim: Any, source: Any, target: Any, receptor: str, label: str) -> Any:
        if self.backend != "brian2":
            return sim.Projection(source, target, self.native, sim.StaticSynapse(), receptor_type=receptor, label=label)
        empty = sim.FromListConnector([], column_names=["weight", "delay"])
        projection = sim.Projection(source, target, empty, sim.StaticSynapse(), receptor_type=receptor, label=label)
        brian2_connect(projection, *self.args)
        return projection


def setup(backend: str, spec: dict[str, Any], codegen: str, neurons_per_core: int | None) -> Any:
    dt = float(spec["dt_ms"])
    if backend == "brian2":
        import brian2

        brian2.prefs.codegen.target = codegen
        brian2.defaultclock.dt = dt * brian2.ms  # SpikeSourceArray runs on the default clock
        import pyNN.brian2 as sim

        sim.setup(timestep=dt, min_delay=dt)
        sim.simulator.state.network.schedule = SCHEDULE
        return sim
    import pyNN.spiNNaker as sim

    sim.setup(timestep=dt, min_delay=dt)
    if neurons_per_core:
        for cell in (sim.IF_curr_delta, sim.IF_curr_exp):
            sim.set_number_of_neurons_per_core(cell, neurons_per_core)
    return sim


def one_or_many(values: np.ndarray) -> Any:
    """A per-neuron parameter: one number when every neuron has it, else the array."""
    return values if np.ptp(values) else float(values[0])


def current_cell(tau_m: np.ndarray, syn_decay: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IF_curr_exp's tau_syn and cm per neuron for ``i ← β·i + I``, ``v ← α·v + i`` (α = exp(−dt/τ_m)), and which
    neurons' tau_syn was moved off tau_m.

    The exact step of ``dv/dt = −v/τ_m + i/c_m``, ``di/dt = −i/τ_s`` is ``v ← α·v + κ·i``, ``i ← β·i`` with
    ``β = exp(−dt/τ_s)`` and ``κ = τ_m·τ_s·(β − α)/(c_m·(τ_s − τ_m))``: ``c_m`` makes κ = 1. Brian2's exact solution
    divides by ``τ_m − τ_s``, so τ_s within 1e-8 of τ_m is moved to τ_m·(1 + 1e-8): the smallest error of the
    current's decay and of the formula's cancellation together (v within about 3e-8 of its value)."""
    tau_s = -dt / np.log(syn_decay)
    moved = np.abs(tau_s / tau_m - 1.0) < 1e-8
    tau_s = np.where(moved, tau_m * (1.0 + 1e-8), tau_s)
    alpha, beta = np.exp(-dt / tau_m), np.exp(-dt / tau_s)
    return tau_s, tau_m * tau_s * (beta - alpha) / (tau_s - tau_m), moved


def build(sim: Any, backend: str, spec: dict[str, Any], arrays: dict[str, np.ndarray], steps: int) -> dict[str, Any]:
    """The populations (by name) and projections of network.json; timing of the projection build in ``_build_s``."""
    dt = float(spec["dt_ms"])
    pops: dict[str, Any] = {}
    for p in spec["populations"]:
        name = p["name"]
        if p["kind"] == "input":
            pops[name] = sim.Population(p["size"], sim.SpikeSourceArray(spike_times=[]), label=name)
            continue
        alpha = arrays[f"{name}/alpha_decay"].astype(np.float64)  # per neuron
        current = p["kind"] == "IF_curr_exp"
        leaky = (alpha < 1.0) | current  # v is a float, else an integer: v > θ is v > θ + 1/2
        leak = -np.log(np.where(alpha < 1.0, alpha, 0.5))
        tau_m = np.where(alpha < 1.0, dt / leak, NO_LEAK_TAU_MS[backend])  # exp(-dt/tau_m) = alpha_decay
        tie = np.full(p["size"], TIE)
        if current:
            tau_syn, cm, moved = current_cell(tau_m, arrays[f"{name}/syn_decay"].astype(np.float64), dt)
            tie[moved] = TIE_MOVED
        theta = arrays[f"{name}/threshold"].astype(np.float64)
        threshold = theta + np.where(leaky, tie * np.maximum(np.abs(theta), 1.0), 0.5)
        if p["readout"]:
            threshold = np.full(p["size"], NEVER[backend])
        common = {
            "tau_m": one_or_many(tau_m),
            "v_rest": 0.0,
            "v_reset": arrays[f"{name}/v_reset"].astype(np.float64),
            "v_thresh": threshold.astype(np.float64),
            "tau_refrac": 0.0,
            "i_offset": 0.0,
        }
        if current:
            syn = one_or_many(tau_syn)
            cell = sim.IF_curr_exp(cm=one_or_many(cm), tau_syn_E=syn, tau_syn_I=syn, **common)
        else:
            cell = sim.IF_curr_delta(cm=1.0, **common)
        pops[name] = sim.Population(p["size"], cell, label=name)
        pops[name].initialize(v=arrays[f"{name}/v_init"].astype(np.float64))
    clocks = {":bias": [float(t) * dt for t in range(steps)], ":start": [0.0]}  # firing every SIR step; once
    for clock in {proj["pre"] for proj in spec["projections"]} & clocks.keys():
        pops[clock] = sim.Population(1, sim.SpikeSourceArray(spike_times=clocks[clock]), label=clock[1:])
    start = time.perf_counter()
    projections = []
    current = {p["name"] for p in spec["populations"] if p["kind"] == "IF_curr_exp"}
    for proj in spec["projections"]:
        key = proj["name"]
        pre, post, w = arrays[f"{key}/pre"], arrays[f"{key}/post"], arrays[f"{key}/weight"]
        source = pops[proj["pre"]]
        connector = BulkConnector(sim, backend, pre, post, w, proj["delay_steps"] * dt)
        projection = connector.project(sim, source, pops[proj["post"]], proj["receptor"], key)
        if backend == "brian2" and proj["post"] in current:  # the current takes this step's spikes before v reads it
            projection._brian2_synapses[0][0].pre.when = "before_groups"
        projections.append(projection)
    return {"populations": pops, "projections": projections, "_build_s": time.perf_counter() - start}


def spike_times(feed: np.ndarray, dt: float) -> list[Any]:
    """One sample's (T, *shape) 0/1 spikes → each source neuron's spike times (ms)."""
    flat = feed.reshape(feed.shape[0], -1)
    neurons, steps = np.nonzero(flat.T)  # sorted by neuron, then step
    per = np.split(steps.astype(np.float64) * dt, np.cumsum(np.bincount(neurons, minlength=flat.shape[1]))[:-1])
    return [list(times) for times in per]


def run_brian2(
    spec: dict[str, Any], arrays: dict[str, np.ndarray], feeds: dict[str, np.ndarray], steps: int, codegen: str
) -> dict[str, Any]:
    """Each sample on Brian2 (sim.reset between samples); per population the spike counts of the SIR steps, and
    each output (T, N, *shape) in SIR time."""
    sim = setup("brian2", spec, codegen, None)
    net = build(sim, "brian2", spec, arrays, steps)
    pops, dt = net["populations"], float(spec["dt_ms"])
    recorded = [p for p in spec["populations"] if p["kind"] != "input"]
    for p in recorded:
        pops[p["name"]].record("v" if p["readout"] else "spikes")
    samples = next(iter(feeds.values())).shape[1]
    total = steps + int(spec["max_lag"]) + 1
    out: dict[str, np.ndarray] = {}
    for p in recorded:
        shape = (steps, samples, p["size"])
        out[f"trace/{p['name']}"] = np.zeros(shape)
    run_s = 0.0
    for n in range(samples):
        if n:
            sim.reset()
        for name, feed in feeds.items():
            times = [sim.Sequence(t) for t in spike_times(feed[:, n], dt)]
            pops[name].set(spike_times=times[0] if len(times) == 1 else times)  # PyNN: one neuron, one Sequence
        start = time.perf_counter()
        sim.run(total * dt)
        run_s += time.perf_counter() - start
        for p in recorded:
            segment = pops[p["name"]].get_data(clear=True).segments[-1]
            lag, trace = int(p["lag"]), out[f"trace/{p['name']}"]
            if p["readout"]:
                v = np.asarray(segment.analogsignals[0].magnitude)  # (recorded steps, neurons)
                trace[:, n] = np.round(v[lag + 1 : lag + 1 + steps])  # sample i: v at the start of step i
                continue
            ids, times = segment.spiketrains.multiplexed  # arrays: no neo SpikeTrain per neuron (slow)
            if len(ids) == 0:
                continue
            j = np.asarray(pops[p["name"]].id_to_index(np.asarray(ids, np.int64)), np.int64).reshape(-1)
            t = np.round(np.asarray(getattr(times, "magnitude", times), np.float64) / dt).astype(np.int64) - lag
            keep = (t >= 0) & (t < steps)
            np.add.at(trace[:, n], (t[keep], j[keep]), 1.0)
    sim.end()
    for name, parts in spec["outputs"].items():
        out[name] = joined(out, arrays, name, parts).reshape(steps, samples, *spec["shapes"][name])
    out["timing/build_s"] = np.asarray(net["_build_s"])
    out["timing/run_s"] = np.asarray(run_s)
    return out


def joined(out: dict[str, np.ndarray], arrays: dict[str, np.ndarray], name: str, parts: Any) -> np.ndarray:
    """Output ``name``'s recording (T, N, size): one population's, or the populations a Concat joins, each element
    taken from its population (``<name>/output_part``) and neuron (``<name>/output_index``)."""
    if isinstance(parts, str):
        return out[f"trace/{parts}"]
    part, index = arrays[f"{name}/output_part"], arrays[f"{name}/output_index"]
    first = out[f"trace/{parts[0]}"]
    result = np.zeros((first.shape[0], first.shape[1], part.size))
    for k, pop in enumerate(parts):
        here = part == k
        result[:, :, here] = out[f"trace/{pop}"][:, :, index[here]]
    return result


def run_spinnaker(
    spec: dict[str, Any], arrays: dict[str, np.ndarray], steps: int, neurons_per_core: int | None
) -> dict[str, Any]:
    """Map the network with sPyNNaker (a virtual board when spynnaker.cfg says so): the cores and chips it used."""
    sim = setup("spinnaker", spec, "", neurons_per_core)
    net = build(sim, "spinnaker", spec, arrays, steps)
    start = time.perf_counter()
    sim.run((steps + int(spec["max_lag"]) + 1) * float(spec["dt_ms"]))
    run_s = time.perf_counter() - start
    from spinn_front_end_common.data import FecDataView

    cores: dict[str, int] = {}
    chips = set()
    for placement in FecDataView.iterate_placemements():
        label = str(getattr(placement.vertex, "label", "") or type(placement.vertex).__name__)
        cores[label] = cores.get(label, 0) + 1
        chips.add((placement.x, placement.y))
    sim.end()
    return {
        "cores": cores,
        "cores_used": sum(cores.values()),
        "chips_used": len(chips),
        "build_s": net["_build_s"],
        "map_s": run_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("brian2", "spinnaker"), default="brian2")
    parser.add_argument("--inputs", type=Path, help="0/1 spikes (T, N, *shape) by input name (.npz)")
    parser.add_argument("--steps", type=int, help="SIR steps to run (default: the inputs' length)")
    parser.add_argument("--out", type=Path, default=Path("out.npz"))
    parser.add_argument("--codegen", choices=("numpy", "cython"), default="numpy")
    parser.add_argument("--mapping", type=Path, help="--backend spinnaker: write the placement summary here (JSON)")
    parser.add_argument("--neurons-per-core", type=int, help="--backend spinnaker: set_number_of_neurons_per_core")
    args = parser.parse_args(argv)
    spec, arrays = load()
    if args.backend == "spinnaker":
        mapping = run_spinnaker(spec, arrays, args.steps or 1, args.neurons_per_core)
        text = json.dumps(mapping)
        if args.mapping:
            args.mapping.write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0
    if args.inputs is None:
        parser.error("--backend brian2 needs --inputs X.npz")
    with np.load(args.inputs, allow_pickle=False) as data:
        feeds = {k: np.asarray(data[k], np.float64) for k in data.files}
    steps = args.steps or next(iter(feeds.values())).shape[0]
    feeds = {
        k: np.concatenate([v, np.zeros((max(0, steps - v.shape[0]), *v.shape[1:]))])[:steps] for k, v in feeds.items()
    }
    out = run_brian2(spec, arrays, feeds, steps, args.codegen)
    np.savez(args.out, **out)
    print(json.dumps({"build_s": float(out["timing/build_s"]), "run_s": float(out["timing/run_s"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
