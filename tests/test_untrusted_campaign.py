"""The untrusted-file campaign in the suite: hypothesis draws mutations of valid files of every format and
each must load or be refused with one ``SpikecError`` line — no traceback, no hang, nothing read from
outside the file, nothing written, no payload run (``tests/fuzz``; docs/security.md).

The fast test draws a few cases per format (derandomized: the same cases every run); the slow one
(``@pytest.mark.slow``, run by CI) draws more. ``benchmarks/fuzz/campaign.py`` runs the large seeded
campaign whose counts docs/security.md records.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from fuzz.classes import CLASSES, MUTATIONS, copy_seed
from fuzz.oracle import GOOD, judge
from fuzz.seeds import Seed, write_seeds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = {"sir": 40, "sir-sidecar": 20, "nir": 30, "netx": 25, "onnx": 25, "npy": 40, "npz": 25, "pt": 12, "report": 20}
SLOW = {fmt: 6 * n for fmt, n in FAST.items()}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Seed]:
    return write_seeds(tmp_path_factory.mktemp("seeds"))


def campaign(fmt: str, seed: Seed, root: Path, examples: int) -> None:
    """``examples`` hypothesis cases of ``fmt``: a mutation class, then its random choices."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(cls=st.sampled_from(CLASSES[fmt]), rng=st.randoms(use_true_random=False))
    def case(cls: str, rng: object) -> None:
        folder = Path(tempfile.mkdtemp(dir=root))
        target = MUTATIONS[cls](rng, copy_seed(seed.path, folder))  # type: ignore[arg-type]
        outcome = judge(seed.read, target, folder, limit=20.0)
        assert outcome.kind in GOOD, f"{fmt}/{cls}: {outcome.kind}: {outcome.detail} (kept in {folder})"
        shutil.rmtree(folder)

    case()


@pytest.mark.parametrize("fmt", list(FAST))
def test_mutated_files_load_or_fail_in_one_line(fmt: str, seeds: dict[str, Seed], tmp_path: Path) -> None:
    campaign(fmt, seeds[fmt], tmp_path, FAST[fmt])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(SLOW))
def test_mutated_files_load_or_fail_in_one_line_campaign(fmt: str, seeds: dict[str, Seed], tmp_path: Path) -> None:
    campaign(fmt, seeds[fmt], tmp_path, SLOW[fmt])


def test_every_format_has_every_byte_class() -> None:
    for fmt, classes in CLASSES.items():
        assert {"flip", "truncate", "splice", "junk"} <= set(classes), fmt
        assert len(classes) > 4, f"{fmt} has no format-aware mutation"
