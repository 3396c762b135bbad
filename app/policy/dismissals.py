"""Remembered dismissals: which audit findings a repository's writers said are not worth their time.

Pure, so each rule is table-tested:

- A finding's *dismissal print* — its title, its file and a normalised snippet of the code it
  points at (whitespace collapsed, so the same code moved to other lines keeps its print, and a
  change to the code gives a new one). It is written into each line comment as a hidden marker.
- The signals read from Autopack's own review threads: a thread resolved by someone other than
  Autopack while its code is unchanged (GitHub marks a thread outdated once the lines it points at
  change), and a 👎 on the finding. The caller checks each person is a writer before storing.
- Which of Autopack's open threads no longer apply to a new head (their print was not found again).
- What the auditor is told of this repository's dismissals: a bounded list of kinds, never whole
  texts of anyone's reasons beyond a short cut.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from app.policy.diff import FileDiff

_MARKER = re.compile(r"<!-- autopack:finding:(?P<fp>[0-9a-f]{12}) -->")
_TITLE = re.compile(r"^\*\*(?:critical|high|medium|low|info): (?P<title>.+?)\*\*", re.M)
PROMPT_LIMIT = 20  # dismissed kinds the auditor is told, most recent first
SNIPPET_LINES = 6  # the code a print covers, from the finding's first line


def new_side_lines(diff: FileDiff) -> dict[int, str]:
    """New-side line number → text of every line the diff shows (added and context)."""
    lines: dict[int, str] = {}
    for hunk in diff.hunks:
        match = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", hunk.header)
        number = int(match[1]) if match else 1
        for raw in hunk.lines:
            if raw.startswith("-") or raw.startswith("\\"):
                continue
            lines[number] = raw[1:]
            number += 1
    return lines


def snippet(path: str, start: int, end: int, files: list[FileDiff]) -> str:
    """The code a finding points at, as far as the diff shows it, whitespace collapsed."""
    shown = next((new_side_lines(f) for f in files if f.path == path), {})
    last = min(max(start, end), start + SNIPPET_LINES - 1)
    text = " ".join(shown.get(n, "") for n in range(start, last + 1))
    return " ".join(text.split())


def dismissal_print(title: str, path: str, code: str) -> str:
    key = "\n".join((" ".join(title.lower().split()), path, " ".join(code.split())))
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def marker(fp: str) -> str:
    return f"<!-- autopack:finding:{fp} -->"


def print_in(body: str | None) -> str | None:
    """The dismissal print a line comment of Autopack's carries, if any."""
    match = _MARKER.search(body or "")
    return match["fp"] if match else None


def title_in(body: str | None) -> str:
    """The finding's title as its line comment shows it (for `/autopack learnings`)."""
    match = _TITLE.search(body or "")
    return match["title"][:120] if match else ""


@dataclass(frozen=True)
class Thread:
    """One review thread on a pull request, as the GraphQL API gives it."""

    id: str
    resolved: bool
    outdated: bool
    resolved_by: str | None
    path: str
    author: str  # the first comment's
    body: str  # the first comment's
    thumbs_down: tuple[str, ...] = ()  # logins that reacted 👎 to the first comment

    @classmethod
    def from_api(cls, node: dict[str, Any]) -> Thread:
        comments = ((node.get("comments") or {}).get("nodes")) or [{}]
        first = comments[0] or {}
        reactions = ((first.get("reactions") or {}).get("nodes")) or []
        return cls(
            id=str(node.get("id") or ""),
            resolved=bool(node.get("isResolved")),
            outdated=bool(node.get("isOutdated")),
            resolved_by=((node.get("resolvedBy") or {}).get("login")),
            path=str(node.get("path") or first.get("path") or ""),
            author=str((first.get("author") or {}).get("login") or ""),
            body=str(first.get("body") or ""),
            thumbs_down=tuple(str((r.get("user") or {}).get("login") or "") for r in reactions if r),
        )


@dataclass(frozen=True)
class Signal:
    """Someone said a finding is not worth their time; stored once they are known to be a writer."""

    fp: str
    title: str
    path: str
    by: str
    source: str  # resolved | thumbs_down | command
    reason: str = ""


def _same(login: str, bot: str) -> bool:
    """GitHub's GraphQL API names an App `autopack`, its REST API `autopack[bot]`."""
    return login.lower().removesuffix("[bot]") == bot.lower().removesuffix("[bot]")


def signals(threads: list[Thread], bot: str) -> list[Signal]:
    """Dismissals said on Autopack's own finding threads: resolved by a person with the code it
    points at unchanged, or a 👎 on the finding. A thread Autopack resolved itself says nothing."""
    found: list[Signal] = []
    for thread in threads:
        fp = print_in(thread.body)
        if fp is None or not _same(thread.author, bot):
            continue
        title = title_in(thread.body)
        if (
            thread.resolved
            and not thread.outdated
            and thread.resolved_by
            and not _same(thread.resolved_by, bot)
        ):
            found.append(Signal(fp, title, thread.path, thread.resolved_by, "resolved"))
        for login in dict.fromkeys(thread.thumbs_down):
            if login and not _same(login, bot) and not login.lower().endswith("[bot]"):
                found.append(Signal(fp, title, thread.path, login, "thumbs_down"))
    return found


def no_longer_apply(threads: list[Thread], bot: str, found_now: set[str]) -> list[str]:
    """Autopack's open finding threads whose print the audit of the new head did not find again."""
    return [
        t.id
        for t in threads
        if not t.resolved
        and _same(t.author, bot)
        and (fp := print_in(t.body)) is not None
        and fp not in found_now
    ]


def for_prompt(kinds: list[tuple[str, str, str]]) -> str:
    """(title, path, reason) of this repository's dismissals, most recent first, bounded."""
    lines = [
        f"- {' '.join(title.split())[:120]} ({path})"
        + (f": {' '.join(reason.split())[:160]}" if reason else "")
        for title, path, reason in kinds[:PROMPT_LIMIT]
    ]
    if len(kinds) > PROMPT_LIMIT:
        lines.append(f"- … and {len(kinds) - PROMPT_LIMIT} more")
    return "\n".join(lines) or "(none)"
