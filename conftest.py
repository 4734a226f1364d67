"""Docstring examples (``--doctest-modules`` on lingolite/, export/ and runtime/) name the shipped
model as the README does, ``pretrained/lingolite-tiny-multi30k``: they run from the repository
root, wherever pytest was started."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

ROOT = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _doctests_run_from_the_repository_root(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(request.node, DoctestItem):
        monkeypatch.chdir(ROOT)
