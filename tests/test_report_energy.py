"""Energy estimates (spikec.report.energy): the 45 nm MAC/AC model on hand-made counts, a target's cited figures
read from its package's energy.toml, and the built-in targets, whose chips publish no per-operation figure spikec
can apply, give no number but the reason."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from spikec.errors import TargetError
from spikec.plugins import load_target
from spikec.report.energy import (
    AIMC_TOPS_PER_WATT,
    E_AC_PJ,
    E_MAC_PJ,
    analog_in_memory,
    estimate,
    literature_45nm,
    target_estimate,
    target_figures,
)

METRICS: dict[str, Any] = {
    "timesteps": 4,
    "synaptic_operations": {"dense": 4000.0, "effective_macs": 300.0, "effective_acs": 120.0},
    "membrane_updates": 50.0,
    "synapse_layers": [
        {"name": "conv1", "effective_macs": 300.0, "effective_acs": 0.0},
        {"name": "fc", "effective_macs": 0.0, "effective_acs": 120.0},
    ],
}


def test_the_45nm_model_prices_macs_and_acs() -> None:
    assert (E_MAC_PJ, E_AC_PJ) == (4.6, 0.9)  # Horowitz, ISSCC 2014: 3.7 + 0.9 pJ, 0.9 pJ
    lit = literature_45nm(METRICS)
    assert [x["picojoules"] for x in lit["layers"]] == pytest.approx([300 * 4.6, 120 * 0.9])
    assert lit["picojoules"] == pytest.approx(300 * 4.6 + 120 * 0.9)
    assert lit["ann_picojoules"] == pytest.approx(4000 / 4 * 4.6)  # one pass of the dense ops, all MACs


def test_the_analog_model_prices_every_weighted_product_and_the_attention_digitally() -> None:
    """Crossbars multiply the whole matrix each step: the weighted layers cost their dense products at 2/η pJ each
    (η = 9.76 TOPS/W, IBM's PCM chip), however sparse their spikes; an attention entry (no weights) is digital."""
    assert AIMC_TOPS_PER_WATT == 9.76
    metrics = {
        **METRICS,
        "synapse_layers": [
            {"name": "conv1", "weights": 90, "dense": 3000.0, "effective_macs": 300.0, "effective_acs": 0.0},
            {"name": "fc", "weights": 40, "dense": 1000.0, "effective_macs": 0.0, "effective_acs": 120.0},
            {"name": "attn", "weights": 0, "dense": 64.0, "effective_macs": 2.0, "effective_acs": 10.0},
        ],
    }
    aimc = analog_in_memory(metrics)
    e_mac = 2 / 9.76  # pJ: two operations per MAC, 1 TOPS/W = 1 operation per pJ
    assert aimc["e_mac_pj"] == pytest.approx(e_mac)
    assert [x["analog"] for x in aimc["layers"]] == [True, True, False]
    assert [x["picojoules"] for x in aimc["layers"]] == pytest.approx([3000 * e_mac, 1000 * e_mac, 2 * 4.6 + 10 * 0.9])
    assert aimc["analog_picojoules"] == pytest.approx(4000 * e_mac)
    assert aimc["picojoules"] == pytest.approx(4000 * e_mac + 2 * 4.6 + 10 * 0.9)
    assert aimc["high_precision_e_mac_pj"] == pytest.approx(2 / 2.48)


def _target_with_figures(tmp_path: Path, toml: str) -> Any:
    """A target package (a real ``spikec.target.Target`` subclass in its own module) bringing ``toml``."""
    name = "chipx_" + "".join(c if c.isalnum() else "_" for c in tmp_path.name)
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(
        "from spikec.target import Target\n\nclass ChipX(Target):\n    name = 'chipx'\n"
    )
    (package / "energy.toml").write_text(toml)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
    return module.ChipX()


FIGURES = """
[synaptic_operation]
picojoules = 2.5
chip = "ChipX rev A, 22 nm"
source = "ChipX datasheet, table 3"
[membrane_update]
picojoules = 10.0
chip = "ChipX rev A, 22 nm"
source = "ChipX datasheet, table 3"
"""


def test_a_target_s_cited_figures_price_its_operations(tmp_path: Path) -> None:
    target = _target_with_figures(tmp_path, FIGURES)
    figures = target_figures(target)
    assert figures["published"] and figures["figures"]["synaptic_operation"]["source"] == "ChipX datasheet, table 3"
    e = target_estimate(figures, METRICS)
    assert e["synaptic_picojoules"] == pytest.approx(2.5 * (300 + 120))
    assert e["membrane_picojoules"] == pytest.approx(10.0 * 50)
    assert e["picojoules"] == pytest.approx(2.5 * 420 + 500)


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("[synaptic_operation]\npicojoules = 2.5\nchip = 'X'\n", "has no source"),
        ("[synaptic_operation]\npicojoules = 'two'\nchip = 'X'\nsource = 'Y'\n", "needs picojoules"),
        ("[membrane_update]\npicojoules = 1.0\nchip = 'X'\nsource = 'Y'\n", "no [synaptic_operation]"),
        ("[synaptic_operation\n", "unreadable energy figures"),
    ],
)
def test_an_uncited_or_malformed_figure_is_refused(tmp_path: Path, toml: str, says: str) -> None:
    with pytest.raises(TargetError, match=r"energy\.toml") as err:
        target_figures(_target_with_figures(tmp_path, toml))
    assert says in str(err.value)


@pytest.mark.parametrize("name", ["loihi2", "spinnaker2", "akida", "interp"])
def test_built_in_targets_without_a_public_figure_say_why(name: str) -> None:
    e = estimate({**METRICS, "synapse_layers": []}, load_target(name))
    assert e["estimate"] is True and "not measurements" in e["note"]
    chip = e["target"]
    assert (chip["name"], chip["published"], chip["picojoules"]) == (name, False, None)
    assert len(chip["reason"]) > 40 and "http" not in chip["reason"]
