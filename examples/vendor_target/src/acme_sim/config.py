"""The ACME-1 configuration: one JSON file plus one ``.npy`` file per array, in a directory.

``DIR/acme1.json``::

    {
      "format": "acme1.config/1",
      "inputs":  [{"name": "x", "shape": [1, 8, 8], "size": 64, "max": 1}],
      "groups":  [{"name": "h", "size": 300, "leak_shift": 0, "readout": false,
                   "threshold": "arrays/g0.threshold.npy", "bias": "arrays/g0.bias.npy",
                   "v_init": "arrays/g0.v_init.npy",
                   "synapses": [{"name": "fc1", "source": "x", "weight": "arrays/g0.s0.weight.npy"}],
                   "cores": [{"chip": 0, "core": 0, "neurons": [0, 256]},
                             {"chip": 0, "core": 1, "neurons": [256, 300]}]}],
      "outputs": [{"name": "y", "group": "out", "shape": [10]}]
    }

Groups are listed in evaluation order; a synapse's ``source`` is an input or an earlier group. An input of
shape S is sent flattened (C order) as ``size`` integers 0 .. ``max`` (``max`` ≤ 255). Arrays: ``weight``
int8 (group size, source size); ``threshold`` int32, ``bias`` int16 and ``v_init`` int32, one per neuron.
``cores`` lists where each neuron range sits; together they cover the group once. ``read_config`` checks
all of this and every value's range, and raises ``ConfigError`` naming the file, the group and the field.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "acme1.config/1"
CONFIG = "acme1.json"
V_BITS = 24
WEIGHT_RANGE = (-128, 127)
RANGES = {  # field -> (lowest, highest, dtype it is stored in)
    "threshold": (1, (1 << (V_BITS - 1)) - 1, np.int32),
    "bias": (-(1 << 15), (1 << 15) - 1, np.int16),
    "v_init": (-(1 << (V_BITS - 1)), (1 << (V_BITS - 1)) - 1, np.int32),
}
INPUT_MAX = 255
LEAK_SHIFT_MAX = 15
CORE_NEURONS = 256


class ConfigError(ValueError):
    """A configuration the chip cannot load (names the file, the group and what is wrong)."""


@dataclasses.dataclass(frozen=True)
class Synapse:
    name: str
    source: str  # an input or an earlier group
    weight: np.ndarray  # int8 (group size, source size)


@dataclasses.dataclass(frozen=True)
class Core:
    chip: int
    core: int
    neurons: tuple[int, int]  # [lo, hi) of the group's neurons


@dataclasses.dataclass(frozen=True)
class Group:
    name: str
    size: int
    leak_shift: int
    readout: bool
    threshold: np.ndarray
    bias: np.ndarray
    v_init: np.ndarray
    synapses: tuple[Synapse, ...]
    cores: tuple[Core, ...]


@dataclasses.dataclass(frozen=True)
class Input:
    name: str
    shape: tuple[int, ...]
    max: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclasses.dataclass(frozen=True)
class Output:
    name: str
    group: str
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    inputs: tuple[Input, ...]
    groups: tuple[Group, ...]
    outputs: tuple[Output, ...]


def write_config(directory: Path, config: NetworkConfig) -> list[str]:
    """Write ``config`` into ``directory`` (``acme1.json`` and ``arrays/``); the files written, relative."""
    arrays_dir = directory / "arrays"
    arrays_dir.mkdir(parents=True, exist_ok=True)
    files: list[str] = []

    def save(stem: str, value: np.ndarray, dtype: Any) -> str:
        relative = f"arrays/{stem}.npy"
        np.save(directory / relative, np.asarray(value).astype(dtype), allow_pickle=False)
        files.append(relative)
        return relative

    groups = []
    for g, group in enumerate(config.groups):
        entry: dict[str, Any] = {"name": group.name, "size": group.size, "leak_shift": group.leak_shift}
        entry["readout"] = group.readout
        for field, (_, _, dtype) in RANGES.items():
            entry[field] = save(f"g{g}.{field}", getattr(group, field), dtype)
        entry["synapses"] = [
            {"name": s.name, "source": s.source, "weight": save(f"g{g}.s{i}.weight", s.weight, np.int8)}
            for i, s in enumerate(group.synapses)
        ]
        entry["cores"] = [{"chip": c.chip, "core": c.core, "neurons": list(c.neurons)} for c in group.cores]
        groups.append(entry)
    document = {
        "format": FORMAT,
        "inputs": [{"name": i.name, "shape": list(i.shape), "size": i.size, "max": i.max} for i in config.inputs],
        "groups": groups,
        "outputs": [{"name": o.name, "group": o.group, "shape": list(o.shape)} for o in config.outputs],
    }
    (directory / CONFIG).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return [CONFIG, *files]


def read_config(directory: Path) -> NetworkConfig:
    """Read and check ``directory/acme1.json`` and its arrays (``ConfigError`` on anything the chip refuses)."""
    path = directory / CONFIG
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the configuration: {err}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError(f"{path}: not an ACME-1 configuration (format is not {FORMAT!r})")
    try:
        inputs = tuple(_input(path, entry) for entry in document["inputs"])
        sizes = {i.name: i.size for i in inputs}
        groups = []
        for entry in document["groups"]:
            group = _group(directory, entry, sizes)
            sizes[group.name] = group.size
            groups.append(group)
        names = {g.name for g in groups}
        outputs = []
        for entry in document["outputs"]:
            output = Output(str(entry["name"]), str(entry["group"]), tuple(int(d) for d in entry["shape"]))
            if output.group not in names:
                raise ConfigError(f"{path}: output '{output.name}' reads group '{output.group}', which is not defined")
            outputs.append(output)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{path}: malformed entry ({type(err).__name__}: {err})") from None
    return NetworkConfig(inputs, tuple(groups), tuple(outputs))


def _input(path: Path, entry: dict[str, Any]) -> Input:
    item = Input(str(entry["name"]), tuple(int(d) for d in entry["shape"]), int(entry["max"]))
    if not 1 <= item.max <= INPUT_MAX:
        raise ConfigError(f"{path}: input '{item.name}' max {item.max} must be 1 .. {INPUT_MAX}")
    return item


def _array(directory: Path, group: str, field: str, relative: str, shape: tuple[int, ...]) -> np.ndarray:
    path = directory / relative
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: group '{group}' field '{field}': cannot read ({err})") from None
    if value.shape != shape or value.dtype.kind not in "iu":
        raise ConfigError(f"{path}: group '{group}' field '{field}' is {value.dtype}{value.shape}, expected int{shape}")
    lo, hi = WEIGHT_RANGE if field == "weight" else RANGES[field][:2]
    if value.size and (value.min() < lo or value.max() > hi):
        raise ConfigError(
            f"{path}: group '{group}' field '{field}' holds [{value.min()}, {value.max()}], outside {lo}..{hi}"
        )
    return value.astype(np.int64)


def _group(directory: Path, entry: dict[str, Any], sizes: dict[str, int]) -> Group:
    name, size = str(entry["name"]), int(entry["size"])
    where = f"{directory / CONFIG}: group '{name}'"
    shift = int(entry["leak_shift"])
    if not 0 <= shift <= LEAK_SHIFT_MAX:
        raise ConfigError(f"{where}: leak_shift {shift} must be 0 .. {LEAK_SHIFT_MAX}")
    fields = {field: _array(directory, name, field, entry[field], (size,)) for field in RANGES}
    synapses = []
    for s in entry["synapses"]:
        source = str(s["source"])
        if source not in sizes:
            raise ConfigError(f"{where}: synapse '{s['name']}' reads '{source}', not an input or an earlier group")
        weight = _array(directory, name, "weight", s["weight"], (size, sizes[source]))
        synapses.append(Synapse(str(s["name"]), source, weight))
    cores = tuple(
        Core(int(c["chip"]), int(c["core"]), (int(c["neurons"][0]), int(c["neurons"][1]))) for c in entry["cores"]
    )
    covered = np.zeros(size, dtype=np.int64)
    for core in cores:
        lo, hi = core.neurons
        if not 0 <= lo < hi <= size or hi - lo > CORE_NEURONS:
            raise ConfigError(f"{where}: core {core.core} holds neurons [{lo}, {hi}): not 1..{CORE_NEURONS} of {size}")
        covered[lo:hi] += 1
    if np.any(covered != 1):
        bad = int(np.flatnonzero(covered != 1)[0])
        raise ConfigError(f"{where}: neuron {bad} is placed on {covered[bad]} cores; every neuron needs exactly one")
    return Group(name, size, shift, bool(entry["readout"]), synapses=tuple(synapses), cores=cores, **fields)
