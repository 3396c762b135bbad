"""Each triage of a feedback issue (`triage_log`): what the triage flow reads before it runs again.

One row per triage: the issue body's hash (an edit that changes nothing is not triaged again), the
comment it wrote (edited in place next time), when (a reporter's per-day limit) and the validated
answer (what a proposal and the digest start from).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.inbox.db import Database, Tx


@dataclass(frozen=True)
class LastTriage:
    """An issue's last triage: the body it judged and the comment it wrote."""

    body_hash: str
    body: str
    comment_id: int | None


class TriageLog:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def history(
        self, repository: str, issue_number: int, author: str, *, since: float
    ) -> tuple[LastTriage | None, int]:
        """The last triage of this issue, and how many issues of `author` were triaged since."""

        def op(tx: Tx) -> tuple[LastTriage | None, int]:
            last = tx.fetchone(
                "SELECT body_hash, body, comment_id FROM triage_log WHERE repository = ? "
                "AND issue_number = ? ORDER BY id DESC LIMIT 1",
                (repository, issue_number),
            )
            count = tx.fetchone(
                "SELECT COUNT(DISTINCT issue_number) AS n FROM triage_log WHERE repository = ? "
                "AND author = ? AND triaged_at >= ?",
                (repository, author, since),
            )
            found = (
                LastTriage(str(last["body_hash"]), str(last["body"] or ""), last["comment_id"] or None)
                if last
                else None
            )
            return found, int(count["n"]) if count else 0

        return await self.db.run(op)

    async def times(self, repository: str, author: str, *, since: float) -> list[float]:
        """When each triage of `author`'s issues ran since `since` (re-triages included)."""
        rows = await self.db.run(
            lambda tx: tx.fetchall(
                "SELECT triaged_at FROM triage_log WHERE repository = ? AND author = ? AND triaged_at >= ?",
                (repository, author, since),
            )
        )
        return sorted(float(r["triaged_at"]) for r in rows)

    async def record(
        self,
        repository: str,
        issue_number: int,
        author: str,
        body_hash: str,
        body: str,
        comment_id: int,
        analysis: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock()
        await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO triage_log (repository, issue_number, author, body_hash, body, comment_id,"
                " triaged_at, analysis) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    repository,
                    issue_number,
                    author,
                    body_hash,
                    body[:200_000],
                    comment_id,
                    now,
                    json.dumps(analysis) if analysis is not None else None,
                ),
            )
        )

    async def latest_analysis(self, repository: str, issue_number: int) -> dict[str, Any] | None:
        """The validated answer of this issue's last triage (what a proposal starts from)."""
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT analysis FROM triage_log WHERE repository = ? AND issue_number = ? "
                "AND analysis IS NOT NULL ORDER BY id DESC LIMIT 1",
                (repository, issue_number),
            )
        )
        return dict(json.loads(row["analysis"])) if row else None
