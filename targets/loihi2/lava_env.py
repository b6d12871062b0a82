"""The Lava 0.10 environment: find its Python 3.10 interpreter and run scripts in it by subprocess.

Lava (lava-nc 0.10.0) supports only Python 3.10, so it lives in its own virtual environment
(``.venv-lava``, made by ``make lava-env``) and spikec never imports it. A script runs there with
one ``.npz`` file in (arrays plus a JSON ``spec`` string) and one ``.npz`` file out.

The interpreter is ``$SPIKEC_LAVA_PYTHON`` if set, else ``.venv-lava/bin/python`` in the spikec source
tree this package runs from (where ``make lava-env`` puts it; ``source_root``). Nothing else is searched:
never the current directory or its parents, where anyone able to write a shared folder such as /tmp
could plant an interpreter. A wheel install has no source tree: set ``$SPIKEC_LAVA_PYTHON``.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import TargetError
from spikec.fileio import scratch_folder
from spikec.ir.graph import Graph

ENV_VAR = "SPIKEC_LAVA_PYTHON"
VENV_DIR = ".venv-lava"
MAKE_COMMAND = "make lava-env"
LAVA_PACKAGE = "spikec.targets.loihi2"  # lava_sim.py, lava_build.py: package data, found in a wheel install too


def _venv_python(root: Path) -> Path:
    return root / VENV_DIR / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def source_root() -> Path | None:
    """The spikec source tree this package runs from (an editable or in-place install): the folder above
    the ``spikec`` package whose ``pyproject.toml`` names the project spikec. None for a wheel install."""
    import spikec

    root = Path(spikec.__file__).resolve().parent.parent
    try:
        project = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if re.search(r'^name\s*=\s*"spikec"\s*$', project, re.MULTILINE) else None


def find_lava_python() -> Path:
    """The Python 3.10 interpreter that has Lava (see the module docstring); ``TargetError`` naming
    ``make lava-env`` and ``$SPIKEC_LAVA_PYTHON`` if there is none."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override)
        if not path.exists():
            raise TargetError(f"${ENV_VAR} points at {path}, which does not exist; unset it or run `{MAKE_COMMAND}`")
        return path
    root = source_root()
    if root is not None and _venv_python(root).exists():
        return _venv_python(root)
    where = f"no {VENV_DIR}/ in the spikec source tree {root}" if root else "spikec is not run from its source tree"
    raise TargetError(
        f"the Lava environment is missing: {where}, and ${ENV_VAR} is not set. "
        f"Create it with `{MAKE_COMMAND}` in the spikec source tree (needs Python 3.10, e.g. from pyenv), "
        f"or point ${ENV_VAR} at a Python 3.10 interpreter with lava-nc==0.10.0 installed"
    )


def run_lava_script(
    script: str | Path,
    spec: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray] | None = None,
    *,
    timeout: float = 600.0,
) -> dict[str, np.ndarray]:
    """Run ``script`` (a path, or a file name in the ``spikec.targets.loihi2`` package) in the Lava environment.

    The script gets two arguments, the input and output ``.npz`` paths; the input holds ``arrays``
    and ``spec`` as a JSON string under the key ``"spec"``. Returns the arrays the script wrote.
    """
    python = find_lava_python()
    if Path(script).is_absolute():
        return _run(python, Path(script), spec, arrays, timeout)
    with importlib.resources.as_file(importlib.resources.files(LAVA_PACKAGE)) as package:  # the folder: lava_build too
        result = _run(python, package / str(script), spec, arrays, timeout)
    return result


def _run(
    python: Path, path: Path, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None, timeout: float
) -> dict[str, np.ndarray]:
    with scratch_folder("spikec-lava-") as tmp:
        src, dst = tmp / "in.npz", tmp / "out.npz"
        payload: dict[str, Any] = {k: np.asarray(v) for k, v in (arrays or {}).items()}
        payload["spec"] = np.asarray(json.dumps(dict(spec)))
        np.savez(src, **payload)
        run_in_lava_env(python, [str(path), str(src), str(dst)], timeout=timeout)
        with np.load(dst, allow_pickle=False) as out:
            return {k: out[k] for k in out.files}


def run_in_lava_env(
    python: Path,
    argv: list[str],
    *,
    timeout: float = 600.0,
    cwd: Path | None = None,
    isolated: bool = False,
    on_timeout: str = "",
) -> str:
    """Run ``python [-I] *argv`` (a script of the Lava environment); its stdout, or ``TargetError`` with stderr's tail.

    ``isolated`` runs Python with ``-I`` and an environment without ``PYTHONPATH``: nothing of spikec's
    is importable, as on a machine with only Lava (emitted artifacts must run so). ``on_timeout`` is the advice
    the timeout's error ends with.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")} if isolated else None
    command = [str(python), *(["-I"] if isolated else []), *argv]
    script = Path(argv[0]).name
    try:
        proc = _run_session(command, timeout, cwd, env)
    except subprocess.TimeoutExpired as err:
        raise TargetError(
            f"Lava script {script} ran past {timeout:g} s{'; ' + on_timeout if on_timeout else ''}"
        ) from err
    except OSError as err:
        raise TargetError(f"cannot start the Lava interpreter {python}: {err}; re-run `{MAKE_COMMAND}`") from err
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        if "No module named 'lava'" in proc.stderr:
            raise TargetError(f"{python} has no Lava (lava-nc 0.10.0): create the environment with `{MAKE_COMMAND}`")
        raise TargetError(f"Lava script {script} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _run_session(
    command: list[str], timeout: float, cwd: Path | None, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    """``command`` in a session of its own, its output captured. Lava's runtime starts one process per Lava
    process: on a timeout or an interrupt the whole session is killed, so none of them outlives the call
    (``subprocess.run`` kills only the first)."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env, start_new_session=True
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _spec_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe_network(graph: Graph) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The network description ``lava_build.build`` takes: nodes (name, kind, inputs, shape, scalar params)
    in topological order, and the array fields as ``<node>/<field>``."""
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for name in graph.order:
        node = graph.nodes[name]
        params = {k: _spec_value(v) for k, v in node.params().items() if k not in node.array_fields()}
        for field in node.array_fields():
            if getattr(node, field) is not None:
                arrays[f"{name}/{field}"] = np.asarray(getattr(node, field))
        inputs = [e.src for e in graph.in_edges(name)]
        shape = [int(d) for d in graph.types[name]]
        nodes.append({"name": name, "kind": node.kind, "inputs": inputs, "shape": shape, "params": params})
    return nodes, arrays


def simulate_in_lava(
    runs: list[tuple[Graph, Mapping[str, np.ndarray], int]],
    *,
    select_tag: str = "fixed_pt",
    record: list[str] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run Loihi-dialect graphs on Lava's CPU process models (``targets/loihi2/lava_sim.py``), one subprocess.

    Each run is ``(graph, feeds, steps)`` with feeds (T, *shape) per Input node (one sample, no batch
    axis). Returns per run every node's output ``name`` and recorded state ``name.i`` / ``name.v``,
    (T, *shape) in SIR layout, as the interpreter's traces name them. ``record`` limits the
    recording to these nodes' outputs (each Lava Monitor is a process: fewer run faster).
    """
    arrays: dict[str, np.ndarray] = {}
    networks = []
    for i, (graph, feeds, steps) in enumerate(runs):
        nodes, node_arrays = describe_network(graph)
        arrays |= {f"{i}/{key}": value for key, value in node_arrays.items()}
        arrays |= {f"{i}/{name}/feed": np.asarray(feed) for name, feed in feeds.items()}
        networks.append({"steps": steps, "nodes": nodes, "record": record})
    out = run_lava_script("lava_sim.py", {"select_tag": select_tag, "networks": networks}, arrays)
    results: list[dict[str, np.ndarray]] = [{} for _ in runs]
    for key, value in out.items():
        index, label = key.split("/", 1)
        results[int(index)][label] = value
    return results
