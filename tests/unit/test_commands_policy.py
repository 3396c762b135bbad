"""Slash-command parsing and permission decisions (DESIGN §5.5)."""

from __future__ import annotations

import pytest

from app.policy.commands import (
    Decision,
    Permission,
    authorise,
    is_bot,
    parse_commands,
    permission_from_api,
)


def names(body: str) -> list[tuple[str, str]]:
    return [(c.name, c.args) for c in parse_commands(body)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/autopack help", [("help", "")]),
        ("/autopack", [("help", "")]),
        ("/Autopack HELP", [("help", "")]),
        ("/autopack revise make it faster  ", [("revise", "make it faster")]),
        ("   /autopack retry", [("retry", "")]),  # up to three spaces: still a paragraph
        ("    /autopack retry", []),  # four spaces: an indented code block
        ("\t/autopack retry", []),
        ("> /autopack retry", []),  # quoting someone's command does not run it
        ("  > /autopack retry", []),
        ("please run /autopack retry", []),  # not at the start of the line
        ("/autopackretry", []),
        ("/autopack-retry", []),
        ("```\n/autopack retry\n```", []),
        ("~~~python\n/autopack retry\n~~~\n/autopack help", [("help", "")]),
        ("````\n```\n/autopack retry\n````\n/autopack help", [("help", "")]),
        ("```\nunclosed fence\n/autopack retry", []),
        ("thanks!\r\n/autopack retry\r\n", [("retry", "")]),
        ("/autopack frobnicate now", [("frobnicate", "now")]),  # unknown: the flow answers it
        ("", []),
        ("no commands here", []),
    ],
)
def test_parse(body: str, expected: list[tuple[str, str]]) -> None:
    assert names(body) == expected


def test_several_commands_keep_order_and_are_capped() -> None:
    body = "\n".join(f"/autopack c{i}" for i in range(9))
    parsed = parse_commands(body)
    assert [c.name for c in parsed] == ["c0", "c1", "c2", "c3", "c4"]
    assert parsed[1].line == 2


def test_none_body() -> None:
    assert parse_commands(None) == []


@pytest.mark.parametrize(
    ("role", "permission", "flags", "expected"),
    [
        (None, None, {"admin": True, "push": True, "pull": True}, Permission.ADMIN),
        (None, None, {"admin": False, "maintain": True, "push": True}, Permission.MAINTAIN),
        (None, None, {"admin": False, "maintain": False, "push": True}, Permission.WRITE),
        (None, None, {"push": False, "triage": True, "pull": True}, Permission.TRIAGE),
        (None, None, {"push": False, "triage": False, "pull": True}, Permission.READ),
        ("write", "write", None, Permission.WRITE),
        ("triage", "read", None, Permission.TRIAGE),
        ("release-manager", "write", None, Permission.WRITE),  # custom role: its base decides
        (None, "none", None, Permission.NONE),
        (None, None, None, Permission.NONE),
        ("mystery", "mystery", {}, Permission.NONE),
    ],
)
def test_permission_from_api(
    role: str | None, permission: str | None, flags: dict[str, bool] | None, expected: Permission
) -> None:
    assert permission_from_api(role, permission, flags) is expected


def test_authorise_levels() -> None:
    assert authorise(Permission.WRITE, Permission.ADMIN).decision is Decision.RUN
    assert authorise(Permission.WRITE, Permission.WRITE).decision is Decision.RUN
    refused = authorise(Permission.WRITE, Permission.TRIAGE)
    assert refused.decision is Decision.REFUSE
    assert refused.reason == "needs write permission, has triage"


def test_author_exception_only_where_allowed() -> None:
    assert authorise(Permission.TRIAGE, Permission.READ, is_author=True).decision is Decision.REFUSE
    allowed = authorise(Permission.TRIAGE, Permission.READ, is_author=True, author_allowed=True)
    assert allowed.decision is Decision.RUN
    assert authorise(Permission.TRIAGE, Permission.READ, author_allowed=True).decision is Decision.REFUSE


@pytest.mark.parametrize(
    ("login", "kind", "expected"),
    [
        ("dependabot[bot]", "Bot", True),
        ("autopack[bot]", "User", True),
        ("renovate", "Bot", True),
        ("octocat", "User", False),
        ("botanist", "User", False),
        (None, None, False),
    ],
)
def test_is_bot(login: str | None, kind: str | None, expected: bool) -> None:
    assert is_bot(login, kind) is expected
