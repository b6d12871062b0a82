"""The per-layer report of ``quantize{target=loihi2}`` (docs/semantics.md, "quantize{target=loihi2}", Report)."""

from __future__ import annotations

from typing import Any

import numpy as np

from spikec.ir.loihi import SignMode
from spikec.ir.node import Node
from spikec.passes._loihi_neurons import NeuronSpec

STATE_MAX = (1 << 23) - 1  # Loihi's 24-bit u and v


def layer_report(syn: str, name: str, synapse: Node, spec: NeuronSpec, w: np.ndarray, fields: dict[str, Any],
                 sigma: float, bound: dict[str, float], binding: str, mode: SignMode) -> dict[str, Any]:  # fmt: skip
    """One layer's line of the quantize report: scale, exponent, errors, fields, 24-bit bounds and headroom."""
    w_max = float(np.max(np.abs(w))) or 1.0
    err = np.abs(fields["weight"] - w)
    nonzero = w != 0
    return {
        "name": name, "synapse": syn, "kind": synapse.kind, "neuron_du": spec.du, "neuron_dv": spec.dv,
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
