"""A chip is one target package: what it brings is found through its Target class, loaded lazily, and
what its pipeline computed is what it emits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spikec.cli import main
from spikec.passes.partition import partition_graph
from spikec.plugins import load_target, target_formats
from spikec.text import load_sir

SDKS = ("lava", "akida", "pyNN", "spynnaker", "brian2", "torch", "onnxruntime")


@pytest.mark.parametrize("command", [["--help"], ["targets"], ["passes"]])
def test_listing_imports_no_vendor_sdk(command: list[str]) -> None:
    code = (
        "import sys\nfrom spikec.cli import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    imported = set(json.loads(out.strip().splitlines()[-1].replace("'", '"')))
    assert not imported & set(SDKS), sorted(imported & set(SDKS))


def test_a_targets_formats_are_found_by_suffix() -> None:
    name, fmt = target_formats()[".net"]
    assert name == "loihi2" and fmt.reader and fmt.writer
    assert {o.name for o in fmt.options} == {"reset_interval", "reset_offset"}
    assert load_target("loihi2").resource_model().target == "loihi2"


def test_pass_options_reach_the_emitted_core_map(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The artifact's core_map.json is what the pipeline's partition pass placed, with the user's options
    (it used to be recomputed with the defaults, so --pass-option partition.* changed nothing)."""
    net = str(data_dir / "netx/tiny/tiny.net")
    maps = {}
    for bits in (0, 2):
        out = tmp_path / f"bits{bits}"
        options = ["--pass-option", f"partition.weight_bits={bits}"] if bits else []
        assert main(["compile", net, "--target", "loihi2", "--timesteps", "20", "-o", str(out), *options]) == 0
        maps[bits] = json.loads((out / "core_map.json").read_text())
        graph = load_sir(out / "model.sir")
        want = partition_graph(graph, "loihi2", weight_bits=bits).to_json()
        assert {k: v for k, v in maps[bits].items() if k in want} == json.loads(json.dumps(want))
    capsys.readouterr()
    assert maps[0] != maps[2]
