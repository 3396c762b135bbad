"""Slash-command parsing and permission levels (DESIGN §5.5). Pure: text in, decisions out.

A command is `/autopack <name> [args]` at the start of a line (up to three spaces of indentation,
as Markdown allows for a paragraph), outside fenced or indented code blocks and block quotes. The
name is case-insensitive. Anything else that mentions `/autopack` is prose, not a command.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from app.events import is_bot as is_bot  # re-exported: the commands' rule names it

PREFIX = "/autopack"
MAX_COMMANDS_PER_COMMENT = 5

_COMMAND = re.compile(r"^ {0,3}/autopack(?:[ \t]+(?P<name>\S+)(?:[ \t]+(?P<args>.*?))?)?[ \t]*$", re.I)
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
_QUOTE = re.compile(r"^ {0,3}>")


@dataclass(frozen=True)
class ParsedCommand:
    name: str  # lower-cased; "help" for a bare `/autopack`
    args: str  # the rest of the line, stripped
    line: int  # 1-based line number in the comment


def parse_commands(body: str | None) -> list[ParsedCommand]:
    """Every command line in a comment body, in order (at most MAX_COMMANDS_PER_COMMENT)."""
    if not body or PREFIX not in body.lower():
        return []
    commands: list[ParsedCommand] = []
    fence: str | None = None
    for number, raw in enumerate(body.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        opening = _FENCE.match(raw)
        if fence is not None:
            # A fence closes with the same character, at least as long, and nothing else.
            if (
                opening
                and opening["fence"][0] == fence[0]
                and len(opening["fence"]) >= len(fence)
                and not raw.strip().lstrip(fence[0])
            ):
                fence = None
            continue
        if opening:
            fence = opening["fence"]
            continue
        if raw.startswith(("    ", "\t")) or _QUOTE.match(raw):
            continue  # indented code block or block quote
        match = _COMMAND.match(raw)
        if match is None:
            continue
        commands.append(
            ParsedCommand(
                name=(match["name"] or "help").lower(),
                args=(match["args"] or "").strip(),
                line=number,
            )
        )
        if len(commands) == MAX_COMMANDS_PER_COMMENT:
            break
    return commands


class Permission(enum.IntEnum):
    """Repository roles, ordered. GitHub's `push` is write and `pull` is read."""

    NONE = 0
    READ = 1
    TRIAGE = 2
    WRITE = 3
    MAINTAIN = 4
    ADMIN = 5

    @property
    def label(self) -> str:
        return self.name.lower()


_ROLE_NAMES = {
    "admin": Permission.ADMIN,
    "maintain": Permission.MAINTAIN,
    "write": Permission.WRITE,
    "push": Permission.WRITE,
    "triage": Permission.TRIAGE,
    "read": Permission.READ,
    "pull": Permission.READ,
    "none": Permission.NONE,
}


def permission_from_api(
    role_name: str | None, permission: str | None, flags: dict[str, bool] | None
) -> Permission:
    """The caller's level from the collaborator-permission API's answer.

    The boolean flags (`user.permissions`) are the most precise; a custom role's `role_name` is
    not a level, so the legacy `permission` field (its base role) decides then.
    """
    if flags:
        for name in ("admin", "maintain", "push", "triage", "pull"):
            if flags.get(name):
                return _ROLE_NAMES[name]
    if role_name and role_name.lower() in _ROLE_NAMES:
        return _ROLE_NAMES[role_name.lower()]
    if permission and permission.lower() in _ROLE_NAMES:
        return _ROLE_NAMES[permission.lower()]
    return Permission.NONE


class Decision(enum.Enum):
    RUN = "run"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Authorisation:
    decision: Decision
    needed: Permission
    has: Permission
    reason: str


def authorise(
    needed: Permission, has: Permission, *, is_author: bool = False, author_allowed: bool = False
) -> Authorisation:
    """May this caller run a command needing `needed`? (The issue's author may, where allowed.)"""
    if has >= needed:
        return Authorisation(Decision.RUN, needed, has, f"has {has.label}")
    if is_author and author_allowed:
        return Authorisation(Decision.RUN, needed, has, "author of the issue")
    return Authorisation(Decision.REFUSE, needed, has, f"needs {needed.label} permission, has {has.label}")
