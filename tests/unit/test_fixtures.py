"""The adapted real GitHub payloads parse with githubkit's webhook models."""

from __future__ import annotations

import pytest
from githubkit import webhooks

from tests.support import FIXTURES, payload

ALL = sorted((p.parent.name, p.name) for p in FIXTURES.glob("*/*.json"))


def test_fixtures_are_present() -> None:
    assert len(ALL) >= 15, f"no fixtures found under {FIXTURES}"


@pytest.mark.parametrize(("event", "name"), ALL)
def test_adapted_fixture_parses(event: str, name: str) -> None:
    model = webhooks.parse_obj(event, payload(event, name))
    assert type(model).__name__.lower().startswith("webhook")
