"""The options and per-layer report of ``quantize{target=loihi2}`` (docs/semantics.md, "quantize{target=loihi2}",
Report)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from spikec.targets.loihi2.dialect import SignMode
from spikec.targets.loihi2.neurons import NeuronSpec

STATE_MAX = (1 << 23) - 1  # Loihi's 24-bit u and v


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """The options of ``quantize`` as the Loihi quantizer sees them (docs/semantics.md, "quantize{target=loihi2}")."""

    weight_bits: int = 8  # mantissa bits of a weight
    sign_mode: str = "auto"  # auto (per layer from its weights) | mixed | excitatory | inhibitory
    max_rel_error: float = 0.1  # largest |ŵ − w| allowed, relative to the layer's largest |w|
    input_max: float = 1.0  # largest |input| per step (1: binary spikes; 255: raw 8-bit pixels as graded spikes)
    timesteps: int = 256  # steps the readout integrators must hold without saturating
    reset_to_zero: bool = False  # accept subtract-reset IFs and v_init != 0 as Loihi's reset to zero from v = 0
    align: str = "auto"  # exact | arrival | auto: how a neuron reads sources of different latency (layer.py)


def layer_report(syn: str, name: str, kind: str, spec: NeuronSpec, w: np.ndarray, fields: dict[str, Any],
                 sigma: float, bound: dict[str, float], binding: str, mode: SignMode) -> dict[str, Any]:  # fmt: skip
    """One layer's line of the quantize report: scale, exponent, errors, fields, 24-bit bounds and headroom."""
    w_max = float(np.max(np.abs(w))) or 1.0
    err = np.abs(fields["weight"] - w)
    nonzero = w != 0
    return {
        "name": name, "synapse": syn, "kind": kind, "neuron_du": spec.du, "neuron_dv": spec.dv,
        "scale": float(sigma), "scale_limited_by": binding, "weight_exp": fields["exponent"],
        "sign_mode": mode.name.lower(),
        "mantissa_range": [int(np.min(fields["mantissa"])), int(np.max(fields["mantissa"]))],
        "max_rel_weight_error": float(np.max(err)) / w_max,
        "mean_rel_weight_error": float(np.mean(err)) / (float(np.mean(np.abs(w))) or 1.0),
        "zeroed_weights": float(np.mean(fields["mantissa"][nonzero] == 0)) if np.any(nonzero) else 0.0,
        "vth": [int(np.min(fields["vth"])), int(np.max(fields["vth"]))],
        "bias_mant": [int(np.min(fields["bias_mant"])), int(np.max(fields["bias_mant"]))],
        "bias_exp": [int(np.min(fields["bias_exp"])), int(np.max(fields["bias_exp"]))],
        "u_bound": bound["u"], "v_bound": bound["v"],
        "headroom_bits": float(np.log2(STATE_MAX / max(max(bound.values()), 1.0))),
        "readout": spec.threshold is None, "approximations": list(spec.approximations),
    }  # fmt: skip


def report_lines(report: dict[str, Any]) -> list[str]:
    """Lines for the CLI: one per layer (scale, exponent, weight errors, thresholds, state headroom)."""
    if report.get("unchanged"):
        return [f"  already in the {report['target']} dialect: unchanged"]
    lines = [
        f"  target {report['target']}: input_max {report['input_max']:g}, latency {report['latency_steps']} steps, "
        f"readouts (read their v) {report['readouts']}"
    ]
    if "alignment" in report:
        lines.append(f"  alignment {report['alignment']['chosen']}: {report['alignment']['why']}")
    if "shared_parts" in report:
        shared = report["shared_parts"]
        lines.append(f"  shared parts: {shared['parts']} computed once, read channel by channel from graded relays "
                     f"({shared['relay_neurons']:,} relay neurons)")  # fmt: skip
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
        if layer.get("bias_on_host"):
            lines.append(f"  {'':<28} bias on the host: v + (t - latency) * host_bias (report outputs); the chip's "
                         "v would not hold it with the weights")  # fmt: skip
    return lines
