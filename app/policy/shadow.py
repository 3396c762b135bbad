"""Shadow mode's record, in words: what each GitHub write a flow kept would have done. Pure.

A flow in shadow runs to its decision and its writes are kept instead of sent (at the transport:
`app.github.client.DryRunTransport`). Each kept write is (method, path, JSON body); `describe` turns
one into a line a maintainer reads ("label #12: bug, area:api", "review on #21: COMMENT with 2 line
comments"), and `tally` counts decisions by flow and kind for the weekly digest.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

Write = tuple[str, str, Any]  # method, path, JSON body

_REPO = r"/repos/[^/]+/[^/]+"
_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(_REPO + r"/issues/(\d+)/labels$"), "label"),
    ("POST", re.compile(_REPO + r"/labels$"), "create label"),
    ("PATCH", re.compile(_REPO + r"/labels/[^/]+$"), "create label"),
    ("POST", re.compile(_REPO + r"/issues/(\d+)/comments$"), "comment"),
    ("PATCH", re.compile(_REPO + r"/issues/comments/(\d+)$"), "comment"),
    ("PATCH", re.compile(_REPO + r"/issues/(\d+)$"), "issue"),
    ("POST", re.compile(_REPO + r"/issues$"), "issue"),
    ("POST", re.compile(_REPO + r"/pulls/(\d+)/reviews$"), "review"),
    ("PUT", re.compile(_REPO + r"/pulls/(\d+)/reviews/(\d+)/dismissals$"), "dismiss review"),
    ("PUT", re.compile(_REPO + r"/pulls/(\d+)/merge$"), "merge"),
    ("POST", re.compile(_REPO + r"/pulls$"), "pull request"),
    ("PATCH", re.compile(_REPO + r"/pulls/(\d+)$"), "pull request"),
    ("POST", re.compile(_REPO + r"/pulls/(\d+)/requested_reviewers$"), "reviewers"),
    ("POST", re.compile(_REPO + r"/check-runs$"), "check run"),
    ("PATCH", re.compile(_REPO + r"/check-runs/(\d+)$"), "check run"),
    ("POST", re.compile(_REPO + r"/(?:issues|pulls)/comments/(\d+)/reactions$"), "reaction"),
    ("POST", re.compile(_REPO + r"/git/(?:trees|commits|blobs)$"), "git object"),
    ("POST", re.compile(_REPO + r"/git/refs$"), "branch"),
    ("PATCH", re.compile(_REPO + r"/git/refs/heads/(.+)$"), "branch"),
    ("DELETE", re.compile(_REPO + r"/git/refs/heads/(.+)$"), "branch"),
    ("POST", re.compile(r"/graphql$"), "graphql"),
]
_MUTATION = re.compile(r"mutation[^{]*\{\s*(\w+)")


def kind(write: Write) -> str:
    """What sort of write this is: label, comment, review, merge, check run, …"""
    method, path, body = write
    for rule_method, pattern, name in _RULES:
        if method == rule_method and pattern.search(path):
            if name == "graphql":
                found = _MUTATION.search(
                    str((body or {}).get("query") or "") if isinstance(body, dict) else ""
                )
                return _GRAPHQL.get(found[1], found[1]) if found else "graphql"
            return name
    return f"{method} {path}"


_GRAPHQL = {
    "enablePullRequestAutoMerge": "auto-merge",
    "disablePullRequestAutoMerge": "auto-merge off",
    "markPullRequestReadyForReview": "ready for review",
    "resolveReviewThread": "resolve thread",
}


def _short(text: Any, limit: int = 160) -> str:
    flat = " ".join(re.sub(r"<!--.*?-->", "", str(text or ""), flags=re.S).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe(write: Write) -> str:
    """One line a maintainer reads: what Autopack would have done with this write."""
    method, path, body = write
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    name = kind(write)
    number = next((m for m in re.findall(r"/(?:issues|pulls)/(\d+)", path)), None)
    where = f" #{number}" if number else ""
    if name == "label":
        return f"label{where}: {', '.join(str(x) for x in data.get('labels') or [])}"
    if name == "comment":
        return f"comment{where}: {_short(data.get('body'))}"
    if name == "issue":
        if method == "POST":
            return f"open issue: {_short(data.get('title'), 120)}"
        changes = ", ".join(f"{k}={v}" for k, v in data.items() if k in ("state", "state_reason", "title"))
        return f"update issue{where}: {changes or 'fields'}"
    if name == "review":
        comments = data.get("comments") or []
        return (
            f"review{where}: {data.get('event') or 'COMMENT'} with {len(comments)} line comment"
            f"{'s' if len(comments) != 1 else ''}: {_short(data.get('body'))}"
        )
    if name == "merge":
        return f"merge{where} ({data.get('merge_method') or 'merge'}) at {str(data.get('sha') or '?')[:7]}"
    if name == "check run":
        output = data.get("output") or {}
        state = data.get("conclusion") or data.get("status") or "update"
        return f"check run {data.get('name') or ''}: {state}: {_short(output.get('title'), 120)}".replace(
            "  ", " "
        )
    if name == "pull request":
        verb = "open" if method == "POST" else "update"
        return f"{verb} pull request{where}: {_short(data.get('title'), 120)}"
    if name == "reviewers":
        people = [*(data.get("reviewers") or []), *(f"team {t}" for t in data.get("team_reviewers") or [])]
        return f"request reviewers{where}: {', '.join(people)}"
    if name == "create label":
        return f"create label {data.get('name') or data.get('new_name') or ''}".rstrip()
    if name == "reaction":
        return f"react {data.get('content') or ''}"
    if name == "branch":
        ref = str(data.get("ref") or path.rsplit("/heads/", 1)[-1])
        return f"{'delete' if method == 'DELETE' else 'move' if method == 'PATCH' else 'create'} branch {ref}"
    if name == "git object":
        return f"create {path.rsplit('/', 1)[-1].rstrip('s')}" + (
            f": {_short(data.get('message'), 100)}" if data.get("message") else ""
        )
    return name


def headline(writes: list[Write]) -> str:
    """The decision in one line: its most telling writes (reactions, labels created for the
    repository and git plumbing left out)."""
    telling = [w for w in writes if kind(w) not in ("reaction", "git object", "create label")] or writes
    return "; ".join(describe(w) for w in telling[:3]) + (
        f"; +{len(telling) - 3} more" if len(telling) > 3 else ""
    )


def tally(decisions: list[tuple[str, list[Write]]]) -> dict[str, Counter[str]]:
    """flow → kind of write → how many, over (flow, writes) decisions."""
    counts: dict[str, Counter[str]] = {}
    for flow, writes in decisions:
        counts.setdefault(flow, Counter()).update(kind(w) for w in writes)
    return counts
