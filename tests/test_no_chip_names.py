"""spikec's core and its shared passes name no chip or vendor SDK: what a chip brings lives in its target package
(targets/<name>/ or a vendor's distribution). Every file of spikec/ and passes/ is read."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHIP_NAMES = re.compile(r"loihi|lava|netx|spinnaker|akida|pynn|brian", re.IGNORECASE)
CHECKED = ["spikec/**/*", "passes/**/*"]


def test_the_core_and_shared_passes_name_no_chip() -> None:
    found_files = {f for pattern in CHECKED for f in REPO.glob(pattern) if f.is_file()}
    files = sorted(f for f in found_files if "__pycache__" not in f.parts)
    assert len(files) >= 100  # the globs still find the files
    found = [
        f"{f.relative_to(REPO)}:{i}: {line.strip()}"
        for f in files
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if CHIP_NAMES.search(line)
    ]
    assert found == [], "\n".join(found)
