"""spikec's commands turn numpy's huge-page advice off (spikec/pages.py), unless the user chose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from numpy._core import multiarray

from spikec.cli import main
from spikec.pages import VARIABLE


@pytest.fixture
def advice_on() -> Iterator[None]:
    """numpy's default (advice on) before the test, and whatever was set before it afterwards."""
    before = multiarray._set_madvise_hugepage(True)
    yield
    multiarray._set_madvise_hugepage(before)


def test_a_command_turns_the_advice_off(advice_on: None, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.delenv(VARIABLE, raising=False)
    assert main(["targets"]) == 0
    assert multiarray._set_madvise_hugepage(True) is False  # it was off


def test_the_users_variable_stands(advice_on: None, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv(VARIABLE, "1")
    assert main(["targets"]) == 0
    assert multiarray._set_madvise_hugepage(True) is True  # still on
