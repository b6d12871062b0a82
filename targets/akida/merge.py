"""Akida ``Add`` and ``Concatenate`` layers: the output scales their inputs share, and their integer fields.

Both merge integers as they are: an ``Add`` shifts each input left by ``a_shift``/``b_shift`` (powers of two
only), a ``Concatenate`` not at all. So the layers feeding one merge are given one output scale
(``ScaleGroups``: a union of the plans each merge reads, over chains of merges too), fixed by the first of them
quantized: a conv or dense layer takes :math:`s_g = \\max_m M_m / q_{max}` over the group's calibrated ranges
(a member without one, a layer without ReLU feeding an ``Add``, counts the ``Add``'s range), and reaches it
through its ``output_scales``; an ``Add`` can only reach :math:`s_{in} 2^k`, so it fixes its group with the
smallest :math:`k` that covers the group's ranges, and must meet a group another member fixed to a power of two.

``Add``: :math:`y = \\mathrm{sat}((a + b) \\gg k)` with both inputs at :math:`s_{in}` (shifts 0, or the power of
two between two fixed scales), output scale :math:`s_{in} 2^k`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from spikec.errors import TargetError
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.passes.quantize import QuantizationError
from spikec.targets.akida.dialect import AkidaAdd, AkidaConcat, add_range
from spikec.targets.akida.legalize import MERGES, Plan
from spikec.targets.akida.quantize import qmax

WIDE_BITS = 8
WIDE_FACTOR = 8  # an 8-bit member's scale is the 4-bit group's / 8: 127 / 8 = 15.9 covers the 4-bit top, 15
WIDE_RULES = (  # the mapper's words (akida 2.19.3, SixNodesIPv2), why the branch into an Add is 8-bit at 4 bits
    '"Without activation output bitwidth should be 8 or 28.", "4-bit weights and 8-bit potential is not allowed.", '
    '"Input bits should be >= weights bits.", and for the Add "Output must be 8-bit."'
)


@dataclasses.dataclass(frozen=True)
class Widths:
    """The plans that compute at 8 bits though the model's activations are 4 (``wide``): a layer without ReLU
    feeding an Add, the layer it reads and the Adds it feeds (``outputs``); and those of them with 8-bit weights
    (``weights``: the layer without ReLU, where what it reads is 8-bit)."""

    outputs: frozenset[str] = frozenset()
    weights: frozenset[str] = frozenset()

    def output_bits(self, name: str, bits: int) -> int:
        return WIDE_BITS if name in self.outputs else bits

    def weight_bits(self, name: str, bits: int) -> int:
        return WIDE_BITS if name in self.weights else bits


def wide(plans: list[Plan], bits: int) -> Widths:
    """At 4-bit activations, the residual branches that must be 8-bit for the mapper (``WIDE_RULES``): the engine
    computes either exactly, but a 4-bit layer without ReLU outputs [-8, 7], too coarse for a residual."""
    if bits >= WIDE_BITS:
        return Widths()
    by_name = {p.weighted: p for p in plans}
    readers = {p.weighted: [q for q in plans if p.weighted in q.sources] for p in plans}
    outputs: set[str] = set()
    weights: set[str] = set()
    for plan in plans[:-1]:
        after = readers[plan.weighted]
        if plan.merge or plan.relu or not after or any(q.merge != "add" for q in after):
            continue
        outputs |= {plan.weighted, *(q.weighted for q in after)}
        source = by_name.get(plan.sources[0])
        if source is not None and source.merge != "concat":  # a Concatenate's inputs share their bits: left as is
            outputs.add(source.weighted)
            weights.add(plan.weighted)
    return Widths(frozenset(outputs), frozenset(weights))


class ScaleGroups:
    """Which plans' outputs must share one scale (they feed one merge), and that scale once fixed. The scale kept
    is a ``bits``-wide member's; an 8-bit member of a 4-bit group (``Widths``) outputs at 1/8 of it, so its 127
    covers the group's range and an Add aligns it with a left shift of 3."""

    def __init__(self, graph: Graph, plans: list[Plan], bits: int, widths: Widths | None = None) -> None:
        self.graph = graph
        self.bits = bits
        self.widths = widths or Widths()
        self.parent: dict[str, str] = {}
        self.fixed: dict[str, float] = {}
        self.by_name = {p.weighted: p for p in plans}
        self.feeds_merge: dict[str, Plan] = {}
        for plan in plans:
            if plan.merge:
                for src in plan.sources:
                    if src not in self.by_name:
                        raise TargetError(
                            f"{graph.describe(plan.weighted)}: {MERGES[plan.merge]} of the model's input: Akida "
                            "reads the input through an InputConv2D only; merge the outputs of convolutions"
                        )
                    self.feeds_merge[src] = plan
                    self._union(plan.sources[0], src)

    def _find(self, name: str) -> str:
        while self.parent.get(name, name) != name:
            name = self.parent[name]
        return name

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self.parent[rb] = ra

    def in_group(self, plan: Plan) -> bool:
        return plan.weighted in self.feeds_merge

    def members(self, plan: Plan) -> list[Plan]:
        root = self._find(plan.weighted)
        return [p for n, p in self.by_name.items() if n in self.feeds_merge and self._find(n) == root]

    def wanted(self, plan: Plan) -> float:
        """:math:`\\max_m M_m / q_{max}` over the group's calibrated ranges."""
        ranges = [m.out_range if m.out_range is not None else self.feeds_merge[m.weighted].out_range
                  for m in self.members(plan)]  # fmt: skip
        known = [r for r in ranges if r is not None]
        if not known:
            raise TargetError(
                f"{self.graph.describe(plan.weighted)}: no calibrated range for the layers feeding "
                f"{self.graph.describe(self.feeds_merge[plan.weighted].weighted)}: compile with --calib X.npy"
            )
        return max(known) / qmax(self.bits)

    def factor(self, plan: Plan) -> int:
        """How much finer than the group's kept scale ``plan`` outputs: 8 for an 8-bit member of a 4-bit group."""
        return WIDE_FACTOR if self.widths.output_bits(plan.weighted, self.bits) > self.bits else 1

    def output_scale(self, plan: Plan) -> np.ndarray | None:
        """The scale a conv/dense layer outputs at: its group's (fixed now if it is the first), else None."""
        if not self.in_group(plan):
            return None
        root = self._find(plan.weighted)
        if root not in self.fixed:
            self.fixed[root] = self.wanted(plan)
        return np.asarray(self.fixed[root] / self.factor(plan))

    def fix(self, plan: Plan, scale: float) -> None:
        if self.in_group(plan):
            self.fixed.setdefault(self._find(plan.weighted), scale * self.factor(plan))

    def target(self, plan: Plan, top: int) -> tuple[float, bool]:
        """The scale a merge's output should have (``top``: its largest integer) and whether another member of its
        group fixed it already."""
        if self.in_group(plan):
            root = self._find(plan.weighted)
            if root in self.fixed:
                return self.fixed[root] / self.factor(plan), True
            wanted = self.wanted(plan)  # the kept scale: its Add's own covers the range and keeps it
            return max(wanted * qmax(self.bits) / top, wanted / self.factor(plan)), False
        if plan.out_range is None:
            raise TargetError(
                f"{self.graph.describe(plan.nodes[-1])}: no calibrated range after {MERGES[plan.merge]}: "
                "follow it by a ReLU (method ann calibrates ReLU outputs) or a layer"
            )
        return plan.out_range / top, False


MERGE_LAYERS = {"add": "Add", "concat": "Concatenate"}  # Akida's layer per merge


def _log2(ratio: float) -> float:
    return math.log2(ratio) if ratio > 0 else float("nan")


def _power_of_two(ratio: float) -> int | None:
    k = round(_log2(ratio))
    return k if abs(_log2(ratio) - k) < 1e-9 else None


def merge_layer(
    graph: Graph, plan: Plan, in_scales: list[np.ndarray], groups: ScaleGroups, bits: int
) -> tuple[Node, np.ndarray, dict[str, Any]]:
    """An Add or Concatenate plan → its Akida node, its output scale and its report entry."""
    where = graph.describe(plan.weighted)
    scales = [float(np.max(s)) for s in in_scales]
    low = min(scales)
    shifts = [_power_of_two(s / low) for s in scales]
    if any(k is None for k in shifts):
        raise QuantizationError(
            f"{where}: its inputs' scales {', '.join(f'{s:.4g}' for s in scales)} differ by no power of two: "
            f"{MERGES[plan.merge]} cannot align them; feed it from convolutions (their scales follow the group's)"
        )
    channels = graph.types[plan.weighted][0]
    node: Node
    if plan.merge == "concat":
        if any(shifts):
            raise QuantizationError(f"{where}: a Concatenate's inputs must share one scale, got {scales}")
        node, s_y, extra = AkidaConcat(origin=graph.nodes[plan.weighted].origin), low, {}
    else:
        signed = any(not groups.by_name[s].relu for s in plan.sources)
        target, fixed = groups.target(plan, add_range(bits)[1])
        k = _power_of_two(target / low) if fixed else max(math.ceil(_log2(target / low) - 1e-9), -127)
        if k is None:
            raise QuantizationError(
                f"{where}: its output must have scale {target:.4g}, fixed by another layer of its group, but an Add "
                f"reaches only {low:.4g} times a power of two; merge the outputs of convolutions there instead"
            )
        s_y = low * 2.0**k
        groups.fix(plan, s_y)
        a_shift, b_shift = (np.full(channels, v, np.int64) for v in shifts)
        node = AkidaAdd(a_shift=a_shift, b_shift=b_shift, output_shift=np.full(channels, -k, np.int64),
                        output_bits=bits, signed=int(signed), origin=graph.nodes[plan.weighted].origin)  # fmt: skip
        extra = {"output_shift": -k, "input_shifts": shifts, "signed": signed}
    record = {
        "name": plan.weighted, "origin": graph.nodes[plan.weighted].origin, "akida": MERGE_LAYERS[plan.merge],
        "nodes": plan.nodes, "sources": plan.sources, "weight_bits": 0, "output_bits": bits, "relu": plan.relu,
        "pool": "none", "output_scale": s_y, "calibrated_range": plan.out_range, **extra,
    }  # fmt: skip
    return node, np.asarray(s_y), record
