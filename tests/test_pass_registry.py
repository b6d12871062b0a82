"""Passes are registered by name in tables (``name -> "module:function"``) and imported when first used.

A pass module registers nothing; the pipeline imports it lazily, pass by pass. A target brings its
passes as a table through ``register_passes``; two owners of one name, or an entry that does not
import, fail naming who and what.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from spikec import pipeline
from spikec.errors import PassError, SpikecError
from spikec.ir import Dense, Graph, Identity, Input, Output
from spikec.passes import PASSES
from spikec.pipeline import PassManager, PassRegistryError, pass_info, pass_names, register_passes


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Passes a test registers are forgotten after it."""
    pass_names()  # the built-ins are in before the copy
    monkeypatch.setattr(pipeline, "_ENTRIES", dict(pipeline._ENTRIES))
    monkeypatch.setattr(pipeline, "_LOADED", dict(pipeline._LOADED))
    yield


def _graph() -> Graph:
    nodes = {"x": Input(shape=(2,)), "id": Identity(), "fc": Dense(weight=np.eye(2)), "y": Output()}
    return Graph(nodes, [("x", "id"), ("id", "fc"), ("fc", "y")])


def test_listing_names_imports_no_pass_and_using_one_imports_only_it() -> None:
    """In a fresh interpreter: the pipeline and the pass modules no longer import each other."""
    script = (
        "import json, sys\n"
        "from spikec import pipeline\n"
        "names = pipeline.pass_names()\n"
        "before = sorted(m for m in sys.modules if m.startswith('spikec.passes.') and '._' not in m)\n"
        "pipeline.PassManager(['fuse']).steps\n"
        "after = sorted(m for m in sys.modules if m.startswith('spikec.passes.') and '._' not in m)\n"
        "print(json.dumps([names, before, after]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    names, before, after = json.loads(out)
    assert set(PASSES) <= set(names) and names == sorted(names) and "threshold-balance" in names
    assert "split-fanin" in names  # an installed target's pass (loihi2's), listed without importing it
    assert before == []
    assert after == ["spikec.passes.fuse"]


def test_options_still_come_from_the_signature() -> None:
    info = pass_info("threshold-balance")
    assert info.owner == "spikec" and info.options["percentile"] == (float, 99.9)
    with pytest.raises(SpikecError, match="pass 'fuse' has no option 'x'; options: none"):
        PassManager(["fuse{x=1}"])


def test_a_target_contributes_passes_by_table(scratch_registry: None) -> None:
    register_passes({"fuse-again": "spikec.passes.fuse:fuse"}, "vendor-chip 1.0")
    register_passes({"fuse-again": "spikec.passes.fuse:fuse"}, "vendor-chip 1.0")  # the same table again: fine
    assert "fuse-again" in pass_names() and pass_info("fuse-again").owner == "vendor-chip 1.0"
    graph = PassManager(["fuse-again"]).run(_graph())
    assert "id" not in graph.nodes


def test_two_owners_of_one_name_is_an_error_naming_both(scratch_registry: None) -> None:
    both = r"pass 'fuse' is registered twice: by spikec \(spikec.passes.fuse:fuse\) and by vendor-chip 1.0 \(vendor"
    with pytest.raises(PassRegistryError, match=both):
        register_passes({"fuse": "vendor_chip.passes:fuse"}, "vendor-chip 1.0")
    register_passes({"chip-pack": "vendor_chip.passes:pack"}, "vendor-chip 1.0")
    with pytest.raises(PassRegistryError, match=r"'chip-pack' is registered twice: by vendor-chip 1.0 .* by other 2.0"):
        register_passes({"chip-pack": "other.passes:pack"}, "other 2.0")


def test_a_broken_entry_fails_when_used_naming_owner_and_import_error(scratch_registry: None) -> None:
    register_passes({"chip-pack": "vendor_chip_not_installed.passes:pack"}, "vendor-chip 1.0")
    assert "chip-pack" in pass_names()  # listed by name without importing anything
    with pytest.raises(PassRegistryError, match=r"'chip-pack' from vendor-chip 1.0 .* ModuleNotFoundError"):
        PassManager(["chip-pack"])
    with pytest.raises(PassRegistryError, match="is not 'module:function'"):
        register_passes({"chip-bad": "vendor_chip.passes.pack"}, "vendor-chip 1.0")
    with pytest.raises(PassRegistryError, match="is not kebab-case"):
        register_passes({"Chip_Pack": "vendor_chip.passes:pack"}, "vendor-chip 1.0")


def test_errors_inside_a_pass_are_still_wrapped_with_its_history(scratch_registry: None) -> None:
    register_passes({"always-fails": "spikec.passes.threshold_balance:threshold_balance"}, "test")
    with pytest.raises(PassError, match=r"while running 'always-fails' after \['fuse'\]: threshold-balance needs"):
        PassManager(["fuse", "always-fails"]).run(_graph())
