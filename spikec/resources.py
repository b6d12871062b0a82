"""Target resource models: per-core, per-chip and per-system limits kept as data files.

A target names its file (``Target.resources``, a TOML file in the target's package);
:func:`resource_model` asks the installed target for it. Every figure is an
:class:`Limit` with its unit, source and whether it is an assumption, so a report can say which
numbers a mapping rests on.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from spikec.errors import TargetError

# The per-core resources every model must give, in the order reports list them.
CORE_RESOURCES = ("neurons", "neuron_state_bytes", "synaptic_memory_bits", "input_axons", "output_axons")


@dataclasses.dataclass(frozen=True)
class Limit:
    """One figure of a resource model: ``value`` in ``unit``, from ``source``."""

    value: int
    unit: str
    source: str
    assumption: bool
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ResourceModel:
    """What one core, one chip and one system of a target hold (see the target's data file)."""

    target: str
    description: str
    path: Path
    core: Mapping[str, Limit]  # CORE_RESOURCES -> capacity per core
    chip: Mapping[str, Limit]  # at least 'neuro_cores'
    system: Mapping[str, Limit]  # at least 'max_chips'
    synapses: Mapping[str, Limit]  # default_weight_bits, max_weight_bits, sparse_index_bits, max_delay_steps
    neuron_state_bytes: Mapping[str, Limit]  # by node kind, plus 'default'
    systems: Mapping[str, Limit] = dataclasses.field(default_factory=dict)  # boards by name: value = chips

    def smallest_system(self, chips: int) -> str:
        """The smallest named system holding ``chips`` chips, as ``'Kapoho Point (8 chips)'`` ('' if none)."""
        holding = [(limit.value, name) for name, limit in self.systems.items() if limit.value >= chips]
        if not holding:
            return ""
        size, name = min(holding)
        return f"{name} ({size} chip{'s' * (size != 1)})"

    @property
    def cores_per_chip(self) -> int:
        return self.chip["neuro_cores"].value

    @property
    def max_chips(self) -> int:
        return self.system["max_chips"].value

    def capacity(self) -> tuple[int, ...]:
        """Per-core capacity in CORE_RESOURCES order."""
        return tuple(self.core[name].value for name in CORE_RESOURCES)

    def state_bytes(self, kind: str) -> int:
        """Bytes of state one neuron of ``kind`` keeps on a core."""
        return (self.neuron_state_bytes.get(kind) or self.neuron_state_bytes["default"]).value

    def assumptions(self) -> list[str]:
        """``section.name`` of every figure marked as an assumption."""
        sections = {
            "core": self.core,
            "chip": self.chip,
            "system": self.system,
            "synapses": self.synapses,
            "neuron_state_bytes": self.neuron_state_bytes,
        }
        return [f"{s}.{n}" for s, table in sections.items() for n, lim in table.items() if lim.assumption]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "file": str(self.path),
            "core": {k: v.to_json() for k, v in self.core.items()},
            "chip": {k: v.to_json() for k, v in self.chip.items()},
            "system": {k: v.to_json() for k, v in self.system.items()},
            "synapses": {k: v.to_json() for k, v in self.synapses.items()},
            "systems": {k: v.to_json() for k, v in self.systems.items()},
        }


def _limit(path: Path, where: str, entry: Any) -> Limit:
    if not isinstance(entry, Mapping) or not {"value", "unit", "source", "assumption"} <= set(entry):
        raise TargetError(f"{path}: '{where}' must be a table with value, unit, source and assumption")
    value = entry["value"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TargetError(f"{path}: '{where}.value' must be a non-negative integer, got {value!r}")
    if entry["assumption"] and not entry.get("reason"):
        raise TargetError(f"{path}: '{where}' is marked as an assumption and needs a 'reason'")
    reason = str(entry.get("reason", ""))
    return Limit(int(value), str(entry["unit"]), str(entry["source"]), bool(entry["assumption"]), reason)


def _table(path: Path, data: Mapping[str, Any], section: str, required: tuple[str, ...]) -> Mapping[str, Limit]:
    raw = data.get(section, {})
    missing = [name for name in required if name not in raw]
    if missing:
        raise TargetError(f"{path}: section [{section}] lacks {missing}")
    return MappingProxyType({name: _limit(path, f"{section}.{name}", entry) for name, entry in raw.items()})


def load_resource_model(path: Path) -> ResourceModel:
    """Read and check one resource file (a ``TargetError`` names the file and the bad entry)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise TargetError(f"{path}: cannot read resource model: {err}") from None
    if not isinstance(data.get("target"), str):
        raise TargetError(f"{path}: needs a top-level 'target = \"name\"'")
    return ResourceModel(
        target=data["target"],
        description=str(data.get("description", "")),
        path=path,
        core=_table(path, data, "core", CORE_RESOURCES),
        chip=_table(path, data, "chip", ("neuro_cores",)),
        system=_table(path, data, "system", ("max_chips",)),
        synapses=_table(
            path, data, "synapses", ("default_weight_bits", "max_weight_bits", "sparse_index_bits", "max_delay_steps")
        ),
        neuron_state_bytes=_table(path, data, "neuron_state_bytes", ("default",)),
        systems=_table(path, data, "systems", ()),
    )


def resource_model(target: str) -> ResourceModel:
    """The resource model of the installed target ``target`` (``Target.resources``)."""
    from spikec.plugins import load_target

    return load_target(target).resource_model()
