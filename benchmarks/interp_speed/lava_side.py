"""Lava's side of the interpreter benchmark: ``python lava_side.py in.npz out.npz``, INSIDE the Lava environment.

Started by measure.py through spikec's Lava harness (``spikec.targets.loihi2.lava_env.run_lava_script``); imports
nothing from spikec. ``in.npz`` holds ``weight`` (the LoihiDense mantissas, (N, N)), ``spikes`` (T, B, N) and
``spec`` (JSON: ``du``, ``dv``, ``vth``, ``repeats``). Lava's best configuration on its CPU models (``fixed_pt``,
bit-accurate): source ring buffer → Dense → LIF → sink ring buffer, one ``run`` call of T steps per sample, no
Monitor. The runtime is created (processes compiled and started) before the timed call, and the sink's buffer is
read after it; both are timed apart. Reading is slow (Lava sends a Var one value per message: 27 s for 1024 × 1000
spikes), so only the first sample's output is read, to check it against spikec's. Lava has no batch axis: a batch is
its samples one after another, each on a network of its own (the state starts at zero), and the run times add up.
``out.npz``: ``first`` (the first sample's spikes, (T, N)), ``seconds`` (best run time per sample, (B,)),
``startup`` (runtime creation per sample, (B,)), ``read`` (seconds to read the first sample's output).
"""

from __future__ import annotations

import json
import sys
import time
from typing import NamedTuple

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.lif.process import LIF


class Times(NamedTuple):
    run: float  # the timed run call
    startup: float  # compiling the processes and starting the runtime
    read: float  # reading the sink's buffer (Lava sends a Var's values one message each)


def one_sample(
    weight: np.ndarray, spikes: np.ndarray, spec: dict[str, int], *, read: bool
) -> tuple[np.ndarray | None, Times]:
    """One sample (T, N) through the network: its output spikes (T, N) if ``read``, and the times."""
    steps, n = spikes.shape
    source = Source(data=spikes.T.astype(np.int32))  # Lava: (N, T)
    dense = Dense(weights=weight.astype(np.int32), num_message_bits=0)
    lif = LIF(shape=(n,), du=spec["du"], dv=spec["dv"], vth=spec["vth"], bias_mant=0, bias_exp=0)
    sink = Sink(shape=(n,), buffer=steps)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    config = Loihi2SimCfg(select_tag="fixed_pt")
    start = time.perf_counter()
    lif.create_runtime(run_cfg=config)
    startup = time.perf_counter() - start
    try:
        start = time.perf_counter()
        lif.run(condition=RunSteps(num_steps=steps), run_cfg=config)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        out = np.asarray(sink.data.get()).T if read else None  # (T, N)
        reading = time.perf_counter() - start
    finally:
        lif.stop()
    return out, Times(seconds, startup, reading)


def main(src: str, dst: str) -> None:
    with np.load(src, allow_pickle=False) as data:
        spec = json.loads(str(data["spec"]))
        weight, spikes = data["weight"], data["spikes"]
    first, read = None, 0.0
    seconds, startups = [], []
    for b in range(spikes.shape[1]):
        best = Times(float("inf"), 0.0, 0.0)
        for _ in range(max(1, int(spec["repeats"]))):
            out, times = one_sample(weight, spikes[:, b], spec, read=b == 0 and first is None)
            if out is not None:
                first, read = out, times.read
            best = min(best, times)
        seconds.append(best.run)
        startups.append(best.startup)
    assert first is not None  # the first sample's output is always read
    np.savez(dst, first=first, seconds=np.asarray(seconds), startup=np.asarray(startups), read=np.asarray(read))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
