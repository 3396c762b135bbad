"""Fixtures shared by the component tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import respx

from tests.component.harness import Harness
from tests.fake_github import FakeGitHub


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """The real dispatcher and flows on a fresh SQLite inbox; GitHub is whatever respx mocks."""
    h = Harness(tmp_path)
    yield h
    h.close()


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """GitHub as the fake serves it, behind respx; a test adds the repository state it needs."""
    fake = FakeGitHub()
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        yield fake
