"""``quantize{target=NAME}``: lower a float SNN to a target's fixed-point dialect, with a per-layer report.

The pass is shared; the quantizer is the target's (``Target.quantize``, found through the ``spikec.targets``
entry points): it takes the graph and the options below and returns a ``QuantizeResult``, the lowered graph
with a JSON-able report and the lines ``spikec opt`` prints. Options a target does not use it ignores; the
ranges a chip allows (e.g. weight bits) it checks itself. docs/semantics.md describes the options.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spikec.errors import PassError, TargetError
from spikec.ir.graph import Graph
from spikec.pipeline import PassResult


class QuantizationError(TargetError):
    """A value cannot be represented in the target's fixed-point fields (names the layer and the ranges)."""


@dataclasses.dataclass(frozen=True)
class QuantizeResult(PassResult):
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    lines: tuple[str, ...] = ()  # the report as the CLI prints it, one line per layer


TARGET_OWN_OPTIONS = {  # options only some targets take (``Target.quantize_options``), and what the others lack
    "activation_bits": "quantizes no activations",
    "align": "aligns no spike sources; leave align out",
    "ip_version": "has one hardware generation; leave ip_version out",
}


def quantize(
    graph: Graph,
    *,
    target: str = "",
    weight_bits: int = 0,
    sign_mode: str = "auto",
    max_rel_error: float = 0.1,
    input_max: float = 1.0,
    timesteps: int = 256,
    reset_to_zero: bool = False,
    activation_bits: int = 0,
    align: str = "",
    ip_version: int = 0,
) -> PassResult:
    """Float SNN -> target fixed point (quantize{target=NAME}): weights and fields fitted, per-layer report."""
    from spikec.plugins import load_target

    if not target:
        raise PassError("quantize: name the target to lower to: quantize{target=NAME} (see spikec targets)")
    if not max_rel_error > 0:
        raise PassError(f"quantize: max_rel_error={max_rel_error} must be > 0")
    if not input_max > 0 or input_max != int(input_max):
        raise PassError(f"quantize: input_max={input_max} must be a positive integer (fixed-point inputs are integers)")
    if timesteps < 1:
        raise PassError(f"quantize: timesteps={timesteps} must be >= 1")
    options: dict[str, object] = {"sign_mode": sign_mode, "max_rel_error": max_rel_error}
    if weight_bits:  # 0: the target's own default (8 on most; a target may differ by generation)
        options["weight_bits"] = weight_bits
    options |= {"input_max": input_max, "timesteps": timesteps, "reset_to_zero": reset_to_zero}
    chip = load_target(target)
    own = {"activation_bits": activation_bits, "align": align, "ip_version": ip_version}  # 0/"": the target's default
    for name, value in own.items():
        if value and name not in chip.quantize_options:
            raise PassError(f"quantize: {name}={value}: target '{target}' {TARGET_OWN_OPTIONS[name]}")
    options |= {name: value for name, value in own.items() if value}
    return chip.quantize(graph, **options)
