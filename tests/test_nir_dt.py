"""What dt does to an imported NIR graph: negative tau (Spyx), decay factors, layers that can never fire.

docs/semantics.md, "dt checks on NIR import", states the definitions these tests hold the code to.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

from spikec.cli import main
from spikec.frontends.nir_checks import sup_membrane
from spikec.frontends.nir_import import import_nir
from spikec.interp import run

SPYX = Path(__file__).parent / "data" / "nir" / "spyx_lif.nir"


def _import_json(path: Path, out: Path, *flags: str) -> dict:  # type: ignore[type-arg]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["import", str(path), "-o", str(out), "--json", *flags])
    report = json.loads(buffer.getvalue())
    assert code == 0, report
    return report  # type: ignore[no-any-return]


def test_spyx_learned_decay_above_one_imports_as_the_update_it_encodes(tmp_path: Path) -> None:
    """Spyx 1.0 writes τ = dt/(1 − β) (dt = 1) and r = β; β > 1 gives τ < 0. Imported, with a warning naming
    the node, as NIR's Euler step at that dt: v ← β·v + (1 − β)·r·x, then fire and reset to 0.

    Spyx's own simulation is not the reference: its LIF clips β to [0, 1], fires from the previous step's
    membrane and resets by subtraction, none of which its NIR file says."""
    report = _import_json(SPYX, tmp_path / "spyx.sir")
    assert any("NIR node 'layer_1' (LIF): tau < 0 (min -50)" in w and "1.00001 > 1" in w for w in report["warnings"])
    report = _import_json(SPYX, tmp_path / "spyx1.sir", "--dt", "1")
    assert any("'layer_1' (LIF): tau < 0" in w and "= 1.1 > 1" in w for w in report["warnings"])
    assert report["kinds"] == {"Input": 1, "Dense": 3, "LIF": 2, "Subgraph": 1, "Output": 1}  # RLIF: nested graph

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = import_nir(SPYX, dt=1.0)
    lif = graph.nodes["layer_1"]
    beta = 1 - 1.0 / np.asarray(lif.tau, np.float64)  # type: ignore[attr-defined]
    assert np.allclose(beta[:3], [1.02, 1.05, 1.1], atol=1e-6)
    x = np.random.default_rng(0).uniform(0, 3, (40, 2, 4))
    result = run(graph, x, trace=True)
    current = result.traces["layer_0"]
    v, expected_v, expected_z = np.zeros((2, 6)), [], []
    for t in range(40):
        v = beta * v + (1 - beta) * lif.r * current[t]  # type: ignore[attr-defined]
        z = v > lif.v_threshold  # type: ignore[attr-defined]
        v = np.where(z, 0.0, v)
        expected_v.append(v)
        expected_z.append(z)
    np.testing.assert_allclose(result.traces["layer_1.v"], expected_v, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(result.traces["layer_1"], expected_z)


@pytest.mark.parametrize("d", [-0.9, -0.5, 0.0, 0.4, 0.9, 1.1])
@pytest.mark.parametrize(("u_lo", "u_hi"), [(-0.3, 0.5), (0.1, 0.4), (-0.6, -0.2), (-0.5, 0.0)])
def test_sup_membrane_bounds_every_input_sequence(d: float, u_lo: float, u_hi: float) -> None:
    """The largest membrane over all 2¹² extreme input sequences (the worst case of a linear system is
    bang-bang) never exceeds ``sup_membrane``, and reaches it up to the |d|¹² tail when it is finite."""
    steps = 12
    worst = -np.inf
    for seq in itertools.product((u_lo, u_hi), repeat=steps):
        v = 0.0
        for u in seq:
            v = d * v + u
            worst = max(worst, v)
    bound = float(sup_membrane(np.array(d), np.array(u_lo), np.array(u_hi)))
    assert worst <= bound + 1e-12
    if np.isfinite(bound) and abs(d) <= 0.5:
        assert bound - worst <= abs(d) ** steps * 10 + 1e-12
    if d > 1 and u_hi > 0:
        assert bound == np.inf


def _layer_after_spikes(weight: float, tmp_path: Path) -> Path:
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([3])),
            "encoder": nir.IF(r=np.ones(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)),
            "fc": nir.Affine(weight=np.full((2, 3), weight), bias=np.full(2, 0.1)),
            "lif": nir.LIF(
                tau=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2), v_reset=np.zeros(2)
            ),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "encoder"), ("encoder", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    path = tmp_path / f"w{weight}.nir"
    nir.write(path, graph)
    return path


def test_a_layer_that_can_never_fire_is_named(tmp_path: Path) -> None:
    """Spikes in [0, 1] through weights 0.2 and bias 0.1 reach at most 0.7 < v_th = 1: the LIF never fires."""
    report = _import_json(_layer_after_spikes(0.2, tmp_path), tmp_path / "a.sir")
    (warning,) = report["warnings"]
    assert "NIR node 'lif' (LIF): can never fire at dt=0.0001" in warning and "at or below 0.7" in warning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = import_nir(_layer_after_spikes(0.2, tmp_path))
    assert run(graph, np.full((400, 1, 3), 10.0)).outputs["output"].sum() == 0  # even under the strongest drive
    # weights 0.4: up to 1.3 > 1, so it can fire, and does
    assert _import_json(_layer_after_spikes(0.4, tmp_path), tmp_path / "b.sir")["warnings"] == []
    assert run(import_nir(_layer_after_spikes(0.4, tmp_path)), np.full((400, 1, 3), 10.0)).outputs["output"].sum() > 0


@pytest.mark.parametrize(("tau", "message"), [(0.6e-4, "flips the state's sign"), (0.4e-4, "grows without bound")])
def test_tau_below_dt_is_announced(tau: float, message: str, tmp_path: Path) -> None:
    graph = nir.NIRGraph.from_list(nir.LI(tau=np.full(2, tau), r=np.ones(2), v_leak=np.zeros(2)), type_check=False)
    graph.nodes["input"] = nir.Input(np.array([2]))
    graph.nodes["output"] = nir.Output(np.array([2]))
    nir.write(tmp_path / "li.nir", graph)
    (warning,) = _import_json(tmp_path / "li.nir", tmp_path / "li.sir")["warnings"]
    assert "NIR node 'li' (LI): tau = 4e-05" in warning or "NIR node 'li' (LI): tau = 6e-05" in warning
    assert message in warning
