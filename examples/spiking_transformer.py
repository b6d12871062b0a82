"""Spiking-transformer blocks in SIR: build, run for T=4, and check which ops read binary spikes.

    python examples/spiking_transformer.py

Builds a Spikformer block (spike-addition residual) and the two neuron-first variants
(Spikingformer with SSA, Spike-driven Transformer with SDSA) from random weights, runs each on
random tokens with the numpy reference and the torch backend, prints each LIF's firing rate, and
runs the binary-spike check (spikec.spike_check) on each.
"""

from __future__ import annotations

import numpy as np

from spikec.blocks import BlockWeights, spike_driven_block, spikformer_block
from spikec.interp import run
from spikec.spike_check import check_spikes


def main() -> None:
    rng = np.random.default_rng(0)
    tokens, dim, hidden, heads, steps = 16, 32, 64, 4, 4
    weights = BlockWeights.random(rng, dim, hidden)
    x = rng.normal(0.5, 1.0, size=(steps, 2, tokens, dim))  # (T, batch, N, D), analog tokens
    blocks = {
        "spikformer": spikformer_block(weights, tokens=tokens, heads=heads),
        "spikingformer": spike_driven_block(weights, tokens=tokens, heads=heads, attention="ssa"),
        "spike-driven (SDSA)": spike_driven_block(weights, tokens=tokens, heads=heads, attention="sdsa"),
    }
    for title, block in blocks.items():
        ref = run(block, x, trace=True)
        torch_out = run(block, x, backend="torch").outputs["out"]
        gap = float(np.max(np.abs(torch_out - ref.outputs["out"])))
        rates = ", ".join(f"{n} {ref.traces[n].mean():.2f}" for n, node in block.nodes.items() if node.kind == "LIF")
        print(f"{title}: {len(block.nodes)} nodes, numpy vs torch max |diff| {gap:.1e}")
        print(f"  firing rates: {rates}")
        print(f"  binary spikes: {check_spikes(block).summary()}")


if __name__ == "__main__":
    main()
