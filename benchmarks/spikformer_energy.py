"""Spikformer against Spikingformer on ``spikec.blocks``: the 45 nm MAC/AC energy of the same encoder blocks.

Builds two stacked encoder blocks of each kind (``spikformer_block``; ``spike_driven_block`` with SSA, which is
Spikingformer's block) from the *same* random weights (``BlockWeights.random``, fixed seed), at the size of
Spikformer-4-384 on CIFAR-10 (64 tokens, 384 channels, 12 heads, MLP 1536, T = 4), feeds both the same
Bernoulli input spikes, measures the synaptic operations in spikec's interpreter (``spikec.report.metrics``:
Linear layers and the attention's Q·Kᵀ and ·V products) and prices them with the literature's 45 nm figures
(``spikec.report.energy``: 4.6 pJ per MAC, 0.9 pJ per AC), and with the analog in-memory model beside it.
Spikingformer's block takes its input as a membrane potential and fires it through its shortcut LIF first; it is
fed 3·S, which that LIF (τ = 2, v_th 1, reset to 0) fires back as exactly the spikes S, so both blocks' first
Linear layers read the same spikes (checked).

The BN shift is lowered by ``--shift`` (default 1.0) from ``LinearBN.random``'s, which makes its LIFs fire at
roughly the rates trained spiking transformers report (10-30 %) rather than about half the time.

It measures and prints; it asserts nothing but the input check. docs/energy.md records its output.
Usage: python benchmarks/spikformer_energy.py [--samples 4] [--rate 0.15] [--seed 0] [--shift 1.0]
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import numpy as np

from spikec.blocks import BlockWeights, LinearBN, spike_driven_block, spikformer_block, stack
from spikec.report.energy import E_AC_PJ, E_MAC_PJ, analog_in_memory, literature_45nm
from spikec.report.metrics import measure

GAIN = 3.0  # Spikingformer input 3·S: its shortcut LIF reaches v = 1.5 and fires exactly where S does
TOKENS, DIM, HEADS, HIDDEN, STEPS, BLOCKS = 64, 384, 12, 1536, 4, 2  # Spikformer-4-384, CIFAR-10 (8x8 patches)
ATTENTION_KINDS = ("SpikingSelfAttention",)
CLAIM = (
    "Zhou et al., 'Spikingformer' (arXiv:2304.11954): 'reduces energy consumption by 60.34% compared with "
    "Spikformer on ImageNet' (first version); a later version says 57.34% (ImageNet, whole network)"
)


def lowered(w: LinearBN, shift: float) -> LinearBN:
    return dataclasses.replace(w, bn_bias=np.asarray(w.bn_bias) - shift)


def weights(rng: np.random.Generator, shift: float) -> BlockWeights:
    w = BlockWeights.random(rng, DIM, HIDDEN)
    return BlockWeights(**{f.name: lowered(getattr(w, f.name), shift) for f in dataclasses.fields(w)})


def summary(metrics: dict[str, Any]) -> dict[str, float]:
    lit = literature_45nm(metrics)
    layers = metrics["synapse_layers"]
    attention = [s for s in layers if s["kind"] in ATTENTION_KINDS]
    linear = [s for s in layers if s["kind"] not in ATTENTION_KINDS]
    spiking = [n for n in metrics["neuron_layers"] if n["spiking"]]
    return {
        "linear_macs": sum(s["effective_macs"] for s in linear),
        "linear_acs": sum(s["effective_acs"] for s in linear),
        "attention_acs": sum(s["effective_acs"] for s in attention),
        "attention_macs": sum(s["effective_macs"] for s in attention),
        "rate": 1.0 - float(metrics["activation_sparsity"]),
        "min_rate": min(1.0 - n["activation_sparsity"] for n in spiking),
        "max_rate": max(1.0 - n["activation_sparsity"] for n in spiking),
        "pj": float(lit["picojoules"]),
        "aimc_pj": float(analog_in_memory(metrics)["picojoules"]),
        "attention_pj": sum(E_MAC_PJ * s["effective_macs"] + E_AC_PJ * s["effective_acs"] for s in attention),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.15, help="input spike rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", type=float, default=1.0, help="lower every BN shift by this much")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    block_weights = [weights(rng, args.shift) for _ in range(BLOCKS)]
    spikes = (rng.random((STEPS, args.samples, TOKENS, DIM)) < args.rate).astype(np.float64)

    spikformer = stack([spikformer_block(w, tokens=TOKENS, heads=HEADS) for w in block_weights]).inline_subgraphs()
    spikingformer = stack(
        [spike_driven_block(w, tokens=TOKENS, heads=HEADS, attention="ssa") for w in block_weights]
    ).inline_subgraphs()
    first = next(n for n in spikingformer.nodes if n.endswith("shortcut_lif"))
    refired = measure(spikingformer, {"x": GAIN * spikes}, record=[first]).counts[first]
    assert np.array_equal(refired, spikes.sum(axis=0)), "the shortcut LIF does not re-emit the input spikes"

    rows = {
        "Spikformer": summary(measure(spikformer, {"x": spikes}).to_json()),
        "Spikingformer": summary(measure(spikingformer, {"x": GAIN * spikes}).to_json()),
    }
    print(
        f"{BLOCKS} encoder blocks, N={TOKENS} tokens, D={DIM}, {HEADS} heads, MLP {HIDDEN}, T={STEPS}, "
        f"{args.samples} samples, input rate {args.rate}, seed {args.seed}, BN shift -{args.shift}"
    )
    print(f"per sample; 45 nm: E_MAC {E_MAC_PJ} pJ, E_AC {E_AC_PJ} pJ")
    head = ("block", "rate (min-max)", "Linear MACs", "Linear ACs", "attn ACs", "attn MACs", "attn nJ", "total µJ")
    head += ("AIMC µJ",)
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, r in rows.items():
        cells = (
            name,
            f"{r['rate']:.3f} ({r['min_rate']:.3f}-{r['max_rate']:.3f})",
            f"{r['linear_macs']:.4g}",
            f"{r['linear_acs']:.4g}",
            f"{r['attention_acs']:.4g}",
            f"{r['attention_macs']:.4g}",
            f"{r['attention_pj'] / 1e3:.1f}",
            f"{r['pj'] / 1e6:.1f}",
            f"{r['aimc_pj'] / 1e6:.1f}",
        )
        print("| " + " | ".join(cells) + " |")
    ratio = rows["Spikingformer"]["pj"] / rows["Spikformer"]["pj"]
    print(f"Spikingformer / Spikformer energy: {ratio:.3f} (reduction {100 * (1 - ratio):.1f} %)")
    print(f"claim: {CLAIM}")
    aimc = rows["Spikingformer"]["aimc_pj"] / rows["Spikformer"]["aimc_pj"]
    print(f"analog in-memory model (weighted layers on crossbars, attention digital): ratio {aimc:.3f}")


if __name__ == "__main__":
    main()
