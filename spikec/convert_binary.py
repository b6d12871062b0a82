r"""The binary-spike transformer path: a Spikformer-style ANN → an SNN whose every synaptic op reads 0/1 spikes.

For targets that move only binary events and run no host-side nonlinearity (``Capabilities.binary_spikes_only``).
The ANN must already be spiking-friendly (softmax, LayerNorm and GELU have no binary form; the
model is retrained without them, e.g. ``benchmarks/vit/model.py``'s ``BinaryViT``):
attention :math:`\mathrm{ReLU}(Q K^\top V s)` with :math:`Q, K, V = \mathrm{ReLU}(W x)`, BatchNorm
folded into the Linear layers, ReLU MLPs, and every residual ``Add`` followed by a ReLU. Passes::

    inline-subgraphs, fuse-spiking-attention, spike-input       (exact ANN rewrites)
    spikec.convert's rate pipeline, direct input encoding       (threshold-balance … relu-to-if … fuse)

``fuse-spiking-attention`` turns the import's MatMul·MatMul plumbing into ``SpikingSelfAttention``;
``spike-input`` puts a ReLU after each (non-negative) graph input, which ``relu-to-if`` makes an IF
*encoding layer* (the image enters as a current, the first layer reads spikes);
``threshold-balance`` rescales every layer so each IF threshold is 1 and sets the attention scale
:math:`s' = s\,λ_q λ_k λ_v / λ_a` (λ: the calibration scale of Q, K, V and of the attention ReLU).

Not exact. Besides the usual rate-coding error per layer, the attention multiplies spike trains
per step: :math:`\mathbb{E}_t[q_t k_t v_t] \ne \bar q\,\bar k\,\bar v` (the rates' product) when the
trains are correlated (IF trains are regular, not independent), so the SNN's attention drifts from
the ANN's; benchmarks/vit/README.md measures the cost.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from spikec.coding import Progress, as_samples
from spikec.convert import ConversionReport, convert
from spikec.errors import InputError, PassError
from spikec.ir.ann import Clip, ReLU
from spikec.ir.attention import SpikingSelfAttention
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.ir.tensor import MatMul
from spikec.pipeline import PassManager
from spikec.spike_check import NotBinarySpikes, Offender, Role, SpikeReport, check_spikes, rule_of

PREPARATION = ("inline-subgraphs", "fuse-spiking-attention", "spike-input")
HANDLED: frozenset[type[Node]] = frozenset({ReLU, Clip})  # non-event kinds the rate pipeline converts (relu-to-if)


@dataclasses.dataclass
class BinaryReport(ConversionReport):
    """The rate conversion's report (``method="binary"``) plus the attention nodes made and the spike check."""

    attention: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # name, origin, heads, s'
    binary_spikes: bool = False  # check_spikes passed on the SNN (inputs as encoded)
    statistic: str = "percentile"  # the activation-scale statistic threshold-balance used
    phases: str = "aligned"  # initial membranes of the attention's Q/K/V neurons (attention-phases)
    attention_mode: str = "compensated"  # products of spike counts, or per-step products of spike trains


def unconvertible(graph: Graph) -> list[Offender]:
    """Nodes of an ANN that no pass of the binary path makes event-driven (with spike_check's fix hints).

    Non-event kinds other than ReLU/Clip (Softmax, LayerNorm, GELU, Unary, ...), and products of two
    activations (``MatMul``) that ``fuse-spiking-attention`` did not recognise as Q·Kᵀ·V·s.
    """
    found: list[Offender] = []
    for name in graph.order:
        node = graph.nodes[name]
        rule = rule_of(type(node))
        if rule is not None and rule.role is Role.NON_EVENT and type(node) not in HANDLED:
            found.append(Offender(name, node.kind, node.origin, "not an event-driven operation", rule.hint))
        elif isinstance(node, MatMul):
            hint = (
                "write attention as (q @ k.transpose(-2, -1)) @ v * s on ReLU'd q, k, v with the head split "
                "as reshape + transpose (benchmarks/vit/model.py SpikingAttention), so fuse-spiking-attention "
                "makes it a SpikingSelfAttention"
            )
            found.append(Offender(name, node.kind, node.origin, "a product of two activations, not attention", hint))
    return found


def convert_binary(
    graph: Graph,
    calib: np.ndarray,
    *,
    timesteps: int,
    percentile: float = 99.9,
    method: str = "percentile",
    encoding: str = "direct",
    decoding: str = "membrane",
    init: float = 0.5,
    reset: str = "subtract",
    threshold: float | str = 1.0,
    seed: int = 0,
    phases: str = "aligned",
    attention: str = "compensated",
    input_scale: float | None = None,
    backend: str = "numpy",
    batch_size: int = 128,
    measure_rates: bool = True,
    progress: Progress | None = None,
) -> tuple[Graph, BinaryReport]:
    """Convert a spiking-friendly transformer ANN into a binary-spike SNN calibrated on ``calib``.

    ``encoding="direct"`` feeds the input as a current into an IF encoding layer (``spike-input``);
    ``"graded"`` does the same with the integers ``round(x·255/max x)`` (a chip's graded input spikes);
    ``"poisson"`` feeds random 0/1 spikes instead (non-negative data), so the first layer reads them.
    ``phases="random"`` gives the IF neurons feeding each attention random initial membranes
    (``attention-phases``), so their per-step products average to the product of rates;
    ``"aligned"`` keeps ``init-membrane``'s common start.
    ``attention="compensated"`` (default) makes each attention multiply spike *counts*
    (``compensate-attention``: its mean output is the attention of the mean rates, exactly);
    ``"per-step"`` keeps Spikformer's per-step product of spike trains.
    ``reset``, ``threshold``: the IFs' reset and threshold, as ``spikec.convert`` takes them (a chip whose neuron
    resets to zero converts with ``reset="zero"`` and ``threshold="auto"``, so the SNN is the one it runs).
    Raises ``NotBinarySpikes`` naming every node no pass can make event-driven (softmax, LayerNorm,
    GELU, an unfused activation product) with the retraining that removes it, ``InputError`` for
    negative calibration inputs (the IF encoding layer needs non-negative data).
    """
    x = as_samples(graph, calib, "calibration set")
    if np.any(x < 0):
        raise InputError(
            f"the calibration set has negative inputs (min {float(x.min()):.4g}): the binary path encodes the "
            "input with a layer of IF neurons, which needs non-negative data; shift/scale the input into [0, inf)"
        )
    if attention not in ("compensated", "per-step"):
        raise InputError(f"attention {attention!r} is not one of ['compensated', 'per-step']")
    if phases not in ("random", "aligned"):
        raise InputError(f"phases {phases!r} is not one of ['random', 'aligned']")
    if encoding not in ("direct", "graded", "poisson"):
        raise InputError(f"encoding {encoding!r} is not one of ['direct', 'graded', 'poisson']")
    steps = list(PREPARATION) if encoding != "poisson" else [s for s in PREPARATION if s != "spike-input"]
    prepared = PassManager(steps).run(graph)
    bad = unconvertible(prepared)
    if bad:
        report = SpikeReport({}, tuple(bad))
        raise NotBinarySpikes(f"cannot convert to binary spikes (--method binary); {report.summary()}", report)
    snn, rate = convert(
        prepared, x, timesteps=timesteps, method=method, percentile=percentile, granularity="layer",
        encoding=encoding, decoding=decoding, init=init, reset=reset, threshold=threshold, input_scale=input_scale,
        seed=seed, backend=backend,
        batch_size=batch_size, measure_rates=measure_rates, progress=progress,
    )  # fmt: skip
    if phases == "random":
        snn = PassManager([("attention-phases", {"seed": seed})]).run(snn)
    if attention == "compensated":
        snn = PassManager(["compensate-attention"]).run(snn)
    spikes = check_spikes(snn, inputs="binary" if encoding == "poisson" else "real")
    if not spikes.ok:
        raise PassError(f"the binary path left non-spiking ops (a spikec bug, please report): {spikes.summary()}")
    made = [
        {"name": n, "origin": node.origin, "heads": node.heads, "scale": float(node.scale)}
        for n, node in snn.nodes.items()
        if isinstance(node, SpikingSelfAttention)
    ]
    fields = {f.name: getattr(rate, f.name) for f in dataclasses.fields(ConversionReport)}
    fields["method"] = "binary"
    return snn, BinaryReport(
        **fields, attention=made, binary_spikes=spikes.ok, statistic=method, phases=phases, attention_mode=attention
    )
