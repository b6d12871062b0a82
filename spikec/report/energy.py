"""Energy estimates from the measured operation counts (``spikec.report.metrics``), labelled as estimates.

Three models, all per sample (one run of ``T`` steps), in picojoules; docs/energy.md cites every figure:

* ``literature_45nm`` — the spiking-transformer literature's method (Spikformer, Spikingformer, SDT), with
  Horowitz's 45 nm figures (ISSCC 2014: a 32-bit float multiply 3.7 pJ + add 0.9 pJ):
  ``E = E_MAC · MACs + E_AC · ACs``, ``E_MAC = 4.6 pJ``, ``E_AC = 0.9 pJ``, where the MACs are the effective
  operations of steps whose input is not spikes (the first layer's analog input) and the ACs those of steps
  whose input is spikes (the later layers: ops ∝ spikes). Beside it the same network as an ANN, one pass of
  dense MACs: ``E_ANN = E_MAC · dense / T``.
* ``target`` — the chip's own published figures, from the ``energy.toml`` its target package brings
  (``[synaptic_operation]``, optional ``[membrane_update]``: ``picojoules``, ``chip``, ``source``, ``note``):
  ``E = E_syn · (MACs + ACs) + E_upd · membrane updates``. A target without the file, or whose file says
  ``published = false`` with its ``reason``, gets no number: the report says so rather than invent one.
* ``analog_in_memory`` — Xpikeformer's split of a spiking transformer (Song et al., IEEE TVLSI 2025): the weighted
  layers on analog in-memory crossbars, which compute every product of a matrix-vector multiply whether its input
  is zero or not, so ``E = E_AIMC · dense``, ``E_AIMC = 2 / η`` (one MAC is two operations; η the crossbar
  chip's measured efficiency in operations per joule); the attention's products (no stored weights) on digital
  logic, priced as in ``literature_45nm``.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spikec.errors import TargetError

E_MAC_PJ = 4.6  # 45 nm, 32-bit float multiply (3.7 pJ) + add (0.9 pJ): Horowitz, ISSCC 2014
E_AC_PJ = 0.9  # 45 nm, 32-bit float add: Horowitz, ISSCC 2014
LITERATURE_SOURCE = (
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014 (45 nm, 32-bit float: "
    "multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ per MAC, add 0.9 pJ per AC); the method of Zhou et al., 'Spikformer', "
    "ICLR 2023 and Zhou et al., 'Spikingformer', 2023: the first layer's MACs, the later layers' ACs x spikes"
)
ENERGY_FILE = "energy.toml"  # a target package's cited per-operation figures
FIGURES = ("synaptic_operation", "membrane_update")  # the figures a target's file may give
# IBM's 64-core phase-change-memory AIMC chip (14 nm, 256x256 crossbars, 8-bit input/output matrix-vector
# multiplies): 9.76 TOPS/W in its one-phase read mode, 2.48 TOPS/W in the four-phase (high-precision) one.
AIMC_TOPS_PER_WATT = 9.76
AIMC_HIGH_PRECISION_TOPS_PER_WATT = 2.48
AIMC_SOURCE = (
    "M. Le Gallo et al., 'A 64-core mixed-signal in-memory compute chip based on phase-change memory for deep "
    "neural network inference', Nature Electronics 6, 2023 (doi:10.1038/s41928-023-01010-1; arXiv:2212.02872), "
    "abstract: 9.76 TOPS/W for 8-bit input/output matrix-vector multiplies in one-phase read mode (2.48 TOPS/W in "
    "four-phase mode), 14 nm; the split of Song et al., 'Xpikeformer', IEEE TVLSI 2025: weighted layers analog, "
    "attention digital"
)
ESTIMATE_NOTE = "estimates from operation counts measured in the interpreter, not measurements on a chip"


def literature_45nm(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The 45 nm MAC/AC estimate, per layer and in total (pJ per sample), and the ANN's dense MACs."""
    layers = [
        {
            "name": s["name"],
            "macs": s["effective_macs"],
            "acs": s["effective_acs"],
            "picojoules": E_MAC_PJ * s["effective_macs"] + E_AC_PJ * s["effective_acs"],
        }
        for s in metrics["synapse_layers"]
    ]
    ops = metrics["synaptic_operations"]
    steps = max(1, int(metrics["timesteps"]))
    return {
        "e_mac_pj": E_MAC_PJ,
        "e_ac_pj": E_AC_PJ,
        "source": LITERATURE_SOURCE,
        "picojoules": sum(layer["picojoules"] for layer in layers),
        "ann_picojoules": E_MAC_PJ * ops["dense"] / steps,
        "layers": layers,
    }


def _aimc_pj_per_mac(tops_per_watt: float) -> float:
    """pJ per multiply-accumulate at ``tops_per_watt``: two operations per MAC, 1 TOPS/W = 1 operation per pJ."""
    return 2.0 / tops_per_watt


def analog_in_memory(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Xpikeformer's split: every weighted layer's dense products on AIMC crossbars at ``2 / η`` pJ each (a crossbar
    multiplies its whole matrix each step, zeros included), the attention's products (entries without weights) on
    digital logic at the 45 nm MAC/AC figures; per layer and in total (pJ per sample)."""
    e_mac = _aimc_pj_per_mac(AIMC_TOPS_PER_WATT)
    layers = []
    for s in metrics["synapse_layers"]:
        analog = bool(s.get("weights", 1))
        picojoules = e_mac * s["dense"] if analog else E_MAC_PJ * s["effective_macs"] + E_AC_PJ * s["effective_acs"]
        layers.append({"name": s["name"], "analog": analog, "picojoules": picojoules})
    analog_pj = sum(x["picojoules"] for x in layers if x["analog"])
    return {
        "e_mac_pj": e_mac,
        "tops_per_watt": AIMC_TOPS_PER_WATT,
        "high_precision_e_mac_pj": _aimc_pj_per_mac(AIMC_HIGH_PRECISION_TOPS_PER_WATT),
        "source": AIMC_SOURCE,
        "picojoules": sum(x["picojoules"] for x in layers),
        "analog_picojoules": analog_pj,
        "digital_picojoules": sum(x["picojoules"] for x in layers if not x["analog"]),
        "layers": layers,
    }


def target_figures(target: Any) -> dict[str, Any]:
    """The cited figures of ``target`` (a ``spikec.target.Target``): its package's ``energy.toml`` read, or
    ``{"published": False, "reason": ...}`` when it brings none. A malformed file is a ``TargetError``."""
    name = type(target).__module__
    module = sys.modules.get(name) or importlib.import_module(name)
    path = Path(module.__file__ or "").parent / ENERGY_FILE
    if not path.is_file():
        return {"published": False, "reason": f"target '{target.name}' brings no cited energy figures ({ENERGY_FILE})"}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TargetError(f"{path}: unreadable energy figures ({err}); fix the target's {ENERGY_FILE}") from None
    if data.get("published") is False:
        return {"published": False, "reason": str(data.get("reason", "no public figure"))}
    figures: dict[str, Any] = {}
    for what in FIGURES:
        entry = data.get(what)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("picojoules"), int | float):
            raise TargetError(f"{path}: [{what}] needs picojoules = <number>, chip and source")
        missing = [k for k in ("chip", "source") if not isinstance(entry.get(k), str)]
        if missing:
            raise TargetError(f"{path}: [{what}] has no {' or '.join(missing)}: every figure is cited")
        figures[what] = {k: entry[k] for k in ("picojoules", "chip", "source", "note") if k in entry}
    if "synaptic_operation" not in figures:
        raise TargetError(f"{path}: gives no [synaptic_operation] figure; or write published = false and a reason")
    return {"published": True, "figures": figures}


def target_estimate(figures: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``figures`` (from ``target_figures``) applied to the counts: pJ per sample, or no number when unpublished."""
    if not figures.get("published"):
        return {**figures, "picojoules": None}
    f = figures["figures"]
    ops = metrics["synaptic_operations"]
    synaptic = f["synaptic_operation"]["picojoules"] * (ops["effective_macs"] + ops["effective_acs"])
    updates = f["membrane_update"]["picojoules"] * metrics["membrane_updates"] if "membrane_update" in f else None
    return {
        **figures,
        "synaptic_picojoules": synaptic,
        "membrane_picojoules": updates,
        "picojoules": synaptic + (updates or 0.0),
    }


def estimate(metrics: Mapping[str, Any], target: Any) -> dict[str, Any]:
    """report.json's ``energy``: the three models for ``metrics`` (report.json's ``metrics``) on ``target``."""
    return {
        "estimate": True,
        "note": ESTIMATE_NOTE,
        "unit": "picojoules per sample",
        "literature_45nm": literature_45nm(metrics),
        "analog_in_memory": analog_in_memory(metrics),
        "target": {"name": target.name, **target_estimate(target_figures(target), metrics)},
    }
