"""spikec's core names no chip or vendor SDK: what a chip brings lives in its target package (targets/<name>/ or
a vendor's distribution). Checked over the command line and the compile driver; to be extended to all of spikec/."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHIP_NAMES = re.compile(r"loihi|lava|netx|spinnaker|akida|pynn|brian", re.IGNORECASE)
CHECKED = [
    "spikec/cli*.py",
    "spikec/compiler.py",
    "spikec/methods.py",
    "spikec/arrays.py",
    "spikec/artifact.py",
    "spikec/convert*.py",
    "spikec/compare*.py",
    "spikec/coding.py",
]


def test_the_checked_files_name_no_chip() -> None:
    files = sorted({f for pattern in CHECKED for f in REPO.glob(pattern)})
    assert len(files) >= 14  # the globs still find the files
    found = [
        f"{f.relative_to(REPO)}:{i}: {line.strip()}"
        for f in files
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if CHIP_NAMES.search(line)
    ]
    assert found == [], "\n".join(found)
