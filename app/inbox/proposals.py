"""Proposals and rejections in the database: the proposal's record survives restarts and CI waits.

Starting a proposal is a compare-and-set: a row is created, or a finished one (failed, closed,
merged) replaced, in one transaction, so two triggers racing for the same issue start one proposal.

Every later write is a compare-and-set too. A proposal's jobs run on two subjects (its issue, and
its pull request for `/autopack reject` and `closed`), so two of them can hold the same record at
once. `save` writes only if the row still has the version this job read; otherwise it raises
`StaleProposal`, the job runs again and reads the proposal afresh. And a merged or closed proposal
is never written back to an open state, whatever a job holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from app.errors import Reschedule
from app.inbox.db import Database, IntegrityError, Tx
from app.policy.proposal import ENDED, OPEN, WAITING, Proposal, Status

# SQL parameters are the statuses' values (a driver need not know the enum); `Status(...)` also
# refuses a value that is no status, whoever set it.
_OPEN_VALUES = sorted(s.value for s in OPEN)
_ENDED_VALUES = sorted(s.value for s in ENDED)
RETRY_STALE_SECONDS = 1.0


class StaleProposal(Reschedule):
    """Another job changed this proposal after this one read it: run again, read it afresh."""


class Proposals:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    @staticmethod
    def _load(row: dict[str, Any] | None) -> Proposal | None:
        if not row:
            return None
        proposal = Proposal.from_json(json.loads(row["data"]))
        proposal.version = int(row.get("version") or 0)  # the column is the truth
        return proposal

    async def get(self, repository: str, issue: int) -> Proposal | None:
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT data, version FROM proposals WHERE repository = ? AND issue_number = ?",
                (repository, issue),
            )
        )
        return self._load(row)

    async def by_pr(self, repository: str, pr_number: int) -> Proposal | None:
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT data, version FROM proposals WHERE repository = ? AND pr_number = ?",
                (repository, pr_number),
            )
        )
        return self._load(row)

    async def start(self, proposal: Proposal) -> bool:
        """Create the proposal unless an open one exists for the issue (False then)."""
        now = self.clock()
        placeholders = ", ".join("?" for _ in OPEN)
        status, data = Status(proposal.status).value, json.dumps(proposal.to_json())

        def op(tx: Tx) -> bool:
            changed = tx.execute(
                f"UPDATE proposals SET status = ?, pr_number = NULL, waiting_sha = NULL, data = ?, "  # noqa: S608
                f"created_at = ?, updated_at = ?, version = version + 1 "
                f"WHERE repository = ? AND issue_number = ? "
                f"AND status NOT IN ({placeholders})",
                (status, data, now, now, proposal.repository, proposal.issue, *_OPEN_VALUES),
            )
            if changed:
                proposal.version = self._version(tx, proposal)
                return True
            try:
                with tx.savepoint():
                    tx.execute(
                        "INSERT INTO proposals (repository, issue_number, status, pr_number, waiting_sha,"
                        " data, created_at, updated_at) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)",
                        (proposal.repository, proposal.issue, status, data, now, now),
                    )
            except IntegrityError:
                return False  # an open proposal holds the row
            proposal.version = self._version(tx, proposal)
            return True

        return await self.db.run(op)

    @staticmethod
    def _version(tx: Tx, proposal: Proposal) -> int:
        row = tx.fetchone(
            "SELECT version FROM proposals WHERE repository = ? AND issue_number = ?",
            (proposal.repository, proposal.issue),
        )
        return int(row["version"]) if row else 0

    async def save(self, proposal: Proposal) -> None:
        """Write the record if nobody changed it since it was read (compare-and-set on `version`);
        raises StaleProposal otherwise. An ended proposal (merged, closed) stays ended."""
        now = self.clock()
        ended = ", ".join("?" for _ in ENDED)
        status = Status(proposal.status)
        changed = await self.db.run(
            lambda tx: tx.execute(
                "UPDATE proposals SET status = ?, pr_number = ?, waiting_sha = ?, data = ?, updated_at = ?, "  # noqa: S608
                f"version = version + 1 WHERE repository = ? AND issue_number = ? AND version = ? "
                f"AND (status NOT IN ({ended}) OR ? IN ({ended}))",
                (
                    status.value,
                    proposal.pr_number,
                    proposal.waiting_sha if status in WAITING else None,
                    json.dumps({**proposal.to_json(), "version": proposal.version + 1}),
                    now,
                    proposal.repository,
                    proposal.issue,
                    proposal.version,
                    *_ENDED_VALUES,
                    status.value,
                    *_ENDED_VALUES,
                ),
            )
        )
        if not changed:
            raise StaleProposal(
                self.clock() + RETRY_STALE_SECONDS,
                f"proposal {proposal.repository}#{proposal.issue} changed since this job read it "
                f"(version {proposal.version}); running again on the current record",
            )
        proposal.version += 1

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
