"""The result of partitioning: which neurons of which layer sit on which core of which chip.

A :class:`CoreMap` is plain data: JSON-serialisable (``to_json`` / ``from_json``; a target's emitter
writes it as ``core_map.json``) and printable (``summary``). Each placement is a box of a layer's
tensor, per axis ``[lo, hi)`` in the layer's own shape (C, H, W for a feature map, (tokens, features)
for a token layer): neurons ``x[c0:c1, h0:h1, w0:w1]`` of that layer sit on that core.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from spikec.regions import Box, volume
from spikec.resources import CORE_RESOURCES


@dataclasses.dataclass(frozen=True)
class Placement:
    """Neurons ``box`` (per axis ``[lo, hi)``) of a layer on ``core`` (global index) of ``chip``."""

    core: int
    chip: int
    box: Box

    @property
    def neurons(self) -> int:
        return volume(self.box)


@dataclasses.dataclass(frozen=True)
class CoreUse:
    """One core: the layers it holds and what it uses of each resource (CORE_RESOURCES order)."""

    core: int
    chip: int
    layers: tuple[str, ...]
    usage: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Traffic:
    """Spike messages per time step (each neuron spiking at its rate): all, leaving a core, leaving a chip.

    A neuron's spike is one message to every core holding neurons it feeds.
    """

    total: float
    inter_core: float
    inter_chip: float


@dataclasses.dataclass(frozen=True)
class CoreMap:
    """Layers -> placements, per-core usage, and how the core count compares with the lower bound."""

    target: str
    cores_per_chip: int
    capacity: tuple[int, ...]  # per core, CORE_RESOURCES order
    layers: Mapping[str, tuple[Placement, ...]]
    shapes: Mapping[str, tuple[int, ...]]  # per layer: its neuron tensor's shape
    tiles: Mapping[str, tuple[int, ...]]  # per layer: the tile shape it was cut into
    cores: tuple[CoreUse, ...]
    bound_by_resource: Mapping[str, int]  # resource -> ceil(total demand / capacity), layers whole
    tile_bound_by_resource: Mapping[str, int]  # resource -> the same with halo and weight duplication
    traffic: Traffic
    rates: Mapping[str, float]  # spikes per neuron per step used for the traffic estimate
    assumptions: tuple[str, ...]  # resource-model figures marked as assumptions
    # resource -> a bound no placement beats (token-Dense weight copies, axons per token; spikec.passes._bounds)
    proven_bound_by_resource: Mapping[str, int] = dataclasses.field(default_factory=dict)
    system: str = ""  # the smallest named system of the target that holds chips_used (resource file [systems])

    @property
    def cores_used(self) -> int:
        return len(self.cores)

    @property
    def chips_used(self) -> int:
        return len({c.chip for c in self.cores})

    @property
    def lower_bound(self) -> int:
        """``max over resources ⌈total demand / per-core capacity⌉`` (at least one core)."""
        return max(1, *self.bound_by_resource.values())

    @property
    def tile_bound(self) -> int:
        """The bound counting halo and weight duplication of core-sized tiles (spikec.passes._bounds)."""
        return max(self.lower_bound, *self.tile_bound_by_resource.values())

    @property
    def proven_bound(self) -> int:
        """No placement uses fewer cores: the lower bound, tightened where it is provably loose."""
        return max(self.lower_bound, *self.proven_bound_by_resource.values())

    @property
    def binding_resource(self) -> str:
        both = {r: max(self.bound_by_resource[r], self.tile_bound_by_resource[r]) for r in self.bound_by_resource}
        return max(both, key=lambda r: both[r])

    @property
    def over_bound(self) -> float:
        """Cores used above the tighter bound, as a fraction of it (0.05 = 5 % over)."""
        return self.cores_used / self.tile_bound - 1.0

    def utilisation(self) -> dict[str, float]:
        """Mean fraction of each resource used over the cores in use."""
        if not self.cores:
            return {r: 0.0 for r in CORE_RESOURCES}
        return {
            r: sum(c.usage[i] for c in self.cores) / (self.capacity[i] * len(self.cores))
            for i, r in enumerate(CORE_RESOURCES)
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "cores_used": self.cores_used,
            "chips_used": self.chips_used,
            "system": self.system,
            "cores_per_chip": self.cores_per_chip,
            "lower_bound": self.lower_bound,
            "tile_bound": self.tile_bound,
            "binding_resource": self.binding_resource,
            "bound_by_resource": dict(self.bound_by_resource),
            "tile_bound_by_resource": dict(self.tile_bound_by_resource),
            "over_bound_percent": round(100 * self.over_bound, 2),
            "proven_bound": self.proven_bound,
            "proven_bound_by_resource": dict(self.proven_bound_by_resource),
            "over_proven_bound_percent": round(100 * (self.cores_used / self.proven_bound - 1), 2),
            "capacity": dict(zip(CORE_RESOURCES, self.capacity, strict=True)),
            "utilisation": {k: round(v, 4) for k, v in self.utilisation().items()},
            "traffic": dataclasses.asdict(self.traffic),
            "rates": dict(self.rates),
            "assumptions": list(self.assumptions),
            "layers": {
                name: {
                    "shape": list(self.shapes[name]),
                    "tile": list(self.tiles[name]),
                    "slices": [{"core": p.core, "chip": p.chip, "box": [list(a) for a in p.box]} for p in placements],
                }
                for name, placements in self.layers.items()
            },
            "cores": [
                {
                    "core": c.core,
                    "chip": c.chip,
                    "layers": list(c.layers),
                    "usage": dict(zip(CORE_RESOURCES, c.usage, strict=True)),
                }
                for c in self.cores
            ],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> CoreMap:
        """The CoreMap ``to_json`` wrote (derived figures are recomputed, not read)."""

        def box(b: Any) -> Box:
            return tuple((int(lo), int(hi)) for lo, hi in b)

        return CoreMap(
            target=str(data["target"]),
            cores_per_chip=int(data["cores_per_chip"]),
            capacity=tuple(int(data["capacity"][r]) for r in CORE_RESOURCES),
            layers={
                name: tuple(Placement(int(p["core"]), int(p["chip"]), box(p["box"])) for p in layer["slices"])
                for name, layer in data["layers"].items()
            },
            shapes={name: tuple(layer["shape"]) for name, layer in data["layers"].items()},
            tiles={name: tuple(layer["tile"]) for name, layer in data["layers"].items()},
            cores=tuple(
                CoreUse(
                    int(c["core"]),
                    int(c["chip"]),
                    tuple(c["layers"]),
                    tuple(int(c["usage"][r]) for r in CORE_RESOURCES),
                )
                for c in data["cores"]
            ),
            bound_by_resource={r: int(v) for r, v in data["bound_by_resource"].items()},
            tile_bound_by_resource={r: int(v) for r, v in data["tile_bound_by_resource"].items()},
            traffic=Traffic(**{k: float(v) for k, v in data["traffic"].items()}),
            rates={k: float(v) for k, v in data["rates"].items()},
            assumptions=tuple(data["assumptions"]),
            proven_bound_by_resource={r: int(v) for r, v in data.get("proven_bound_by_resource", {}).items()},
            system=str(data.get("system", "")),
        )

    def summary(self) -> str:
        """A few lines for people: cores against the bound, traffic, and the busiest resources."""
        lines = [
            f"{self.target}: {self.cores_used} core{'s' * (self.cores_used != 1)} on {self.chips_used} chip(s)"
            f"{f', fits one {self.system}' if self.system else ''} "
            f"(lower bound {self.lower_bound}, {self.tile_bound} counting tile halo and weight copies, set by "
            f"{self.binding_resource}; {100 * self.over_bound:+.1f}% over; proven bound {self.proven_bound})",
            f"  spike traffic per step: {self.traffic.total:,.1f} messages, {self.traffic.inter_core:,.1f} "
            f"between cores, {self.traffic.inter_chip:,.1f} between chips",
            "  mean utilisation: " + ", ".join(f"{r} {100 * u:.0f}%" for r, u in self.utilisation().items()),
        ]
        width = max((len(n) for n in self.layers), default=0)
        for name, placements in self.layers.items():
            cores = sorted({p.core for p in placements})
            neurons = sum(p.neurons for p in placements)
            span = f"core {cores[0]}" if len(cores) == 1 else f"cores {_ranges(cores)}"
            tile = "x".join(map(str, self.tiles[name]))
            lines.append(f"  {name:<{width}}  {neurons:>9,} neurons  tiles {tile:<12} {span}")
        return "\n".join(lines)


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    parts, start = [], values[0]
    for prev, cur in zip(values, [*values[1:], math.inf], strict=True):
        if cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = int(cur) if cur != math.inf else start
    return ",".join(parts)
