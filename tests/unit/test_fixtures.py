"""The real GitHub payloads parse, as GitHub sent them, with Autopack's event models."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from app import events
from tests.support import FIXTURES

ALL = sorted((p.parent.name, p.name) for p in FIXTURES.glob("*/*.json"))
ROOT = FIXTURES.parents[2]
NAMED = re.compile(r"""payload\(\s*"(\w+)"(?:,\s*"([\w.-]+)")?""")


def _named_in_sources() -> set[tuple[str, str]]:
    named = set()
    for path in [*ROOT.joinpath("tests").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py")]:
        for event, name in NAMED.findall(Path(path).read_text()):
            named.add((event, name or "payload.json"))
    return named


def test_every_fixture_a_test_names_is_in_the_repository() -> None:
    named = _named_in_sources()
    assert len(named) >= 10
    assert {n for n in named if (FIXTURES / n[0] / n[1]).is_file()} == named


@pytest.mark.parametrize(("event", "name"), [n for n in ALL if n[0] != "ping"])
def test_every_real_payload_parses_into_its_event_model(event: str, name: str) -> None:
    body = (FIXTURES / event / name).read_bytes()
    data = orjson.loads(body)
    parsed = events.parse(event, body)  # from the stored bytes, as the dispatcher reads a delivery
    assert type(parsed) is events.EVENTS[event]
    assert parsed.action == data.get("action")
    if "repository" in data:
        assert parsed.repository is not None
        assert parsed.repository.full_name == data["repository"]["full_name"]
        assert parsed.repository.default_branch == data["repository"]["default_branch"]
    assert events.parse(event, data) == parsed  # and from the decoded dict, as the receiver does
