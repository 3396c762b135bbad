"""What an audit decided for one pull-request head, kept until both its review and check run exist.

The audit posts a review, then a check run. If the second request fails, the retry must not post a
second review, and must not give up either (the merge gate waits for the check run): it finds the
stored report and posts only what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from app.inbox.db import Database
from app.policy.audit_report import AuditReport


class AuditReports:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def get(self, repository: str, pr_number: int, head: str) -> AuditReport | None:
        """The report for this head: the pull request's, or one made before the commit was pushed
        (an Autopack proposal is audited before its first push, under pull request 0)."""
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT report FROM audit_reports WHERE repository = ? AND head_sha = ? "
                "AND pr_number IN (?, 0) ORDER BY pr_number DESC LIMIT 1",
                (repository, head, pr_number),
            )
        )
        return AuditReport.from_json(json.loads(row["report"])) if row else None

    async def put(self, repository: str, pr_number: int, head: str, report: AuditReport) -> None:
        """Store the report for this head once (a retry that recomputed keeps the first one)."""
        now = self.clock()
        await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO audit_reports (repository, pr_number, head_sha, report, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (repository, pr_number, head, json.dumps(report.to_json()), now),
            )
        )
