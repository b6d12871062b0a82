"""How fast PyNN 0.13 hands a connection list to Brian2: FromListConnector vs the artifact's bulk connect.

    python benchmarks/spinnaker2/connect.py [SYNAPSES]

Builds one projection of SYNAPSES random synapses (100 → 1,000 neurons) each way, checks both hold the same
weights, and prints the seconds (targets/spinnaker2/docs/spinnaker2-target.md quotes the numbers).
"""

from __future__ import annotations

import sys
import time

import brian2
import numpy as np

from spikec.targets.spinnaker2.pynn_script import brian2_connect


def build(n: int, bulk: bool) -> tuple[float, np.ndarray]:
    import pyNN.brian2 as sim

    brian2.prefs.codegen.target = "numpy"
    sim.setup(timestep=0.1, min_delay=0.1)
    rng = np.random.default_rng(0)
    flat = rng.choice(100 * 1000, size=n, replace=False)  # distinct pairs (as spikec's lists): FromListConnector
    pre, post = flat // 1000, flat % 1000  # sets every synapse of a repeated pair to the pair's last weight
    w = rng.integers(1, 128, n).astype(np.float64)
    a = sim.Population(100, sim.SpikeSourceArray(spike_times=[]))
    b = sim.Population(1000, sim.IF_curr_delta())
    start = time.perf_counter()
    if bulk:
        proj = sim.Projection(a, b, sim.FromListConnector([], column_names=["weight", "delay"]), sim.StaticSynapse())
        brian2_connect(proj, pre, post, w, 0.1)
    else:
        rows = np.column_stack([pre, post, w, np.full(n, 0.1)])
        proj = sim.Projection(a, b, sim.FromListConnector(rows), sim.StaticSynapse())
    seconds = time.perf_counter() - start
    got = np.asarray(proj.get("weight", format="array", multiple_synapses="sum"))
    sim.end()
    return seconds, np.nan_to_num(got)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    slow, a = build(n, bulk=False)
    fast, b = build(n, bulk=True)
    assert np.array_equal(a, b), "the two projections differ"
    print(f"{n} synapses: FromListConnector {slow:.2f} s, bulk connect {fast:.3f} s ({slow / fast:.0f}x)")
