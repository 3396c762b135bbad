"""Which GitHub reads are cached, and how fresh each must be. Pure.

GitHub does not count a `304 Not Modified` against the rate limit. Reads that repeat across jobs
carry `If-None-Match` with the ETag stored from their last answer (in the database: every process
shares it), and a 304 is answered from the stored body. The rules, read by read:

| read | rule |
|---|---|
| the policy file (`.github/*.yml`) and the root folder listing | revalidated every time |
| labels | revalidated every time |
| the open feedback list (`issues?labels=…`) | revalidated every time |
| a branch's head commit | revalidated every time |
| a collaborator's permission (commands, dismissals) | revalidated: GitHub says whether it changed |
| the merge gate's permission check | never cached: asked afresh, without an ETag (`FRESH` header) |
| a tree at a full commit SHA | immutable: served from the store without a request |

Everything else (writes, pull requests, reviews, check runs, comments) is never cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FRESH = "x-autopack-fresh"  # a request header: bypass the cache (stripped before it is sent)
CACHE_STATUS = "x-autopack-cache"  # a response header: revalidated | stored (what the cache did)
MAX_BODY_BYTES = 1_000_000

_REPO = r"^/(?:api/v3/)?repos/[^/]+/[^/]+"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    immutable: bool = False  # served from the store with no request at all


RULES = (
    # Not other files' contents: a repository's files may hold credentials, which never reach the
    # database.
    Rule("policy file", re.compile(_REPO + r"/contents/\.github/[\w.-]+\.ya?ml$")),
    Rule("root folder listing", re.compile(_REPO + r"/contents/?$")),
    Rule("labels", re.compile(_REPO + r"/labels$")),
    Rule("issues listing", re.compile(_REPO + r"/issues$")),
    Rule("branch head", re.compile(_REPO + r"/commits/[^/]+$")),
    Rule("collaborator permission", re.compile(_REPO + r"/collaborators/[^/]+/permission$")),
    Rule("tree at a commit", re.compile(_REPO + r"/git/trees/[0-9a-f]{40}$"), immutable=True),
)


def rule_for(method: str, path: str, *, fresh: bool = False) -> Rule | None:
    """The rule for a request, or None: not cached (a write, an uncached read, a fresh read)."""
    if method != "GET" or fresh:
        return None
    return next((r for r in RULES if r.pattern.search(path)), None)


def key(path: str, query: str, accept: str) -> str:
    """One entry per resource and representation (the `Accept` header changes the answer)."""
    return f"{path}?{query}#{accept}"
