"""``quantize{target=...}``: lower a float SNN to a hardware's fixed-point dialect, with a per-layer report.

One quantizer per target in ``QUANTIZERS`` (``register_quantizer``); ``loihi2`` is the first
(passes/quantize_loihi2.py). A quantizer takes the graph and the pass's options and returns a
``QuantizeResult``: the lowered graph and a JSON-able report (per layer: exponents, fields, weight
errors, state headroom). Options a target does not use are ignored by it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from spikec.errors import PassError, TargetError
from spikec.ir.graph import Graph
from spikec.pipeline import PassResult, register_pass


class QuantizationError(TargetError):
    """A value cannot be represented in the target's fixed-point fields (names the layer and the ranges)."""


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """The options of ``quantize`` as a quantizer sees them (docs/semantics.md, "quantize{target=loihi2}")."""

    weight_bits: int = 8  # mantissa bits of a weight
    sign_mode: str = "auto"  # auto (per layer from its weights) | mixed | excitatory | inhibitory
    max_rel_error: float = 0.1  # largest |ŵ − w| allowed, relative to the layer's largest |w|
    input_max: float = 1.0  # largest |input| per step (1: binary spikes; 255: raw 8-bit pixels as graded spikes)
    timesteps: int = 256  # steps the readout integrators must hold without saturating
    reset_to_zero: bool = False  # accept subtract-reset IFs and v_init != 0 as Loihi's reset to zero from v = 0


@dataclasses.dataclass(frozen=True)
class QuantizeResult(PassResult):
    report: dict[str, Any] = dataclasses.field(default_factory=dict)


Quantizer = Callable[[Graph, QuantizeOptions], QuantizeResult]
QUANTIZERS: dict[str, Quantizer] = {}


def register_quantizer(target: str) -> Callable[[Quantizer], Quantizer]:
    """Register ``fn`` as the quantizer of ``target`` (one per target)."""

    def register(fn: Quantizer) -> Quantizer:
        if target in QUANTIZERS:
            raise TypeError(f"quantizer '{target}' registered by {QUANTIZERS[target].__module__} and {fn.__module__}")
        QUANTIZERS[target] = fn
        return fn

    return register


@register_pass("quantize")
def quantize(
    graph: Graph,
    *,
    target: str = "loihi2",
    weight_bits: int = 8,
    sign_mode: str = "auto",
    max_rel_error: float = 0.1,
    input_max: float = 1.0,
    timesteps: int = 256,
    reset_to_zero: bool = False,
) -> QuantizeResult:
    """Float SNN -> target fixed point (target=loihi2): weights to mantissa·2^exp, fields fitted, per-layer report."""
    if target not in QUANTIZERS:
        raise PassError(f"quantize: unknown target {target!r}; known targets: {', '.join(sorted(QUANTIZERS))}")
    if not 2 <= weight_bits <= 8:
        raise QuantizationError(f"quantize: weight_bits={weight_bits} must be 2..8 (Loihi's weight mantissas)")
    if not max_rel_error > 0:
        raise PassError(f"quantize: max_rel_error={max_rel_error} must be > 0")
    if not input_max > 0 or input_max != int(input_max):
        raise PassError(f"quantize: input_max={input_max} must be a positive integer (fixed-point inputs are integers)")
    if timesteps < 1:
        raise PassError(f"quantize: timesteps={timesteps} must be >= 1")
    options = QuantizeOptions(weight_bits, sign_mode, max_rel_error, input_max, timesteps, reset_to_zero)
    return QUANTIZERS[target](graph, options)


def format_quantize_report(report: dict[str, Any]) -> list[str]:
    """Lines for the CLI: one per layer (scale, exponent, weight errors, thresholds, state headroom)."""
    if report.get("unchanged"):
        return [f"  already in the {report['target']} dialect: unchanged"]
    lines = [
        f"  target {report['target']}: input_max {report['input_max']:g}, latency {report['latency_steps']} steps, "
        f"readouts (read their v) {report['readouts']}"
    ]
    for layer in report["layers"]:
        if "scale" not in layer:
            lines.append(f"  {layer['name']:<28} {layer['kind']:<8} {layer['lowered']}")
            continue
        lines.append(
            f"  {layer['name']:<28} {layer['kind']:<8} scale {layer['scale']:<10.4g} exp {layer['weight_exp']:>2} "
            f"mant {layer['mantissa_range']} err max {layer['max_rel_weight_error']:.2%} "
            f"mean {layer['mean_rel_weight_error']:.2%}  vth {layer['vth']} bias {layer['bias_mant']}"
            f"<<{layer['bias_exp']}  headroom {layer['headroom_bits']:.2f} bits ({layer['scale_limited_by']})"
        )
        if layer["approximations"]:
            lines.append(f"  {'':<28} approximations: {', '.join(layer['approximations'])}")
    return lines
