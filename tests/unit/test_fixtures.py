"""The adapted real GitHub payloads parse with githubkit's webhook models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from githubkit import webhooks

from tests.support import FIXTURES, payload

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


@pytest.mark.parametrize(("event", "name"), ALL)
def test_adapted_fixture_parses(event: str, name: str) -> None:
    model = webhooks.parse_obj(event, payload(event, name))
    assert type(model).__name__.lower().startswith("webhook")
