"""sPyNNaker's own mapping of an artifact onto a virtual SpiNNaker2 board (``run_pynn.py --backend spinnaker``).

sPyNNaker reads ``spynnaker.cfg`` in the working directory and insists on ``~/.spynnaker.cfg`` (on first run
without one it writes it and exits): both are written into a temporary directory that is also ``HOME`` for the
run, so the user's home is never read nor written (a read-only home works). ``version = 201`` is one SpiNNaker2
chip, ``248`` a 48-chip board; ``virtual_board = True`` partitions, places and routes without a board (no
spikes come back: the binaries are SpiNNaker1's, so it is the vendor's placement oracle, not a simulator).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spikec.errors import TargetError

CONFIG = "[Machine]\nversion = {version}\nvirtual_board = True\n"
VERSIONS = {1: 201, 48: 248}  # chips -> sPyNNaker machine version
SYSTEM = "SYSTEM:"
NEURONS_PER_CORE = 256  # sPyNNaker's default neurons per core (its population table's longest row)
# A SpiNNaker2 chip has 153 cores to sPyNNaker (spinn_machine's VersionSpin2): one runs SCAMP and one per chip,
# plus one per board, are sPyNNaker's own (measured: 2 system cores on version 201, 49 on version 248).
CORES_PER_CHIP = 153


INSTALL = "pip install 'spynnaker==1!7.4.1' pyNN==0.13.0 (or: pip install 'spikec[spinnaker2]')"


def require_spynnaker() -> None:
    """``TargetError`` saying how to install sPyNNaker unless ``spynnaker`` can be imported here."""
    try:
        found = importlib.util.find_spec("spynnaker") is not None
    except (ImportError, ValueError):  # a broken install, or a module set to None
        found = False
    if not found:
        raise TargetError(f"spikec verify maps the network with sPyNNaker, which is not installed here: {INSTALL}")


def cause(done: subprocess.CompletedProcess[str]) -> str:
    """The last exception line of a failed run (sPyNNaker prints warnings after it), else its last lines."""
    lines = (done.stderr or done.stdout).strip().splitlines()
    raised = [line for line in lines if re.match(r"^[\w.]+(Exception|Error): ", line)]
    return raised[-1] if raised else "\n".join(lines[-5:])


def population_of(label: str) -> str:
    """A placed vertex's label → its population (``ReLU32_Synapses:256(0)`` → ``ReLU32``)."""
    return re.sub(r"(_Synapses:.*|_Neurons:.*|\(\d+:\d+\)|:\d+)$", "", label)


def application_cores(chips: int) -> int:
    """The cores a virtual board of ``chips`` SpiNNaker2 chips leaves to a network (SCAMP and sPyNNaker's apart)."""
    return chips * (CORES_PER_CHIP - 2) - 1


def board_for(spec: dict[str, Any], chips: int) -> int:
    """The sPyNNaker machine version to map ``network.json``'s ``spec`` on: the one-chip board when spikec placed it
    on one chip and sPyNNaker's neuron cores fit it, else the 48-chip board; ``TargetError`` (before any vendor run)
    when even those cores outgrow the 48-chip board, sPyNNaker's largest (a virtual run maps one board)."""
    needed = sum(math.ceil(p["size"] / NEURONS_PER_CORE) for p in spec["populations"] if p["kind"] != "input")
    if chips <= 1 and needed <= application_cores(1):
        return VERSIONS[1]
    if needed <= application_cores(48):
        return VERSIONS[48]
    raise TargetError(
        f"sPyNNaker cannot map this network on one virtual board: it puts at most {NEURONS_PER_CORE} neurons on a "
        f"core, so its populations need at least {needed:,} cores (spikec: {chips} chips), and its largest SpiNNaker2 "
        f"board (version {VERSIONS[48]}, 48 chips) leaves {application_cores(48):,}; compile a smaller network to "
        "verify it, or map parts of it"
    )


def virtual_mapping(script: Path, version: int, steps: int, timeout: float = 600.0) -> dict[str, Any]:
    """Map ``script``'s network on virtual board ``version`` (``board_for``); cores and chips used, by population
    (sPyNNaker's own cores, its system cores apart). sPyNNaker splits populations into more cores than spikec's PEs
    (neuron and synapse cores): when its cores outgrow the one-chip board ("does not support multiple boards"),
    the 48-chip one."""
    raw, wall, why = _run_mapping(script, version, steps, timeout)
    if raw is None and version == VERSIONS[1] and "does not support multiple boards" in why:
        version = VERSIONS[48]
        raw, wall, why = _run_mapping(script, version, steps, timeout)
    if raw is None:
        raise TargetError(f"sPyNNaker could not map {script} on a virtual version-{version} board: {why}")
    by_population: dict[str, int] = {}
    system = 0
    for label, cores in raw["cores"].items():
        if label.startswith(SYSTEM):
            system += cores
        else:
            pop = population_of(label)
            by_population[pop] = by_population.get(pop, 0) + cores
    return {
        "version": version,
        "cores_used": raw["cores_used"],
        "system_cores": system,
        "chips_used": raw["chips_used"],
        "cores_by_population": by_population,
        "vertices": len(raw["cores"]),
        "pynn_build_s": round(float(raw["build_s"]), 3),
        "wall_s": round(wall, 2),
    }


def _run_mapping(script: Path, version: int, steps: int, timeout: float) -> tuple[dict[str, Any] | None, float, str]:
    """``run_pynn.py --backend spinnaker`` on a virtual board of ``version``, HOME a temporary directory: its
    mapping summary (None when it failed), the wall time and why it failed."""
    with tempfile.TemporaryDirectory(prefix="spikec-spynnaker-") as tmp:
        home = Path(tmp)
        for name in ("spynnaker.cfg", ".spynnaker.cfg"):
            (home / name).write_text(CONFIG.format(version=version), encoding="utf-8")
        env = {**os.environ, "HOME": str(home)}
        argv = [sys.executable, str(script.resolve()), "--backend", "spinnaker", "--steps", str(steps)]
        argv += ["--mapping", str(home / "mapping.json")]
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, cwd=home, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TargetError(f"sPyNNaker's virtual mapping of {script} ran past {timeout:.0f} s") from None
        wall = time.perf_counter() - start
        if done.returncode != 0 or not (home / "mapping.json").is_file():
            return None, wall, cause(done)
        return json.loads((home / "mapping.json").read_text(encoding="utf-8")), wall, ""
