"""Shared fixtures: paths to the third-party data beside the repository (../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA.is_dir(), f"third-party data not found at {DATA} (expected ../shared/data)"
    return DATA
