"""The interpreter's speed against plain torch, plain numpy and the SNN simulators, on one workload, in one run.

Issue 18's workload: ``Dense 1024→1024`` feeding LIF neurons (decay 1/2 per step, threshold 1, reset to 0),
Bernoulli(0.1) input spikes, T = 1000 steps, batch 1 and 32. Each implementation runs once to warm up, then
``--repeats`` times; the table gives the best time and the ratio to plain torch (lower is faster):

* plain torch: one matmul over all T·batch rows, then a LIF scan over T (the floor any simulator meets);
* plain numpy: a loop over steps, one matvec and the LIF update per step;
* spikec, ``spikec.interp.run`` on the SIR graph (Input → Dense → LIF → Output), numpy and torch backends,
  float32; and the same layer in Loihi 2 fixed point (LoihiDense → LoihiLIF, Lava's integer arithmetic bit for
  bit: float32 synaptic products, float64 neuron state, targets/loihi2/scans.py), numpy and torch; each also in the
  stepwise schedule (``schedule="step"``: every node once per step, the interpreter before the multi-step schedule);
* SpikingJelly 2.0 multi-step (``step_mode='m'``, CPU), snnTorch 1.0 ``Leaky`` stepped per step
  (its usual loop), Norse 1.1 ``LIFBoxCell`` stepped over one matmul's currents.

* Lava 0.10's bit-accurate CPU models (``fixed_pt``) on the same fixed-point layer, in their own Python 3.10
  environment (``.venv-lava``, ``make lava-env``), driven by subprocess through spikec's Lava harness
  (``lava_side.py``): one ``run`` call per sample, no Monitor, the runtime created before the timed call; a batch is
  its samples one after another (Lava has no batch axis). Its row is the run calls' time; the startup (compiling and
  starting the processes) and reading the output (Lava sends a Var one value per message) are given apart, and
  the first sample's output is checked against spikec's, spike for spike.

A second table times spikec alone on a conv net, the Sinabs N-MNIST CNN (examples/models/cnn_sinabs.nir), in
both schedules, as ratios to the stepwise numpy run; a third the ONNX zoo's mnist-conv compiled for Loihi 2, in its
fixed-point arithmetic, on MNIST test images. A fourth runs ``spikec eval`` of the ONNX model zoo's
mnist-conv (../shared/data/onnx/mnist-conv), converted and calibrated on the first 1,000 MNIST test images, over all
10,000 test images at T = 32, as a subprocess per backend: wall time and peak RSS. It measures and prints; it asserts
nothing. Timings on a machine other sessions share are not results: the load average is recorded with them.

    .venv/bin/python benchmarks/interp_speed/measure.py [--steps 1000] [--batches 1 32] [--repeats 5]
        [--only spikec] [--lava | --no-lava] [--cnn-steps 100] [--loihi-cnn-steps 32] [--eval-backends numpy torch]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikec.interp import run
from spikec.ir import LIF, Dense, Graph, Input, Output

N = 1024  # neurons in and out
RATE = 0.1  # input spike probability per neuron per step
DT = 1e-3
TAU = 2e-3  # dt/tau = 1/2: v ← v + (I − v)/2, SpikingJelly's LIFNode(tau=2)
REPO = Path(__file__).resolve().parents[2]
CNN = REPO / "examples" / "models" / "cnn_sinabs.nir"
DATA = REPO.parent / "shared" / "data"
LAVA_SIDE = Path(__file__).resolve().parent / "lava_side.py"
LAVA = "Lava 0.10 CPU models (fixed_pt), run calls"
EVAL_STEPS = 32
Runner = Callable[[], Any]
Setup = Callable[[np.ndarray, np.ndarray], Runner]  # (weights (N, N) float32, spikes (T, B, N) float32)


def float_graph(weight: np.ndarray) -> Graph:
    """Input → Dense → LIF → Output, the SIR graph spikec's front ends make of a Linear + LIF layer."""
    nodes = {
        "x": Input(shape=(N,)),
        "fc": Dense(weight=weight.astype(np.float64)),
        "lif": LIF(tau=np.array(TAU)),
        "out": Output(),
    }
    return Graph(nodes, [("x", "fc"), ("fc", "lif"), ("lif", "out")], dt=DT)


def fixed_graph(weight: np.ndarray) -> Graph:
    """The same layer in Loihi 2 fixed point: 8-bit mixed-sign weights, u takes this step's input, v decays 1/2."""
    from spikec.targets.loihi2.dialect import LoihiDense, LoihiLIF

    mantissas = np.clip(np.round(weight * 64), -256, 255).astype(np.int64)
    nodes = {
        "x": Input(shape=(N,)),
        "fc": LoihiDense(weight=mantissas),
        "lif": LoihiLIF(du=4095, dv=2048, vth=np.array(64)),
        "out": Output(),
    }
    return Graph(nodes, [("x", "fc"), ("fc", "lif"), ("lif", "out")], dt=DT)


# -- the implementations ------------------------------------------------------------------------
def plain_torch(weight: np.ndarray, x: np.ndarray) -> Runner:
    w, xs = torch.from_numpy(weight), torch.from_numpy(x)

    def go() -> torch.Tensor:
        steps, batch = xs.shape[:2]
        current = (xs.reshape(steps * batch, N) @ w.T).reshape(steps, batch, N)
        v = torch.zeros(batch, N)
        out = torch.empty_like(current)
        for t in range(steps):
            v = v + (current[t] - v) * 0.5
            z = (v > 1.0).float()
            v = v * (1.0 - z)
            out[t] = z
        return out

    return go


def plain_numpy(weight: np.ndarray, x: np.ndarray) -> Runner:
    wt = np.ascontiguousarray(weight.T)

    def go() -> np.ndarray:
        v = np.zeros(x.shape[1:], np.float32)
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            v = v + (x[t] @ wt - v) * np.float32(0.5)
            z = (v > 1.0).astype(np.float32)
            v = v * (1.0 - z)
            out[t] = z
        return out

    return go


def spikec_run(backend: str, schedule: str = "multistep", *, fixed: bool = False) -> Setup:
    """spikec's interpreter on the layer: float32 (``float_graph``), or Loihi fixed point (``fixed_graph``),
    which needs float64 carriers to stay exact."""

    def setup(weight: np.ndarray, x: np.ndarray) -> Runner:
        graph = fixed_graph(weight) if fixed else float_graph(weight)
        dtype, device = ("float64" if fixed else "float32"), ("cpu" if backend == "torch" else None)
        return lambda: run(graph, x, backend=backend, dtype=dtype, device=device, schedule=schedule)

    return setup


def spikingjelly(weight: np.ndarray, x: np.ndarray) -> Runner:
    from spikingjelly.activation_based import functional, layer, neuron

    fc = layer.Linear(N, N, bias=False, step_mode="m")
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(weight))
    lif = neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, step_mode="m")
    net = torch.nn.Sequential(fc, lif)
    xs = torch.from_numpy(x)

    def go() -> torch.Tensor:
        functional.reset_net(net)
        with torch.no_grad():
            out: torch.Tensor = net(xs)
        return out

    return go


def snntorch(weight: np.ndarray, x: np.ndarray) -> Runner:
    import snntorch as snn

    fc = torch.nn.Linear(N, N, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(weight))
    # mem ← β·mem + I, so β = 1/2 and the input halved give v ← v + (I − v)/2
    lif = snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero")
    xs = torch.from_numpy(x)

    def go() -> torch.Tensor:
        mem = lif.init_leaky()
        out = []
        with torch.no_grad():
            for t in range(xs.shape[0]):
                spk, mem = lif(fc(xs[t]) * 0.5, mem)
                out.append(spk)
        return torch.stack(out)

    return go


def norse(weight: np.ndarray, x: np.ndarray) -> Runner:
    from norse.torch import LIFBoxCell, LIFBoxParameters

    w, xs = torch.from_numpy(weight), torch.from_numpy(x)
    cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / TAU)), dt=DT)

    def go() -> torch.Tensor:
        steps, batch = xs.shape[:2]
        current = (xs.reshape(steps * batch, N) @ w.T).reshape(steps, batch, N)
        state = None
        out = []
        with torch.no_grad():
            for t in range(steps):
                z, state = cell(current[t], state)
                out.append(z)
        return torch.stack(out)

    return go


IMPLEMENTATIONS: dict[str, Setup] = {
    "plain torch (one matmul, LIF scan)": plain_torch,
    "plain numpy loop": plain_numpy,
    "spikec numpy float32": spikec_run("numpy"),
    "spikec torch float32": spikec_run("torch"),
    "spikec Loihi fixed point, numpy": spikec_run("numpy", fixed=True),
    "spikec Loihi fixed point, torch": spikec_run("torch", fixed=True),
    "spikec numpy float32, stepwise schedule": spikec_run("numpy", "step"),
    "spikec torch float32, stepwise schedule": spikec_run("torch", "step"),
    "spikec Loihi fixed point, numpy, stepwise schedule": spikec_run("numpy", "step", fixed=True),
    "spikec Loihi fixed point, torch, stepwise schedule": spikec_run("torch", "step", fixed=True),
    "SpikingJelly 2.0 multi-step": spikingjelly,
    "snnTorch 1.0 stepwise": snntorch,
    "Norse 1.1 LIFBoxCell": norse,
}
BASELINE = "plain torch (one matmul, LIF scan)"


def workload(steps: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weight = (rng.normal(size=(N, N)) * 0.15).astype(np.float32)
    x = (rng.random((steps, batch, N)) < RATE).astype(np.float32)
    return weight, x


PAUSE = 0.5  # seconds before each implementation: the last one's BLAS/OpenMP threads stop spinning


def best_time(go: Runner, repeats: int) -> float:
    # Without the pause, spikec torch at batch 1 took 38-45 ms right after a numpy run and 21 ms after 0.2 s idle:
    # OpenBLAS's threads (numpy) spin on after their last product and take the cores torch's threads need.
    time.sleep(PAUSE)
    go()  # warm-up: allocations, lazy imports, kernel caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        go()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    cores = os.cpu_count()
    return f"{platform.machine()}, {platform.system()}, {cores} cores, torch threads {torch.get_num_threads()}"


def load() -> str:
    """The load averages (1, 5, 15 min) as the kernel reports them: a run's timings mean little above ~0.5."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "unknown"


def measure_lava(steps: int, batches: list[int], repeats: int) -> dict[str, Any]:
    """Lava's CPU models on ``fixed_graph``'s layer (lava_side.py in the Lava environment): per batch the run calls'
    seconds summed over its samples, the startup and the output read apart, and whether the first sample's spikes
    equal spikec's."""
    from spikec.targets.loihi2.lava_env import run_lava_script

    result: dict[str, Any] = {"seconds": {}, "startup_seconds": {}, "read_seconds": {}, "identical_to_spikec": {}}
    for batch in batches:
        weight, x = workload(steps, batch)
        graph = fixed_graph(weight)
        lif: Any = graph.nodes["lif"]
        spec = {"du": lif.du, "dv": lif.dv, "vth": int(np.asarray(lif.vth)), "repeats": repeats if batch == 1 else 1}
        fc: Any = graph.nodes["fc"]
        arrays = {"weight": np.asarray(fc.weight), "spikes": x.astype(np.int8)}
        out = run_lava_script(LAVA_SIDE, spec, arrays, timeout=3600.0)
        ours = run(graph, x[:, :1]).outputs["out"][:, 0]
        key = str(batch)
        result["seconds"][key] = float(out["seconds"].sum())
        result["startup_seconds"][key] = float(out["startup"].sum())
        result["read_seconds"][key] = float(out["read"])
        result["identical_to_spikec"][key] = bool(np.array_equal(out["first"], ours))
    return result


def measure_eval(backends: list[str]) -> dict[str, Any]:
    """``spikec eval`` of mnist-conv over the 10,000 MNIST test images at T = 32, one subprocess per backend (its
    wall time and peak RSS), calibrated on the first 1,000 images."""
    from spikec.data.mnist import load_mnist

    images, labels = load_mnist(DATA / "mnist")
    x = images.reshape(-1, 1, 28, 28).astype(np.float32)
    model = DATA / "onnx" / "mnist-conv" / "model.onnx"
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="spikec-eval-") as tmp:
        files = {"data": Path(tmp) / "x.npy", "labels": Path(tmp) / "y.npy", "calib": Path(tmp) / "calib.npy"}
        np.save(files["data"], x)
        np.save(files["labels"], labels.astype(np.int64))
        np.save(files["calib"], x[:1000])
        for backend in backends:
            command = ["eval", str(model), "--calib", str(files["calib"]),
                       "--data", str(files["data"]), "--labels", str(files["labels"]),
                       "--timesteps", str(EVAL_STEPS), "--backend", backend, "--json"]  # fmt: skip
            stdout, wall, peak = _run_measured(command)
            report = json.loads(stdout)
            runs[backend] = {
                "seconds": wall,
                "peak_rss_bytes": peak,
                "snn_accuracy": report["snn"]["accuracy"],
                "ann_accuracy": report["ann"]["accuracy"],
            }
    return {"workload": f"spikec eval mnist-conv, 10,000 MNIST test images, T={EVAL_STEPS}", "runs": runs}


# ``python -c PEAK_RSS spikec ARGS``: the spikec CLI, then its own peak RSS on stderr. The kernel keeps a forked
# child's pre-exec peak (this process's, shared pages and all) in wait4's and getrusage's ru_maxrss; /proc's VmHWM
# belongs to the program after exec alone.
PEAK_RSS = """
import sys
from pathlib import Path
from spikec.cli import main
sys.argv = sys.argv[1:]
try:
    main()
finally:
    status = Path("/proc/self/status").read_text().splitlines()
    print("peak-rss-kB", next(line.split()[1] for line in status if line.startswith("VmHWM")), file=sys.stderr)
"""


def _run_measured(command: list[str]) -> tuple[str, float, int]:
    """Run the spikec CLI with ``command``'s arguments: its stdout, wall seconds and peak RSS in bytes."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, "spikec", *command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"spikec {' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    peak = next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("peak-rss-kB"))
    return done.stdout, wall, int(peak) * 1024


def measure(steps: int, batches: list[int], repeats: int, only: str | None) -> dict[str, Any]:
    chosen = {k: v for k, v in IMPLEMENTATIONS.items() if only is None or only.lower() in k.lower() or k == BASELINE}
    seconds: dict[str, dict[str, float]] = {name: {} for name in chosen}
    loads = [load()]
    for batch in batches:
        weight, x = workload(steps, batch)
        for name, setup in chosen.items():
            seconds[name][str(batch)] = best_time(setup(weight, x), repeats)
    result: dict[str, Any] = {
        "workload": f"Dense {N}->{N} + LIF, Bernoulli({RATE}) input, T={steps}",
        "machine": machine(),
        "repeats": repeats,
        "baseline": BASELINE,
        "seconds": seconds,
    }
    result["load"] = [*loads, load()]
    return result


def measure_cnn(steps: int, batches: list[int], repeats: int) -> dict[str, Any]:
    """The Sinabs N-MNIST CNN (NIR; conv, IF, sum-pool, dense) on Bernoulli(0.1) events: spikec, both schedules."""
    from spikec.models import load_model

    def events(batch: int) -> np.ndarray:
        return (np.random.default_rng(1).random((steps, batch, 2, 34, 34)) < RATE).astype(np.float32)

    workload = f"Sinabs N-MNIST CNN ({CNN.name}), Bernoulli({RATE}) events, T={steps}"
    return _spikec_schedules(workload, load_model(CNN), events, "float32", batches, repeats)


def measure_loihi_cnn(steps: int, batches: list[int], repeats: int) -> dict[str, Any]:
    """mnist-conv (ONNX zoo) compiled for Loihi 2 (``spikec compile --target loihi2``, calibrated on 200 MNIST test
    images) in Lava's fixed-point arithmetic: graded 9-bit pixels into LoihiConv, LIF, pools as grouped convs,
    LoihiDense; MNIST test images as integers 0..255 held over T steps."""
    from spikec.data.mnist import load_mnist
    from spikec.text import load_sir

    images, _ = load_mnist(DATA / "mnist")
    pixels = images.reshape(-1, 1, 28, 28).astype(np.float64)
    with tempfile.TemporaryDirectory(prefix="spikec-loihi-cnn-") as tmp:
        calib = Path(tmp) / "calib.npy"
        np.save(calib, pixels[:200].astype(np.float32))
        command = ["compile", str(DATA / "onnx" / "mnist-conv" / "model.onnx"), "--target", "loihi2",
                   "--calib", str(calib), "--timesteps", str(steps), "-o", str(Path(tmp) / "art")]  # fmt: skip
        subprocess.run([sys.executable, "-m", "spikec", *command], check=True, capture_output=True)
        graph = load_sir(Path(tmp) / "art" / "model.sir")

    def held(batch: int) -> np.ndarray:
        return np.repeat(pixels[None, :batch], steps, axis=0)

    workload = f"mnist-conv compiled for Loihi 2, fixed point, MNIST test images, T={steps}"
    return _spikec_schedules(workload, graph, held, "float64", batches, repeats)


def _spikec_schedules(
    workload: str,
    graph: Graph,
    inputs: Callable[[int], np.ndarray],
    dtype: str,
    batches: list[int],
    repeats: int,
) -> dict[str, Any]:
    """spikec alone on ``graph``, numpy and torch, stepwise and multi-step, as ratios to the stepwise numpy run."""
    configs = {
        f"spikec {backend} {dtype}{', stepwise schedule' if schedule == 'step' else ''}": (backend, schedule)
        for schedule in ("step", "multistep")
        for backend in ("numpy", "torch")
    }
    seconds: dict[str, dict[str, float]] = {name: {} for name in configs}
    for batch in batches:
        x = inputs(batch)
        for name, (backend, schedule) in configs.items():
            device = "cpu" if backend == "torch" else None

            def go(
                x: np.ndarray = x, backend: str = backend, schedule: str = schedule, device: str | None = device
            ) -> Any:
                return run(graph, x, backend=backend, dtype=dtype, device=device, schedule=schedule)

            seconds[name][str(batch)] = best_time(go, repeats)
    return {
        "workload": workload,
        "load": [load()],
        "machine": machine(),
        "repeats": repeats,
        "baseline": next(iter(configs)),
        "seconds": seconds,
    }


def table(result: dict[str, Any]) -> str:
    seconds: dict[str, dict[str, float]] = result["seconds"]
    batches = list(next(iter(seconds.values())))
    base = seconds[result["baseline"]]
    head = "| implementation | " + " | ".join(f"batch {b}" for b in batches) + " |"
    title = f"{result['workload']}, best of {result['repeats']} ({result['machine']}; load {result.get('load')})"
    lines = [title, "", head]
    lines.append("|---|" + "---|" * len(batches))
    for name, times in seconds.items():
        cells = [f"{times[b] * 1e3:,.0f} ms ({times[b] / base[b]:.2f}×)" for b in batches]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lava = result.get("lava")
    if lava:
        for b in batches:
            fixed = [k for k in seconds if k.startswith("spikec Loihi fixed point") and "stepwise" not in k]
            ours = [seconds[k][b] for k in fixed]
            fastest = min(ours, default=float("nan"))
            lines.append(
                f"Lava, batch {b}: startup {lava['startup_seconds'][b]:.1f} s, reading the first sample's output "
                f"{lava['read_seconds'][b]:.1f} s, spikes identical to spikec's: {lava['identical_to_spikec'][b]}; "
                f"Lava's run calls / spikec fixed point's fastest: {seconds[LAVA][b] / fastest:.1f}×"
            )
    return "\n".join(lines)


def eval_table(result: dict[str, Any]) -> str:
    lines = [f"{result['workload']} (load {result.get('load')})", "", "| backend | wall | peak RSS | SNN accuracy |"]
    lines.append("|---|---|---|---|")
    for backend, r in result["runs"].items():
        accuracy = "" if r["snn_accuracy"] is None else f"{100 * r['snn_accuracy']:.2f} %"
        lines.append(f"| {backend} | {r['seconds']:.1f} s | {r['peak_rss_bytes'] / 2**30:.2f} GiB | {accuracy} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each row after one warm-up (best kept)")
    parser.add_argument("--only", help="run only the implementations whose name holds this (and plain torch)")
    parser.add_argument("--cnn-steps", type=int, default=100, help="steps of the CNN workload (0: skip it)")
    parser.add_argument("--loihi-cnn-steps", type=int, default=32, help="steps of the Loihi CNN workload (0: skip)")
    parser.add_argument(
        "--lava", action=argparse.BooleanOptionalAction, help="Lava's row (default: when its environment exists)"
    )
    parser.add_argument("--eval-backends", nargs="*", default=["numpy", "torch"], help="spikec eval of mnist-conv")
    parser.add_argument("--json", type=Path, help="also write the times (seconds) to this file")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())  # torch's default: one thread per core
    lava = args.lava if args.lava is not None else (REPO / ".venv-lava").exists() or "SPIKEC_LAVA_PYTHON" in os.environ
    results = {"dense_lif": measure(args.steps, args.batches, args.repeats, args.only)}
    if args.cnn_steps:
        results["cnn"] = measure_cnn(args.cnn_steps, args.batches, args.repeats)
        print()
        print(table(results["cnn"]))
    if args.loihi_cnn_steps:
        results["loihi_cnn"] = measure_loihi_cnn(args.loihi_cnn_steps, args.batches, args.repeats)
        print()
        print(table(results["loihi_cnn"]))
    if args.eval_backends:
        start_load = load()
        results["eval"] = measure_eval(args.eval_backends)
        results["eval"]["load"] = [start_load, load()]
        print()
        print(eval_table(results["eval"]))
    dense = results["dense_lif"]
    if lava:  # last: Lava's processes load the machine, and the load average keeps that for minutes
        dense["lava"] = measure_lava(args.steps, args.batches, args.repeats)
        dense["lava"]["load"] = load()
        dense["seconds"][LAVA] = dense["lava"]["seconds"]
    print()
    print(table(dense))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
