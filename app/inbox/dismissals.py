"""The findings each repository dismissed (`finding_dismissals`), by dismissal print.

The audit leaves these out and tells its auditor their kinds; `/autopack learnings` lists them with
who dismissed each and why; `/autopack forget <id>` removes one. The first dismissal of a print is
kept (who said it first, and why), later ones add nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.inbox.db import Database
from app.policy.dismissals import Signal


@dataclass(frozen=True)
class Dismissal:
    fingerprint: str
    title: str
    path: str
    dismissed_by: str
    source: str
    reason: str
    created_at: float


class Dismissals:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def add(self, repository: str, signal: Signal) -> bool:
        """Remember a dismissal; False when this print was dismissed already."""
        now = self.clock()
        row = (
            repository,
            signal.fp,
            signal.title[:200],
            signal.path[:500],
            signal.by[:100],
            signal.source,
            signal.reason[:500],
            now,
        )
        count = await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO finding_dismissals (repository, fingerprint, title, path, dismissed_by, "
                "source, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                row,
            )
        )
        return bool(count)

    async def all(self, repository: str) -> list[Dismissal]:
        """This repository's dismissals, most recent first."""
        rows = await self.db.run(
            lambda tx: tx.fetchall(
                "SELECT fingerprint, title, path, dismissed_by, source, reason, created_at "
                "FROM finding_dismissals WHERE repository = ? ORDER BY created_at DESC, fingerprint",
                (repository,),
            )
        )
        return [Dismissal(**dict(r)) for r in rows]

    async def forget(self, repository: str, fingerprint: str) -> bool:
        count = await self.db.run(
            lambda tx: tx.execute(
                "DELETE FROM finding_dismissals WHERE repository = ? AND fingerprint = ?",
                (repository, fingerprint),
            )
        )
        return bool(count)
