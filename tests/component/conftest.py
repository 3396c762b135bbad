"""Fixtures shared by the component tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.component.harness import Harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """The real dispatcher and flows on a fresh SQLite inbox; GitHub is whatever respx mocks."""
    h = Harness(tmp_path)
    yield h
    h.close()
