"""Proposals and rejections in the database: the proposal's record survives restarts and CI waits.

Starting a proposal is a compare-and-set: a row is created, or a finished one (failed, closed,
merged) replaced, in one transaction, so two triggers racing for the same issue start one proposal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from app.inbox.db import Database, IntegrityError, Tx
from app.policy.proposal import OPEN, Proposal


class Proposals:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    @staticmethod
    def _load(row: dict[str, Any] | None) -> Proposal | None:
        return Proposal.from_json(json.loads(row["data"])) if row else None

    async def get(self, repository: str, issue: int) -> Proposal | None:
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT data FROM proposals WHERE repository = ? AND issue_number = ?", (repository, issue)
            )
        )
        return self._load(row)

    async def by_pr(self, repository: str, pr_number: int) -> Proposal | None:
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT data FROM proposals WHERE repository = ? AND pr_number = ?", (repository, pr_number)
            )
        )
        return self._load(row)

    async def start(self, proposal: Proposal) -> bool:
        """Create the proposal unless an open one exists for the issue (False then)."""
        now = self.clock()
        placeholders = ", ".join("?" for _ in OPEN)

        def op(tx: Tx) -> bool:
            changed = tx.execute(
                f"UPDATE proposals SET status = ?, pr_number = NULL, waiting_sha = NULL, data = ?, "  # noqa: S608
                f"created_at = ?, updated_at = ? WHERE repository = ? AND issue_number = ? "
                f"AND status NOT IN ({placeholders})",
                (
                    proposal.status,
                    json.dumps(proposal.to_json()),
                    now,
                    now,
                    proposal.repository,
                    proposal.issue,
                    *sorted(OPEN),
                ),
            )
            if changed:
                return True
            try:
                with tx.savepoint():
                    tx.execute(
                        "INSERT INTO proposals (repository, issue_number, status, pr_number, waiting_sha,"
                        " data, created_at, updated_at) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)",
                        (
                            proposal.repository,
                            proposal.issue,
                            proposal.status,
                            json.dumps(proposal.to_json()),
                            now,
                            now,
                        ),
                    )
            except IntegrityError:
                return False  # an open proposal holds the row
            return True

        return await self.db.run(op)

    async def save(self, proposal: Proposal) -> None:
        now = self.clock()
        await self.db.run(
            lambda tx: tx.execute(
                "UPDATE proposals SET status = ?, pr_number = ?, waiting_sha = ?, data = ?, updated_at = ? "
                "WHERE repository = ? AND issue_number = ?",
                (
                    proposal.status,
                    proposal.pr_number,
                    proposal.waiting_sha if proposal.status.startswith("awaiting") else None,
                    json.dumps(proposal.to_json()),
                    now,
                    proposal.repository,
                    proposal.issue,
                ),
            )
        )

    async def record_rejection(
        self,
        repository: str,
        issue: int,
        pr_number: int | None,
        reason: str,
        by: str | None,
        *,
        area: str | None = None,
        summary: str = "",
    ) -> None:
        now = self.clock()
        await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO rejections (repository, issue_number, pr_number, reason, rejected_by,"
                " area, summary, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (repository, issue, pr_number, reason[:2_000], by, area, summary[:2_000], now),
            )
        )

    async def rejections_in_area(self, repository: str, area: str, *, limit: int = 5) -> list[dict[str, Any]]:
        """The latest rejections of proposals in one area: what the next builder should know."""
        return await self.db.run(
            lambda tx: tx.fetchall(
                "SELECT issue_number, pr_number, reason, summary FROM rejections "
                "WHERE repository = ? AND area = ? ORDER BY id DESC LIMIT ?",
                (repository, area, limit),
            )
        )

    async def rejection(self, repository: str, issue: int) -> str | None:
        """The reason of the latest rejection of a proposal for this issue ("" without one), or None."""
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT reason FROM rejections WHERE repository = ? AND issue_number = ? "
                "ORDER BY id DESC LIMIT 1",
                (repository, issue),
            )
        )
        return str(row["reason"]) if row else None

    async def ended_since(self, repository: str, status: str, since: float) -> list[Proposal]:
        """Proposals that reached `status` (merged, closed) since `since`: the digest's "last week"."""
        rows = await self.db.run(
            lambda tx: tx.fetchall(
                "SELECT data FROM proposals WHERE repository = ? AND status = ? AND updated_at >= ? "
                "ORDER BY updated_at",
                (repository, status, since),
            )
        )
        return [p for p in (self._load(r) for r in rows) if p is not None]

    async def rejections_since(self, repository: str, since: float) -> list[dict[str, Any]]:
        return await self.db.run(
            lambda tx: tx.fetchall(
                "SELECT issue_number, pr_number, reason FROM rejections WHERE repository = ? "
                "AND created_at >= ? ORDER BY id",
                (repository, since),
            )
        )

    async def save_clusters(self, repository: str, week: str, clusters: list[tuple[str, list[int]]]) -> None:
        """The week's digest themes (a re-run replaces them)."""
        now = self.clock()

        def op(tx: Tx) -> None:
            tx.execute("DELETE FROM digest_clusters WHERE repository = ? AND week = ?", (repository, week))
            for position, (theme, issues) in enumerate(clusters):
                tx.execute(
                    "INSERT INTO digest_clusters (repository, week, position, theme, issues, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (repository, week, position, theme[:200], json.dumps(issues), now),
                )

        await self.db.run(op)

    async def cluster_of(self, repository: str, issue: int) -> tuple[str, list[int]] | None:
        """The latest digest theme that holds `issue`, with all its issues."""
        rows = await self.db.run(
            lambda tx: tx.fetchall(
                "SELECT theme, issues FROM digest_clusters WHERE repository = ? "
                "ORDER BY created_at DESC, week DESC",
                (repository,),
            )
        )
        for row in rows:
            issues = [int(n) for n in json.loads(row["issues"])]
            if issue in issues:
                return str(row["theme"]), issues
        return None
