"""What flows in shadow mode would have written (`shadow_decisions`): one row per job.

Rows are written only when the job succeeded, so a retried job is recorded once. `autopack shadow`
lists them; the weekly digest counts them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.inbox.db import Database
from app.policy.shadow import Write


@dataclass(frozen=True)
class ShadowDecision:
    id: int
    repository: str
    flow: str
    subject: str
    job_id: int
    delivery_id: str | None
    writes: list[Write]
    created_at: float


class ShadowDecisions:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        repository: str,
        flow: str,
        subject: str,
        job_id: int,
        delivery_id: str | None,
        writes: list[Write],
    ) -> None:
        row = (repository, flow, subject, job_id, delivery_id, json.dumps(writes), self.clock())
        await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO shadow_decisions (repository, flow, subject, job_id, delivery_id, writes, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    async def since(
        self, since: float, repository: str | None = None, limit: int = 1_000
    ) -> list[ShadowDecision]:
        """Decisions since `since` (epoch seconds), newest first, of one repository or all."""
        where, params = "created_at >= ?", [since]
        if repository is not None:
            where += " AND repository = ?"
            params.append(repository)  # type: ignore[arg-type]
        rows = await self.db.run(
            lambda tx: tx.fetchall(
                "SELECT id, repository, flow, subject, job_id, delivery_id, writes, created_at "  # noqa: S608
                f"FROM shadow_decisions WHERE {where} ORDER BY created_at DESC, id DESC LIMIT {int(limit)}",
                tuple(params),
            )
        )
        return [_decision(r) for r in rows]


def _decision(row: dict[str, Any]) -> ShadowDecision:
    writes = [(str(m), str(p), b) for m, p, b in json.loads(row["writes"])]
    return ShadowDecision(
        int(row["id"]),
        str(row["repository"]),
        str(row["flow"]),
        str(row["subject"]),
        int(row["job_id"]),
        row["delivery_id"],
        writes,
        float(row["created_at"]),
    )
