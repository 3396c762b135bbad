"""The usage ledger: one row per LLM call, and the weekly budgets it enforces (DESIGN §4, §5.8).

A call first *reserves* its worst case (prompt tokens + maximum output) in the same transaction that
checks every cap — provider, installation, repository — then *settles* the row with the tokens the
provider reported. So several workers cannot all pass the check and then together overshoot a cap:
on PostgreSQL the check-and-reserve holds a transaction-scoped advisory lock; on SQLite the single
writer serialises it. A reservation whose call never settled (a killed worker) stops counting after
RESERVATION_TTL.

Budget weeks start on Monday 00:00 UTC.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import Reschedule
from app.inbox.db import Database, Tx

RESERVATION_TTL = 15 * 60
_BUDGET_LOCK = 727275

# Tokens a row counts for this week: settled tokens, or a fresh reservation's worst case.
_COUNTED = (
    "COALESCE(SUM(CASE WHEN outcome = 'reserved' THEN "
    "(CASE WHEN created_at >= ? THEN reserved_tokens ELSE 0 END) "
    "ELSE input_tokens + output_tokens END), 0)"
)


def week_start(ts: float) -> dt.date:
    day = dt.datetime.fromtimestamp(ts, dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


def next_week_start(ts: float) -> float:
    start = week_start(ts) + dt.timedelta(days=7)
    return dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp()


class BudgetExceeded(Reschedule):
    """A weekly cap is reached. As a Reschedule, a deferrable job waits for the next budget week."""

    def __init__(self, scope: str, cap: int, used: int, resets_at: float) -> None:
        when = dt.datetime.fromtimestamp(resets_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        super().__init__(resets_at, f"weekly {scope} token budget reached ({used:,}/{cap:,}); resets {when}")
        self.scope = scope
        self.cap = cap
        self.used = used


@dataclass(frozen=True)
class CallMeta:
    installation_id: int | None
    repository: str | None
    task: str
    role: str
    category: str
    job_id: int | None = None
    delivery_id: str | None = None


@dataclass(frozen=True)
class Caps:
    provider: int | None
    installation: int | None
    repository: int | None


class Ledger:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def _used(self, tx: Tx, where: str, params: tuple[Any, ...], now: float) -> int:
        row = tx.fetchone(
            f"SELECT {_COUNTED} AS n FROM llm_usage WHERE week = ? AND {where}",  # noqa: S608
            (now - RESERVATION_TTL, week_start(now).isoformat(), *params),
        )
        return int(row["n"]) if row else 0

    async def provider_usage(self) -> dict[str, int]:
        """Tokens counted this week per provider (for the soft limit)."""
        now = self.clock()

        def op(tx: Tx) -> dict[str, int]:
            rows = tx.fetchall(
                f"SELECT provider, {_COUNTED} AS n FROM llm_usage WHERE week = ? GROUP BY provider",  # noqa: S608
                (now - RESERVATION_TTL, week_start(now).isoformat()),
            )
            return {r["provider"]: int(r["n"]) for r in rows}

        return await self.db.run(op)

    def _over(
        self, tx: Tx, meta: CallMeta, provider: str, tokens: int, caps: Caps, now: float
    ) -> tuple[str, int, int] | None:
        checks = [
            ("provider", caps.provider, "provider = ?", (provider,)),
            ("installation", caps.installation, "installation_id = ?", (meta.installation_id,)),
            ("repository", caps.repository, "repository = ?", (meta.repository,)),
        ]
        for scope, cap, where, params in checks:
            if cap is None or params[0] is None:
                continue
            used = self._used(tx, where, params, now)
            if used + tokens > cap:
                return (scope, cap, used)
        return None

    async def check(self, meta: CallMeta, provider: str, tokens: int, caps: Caps) -> None:
        """Raise BudgetExceeded if `tokens` would not fit a cap now (nothing is reserved): the check
        a multi-call task makes before it starts any work."""
        now = self.clock()
        over = await self.db.run(lambda tx: self._over(tx, meta, provider, tokens, caps, now))
        if over is not None:
            scope, cap, used = over
            raise BudgetExceeded(scope if scope != "provider" else provider, cap, used, next_week_start(now))

    async def reserve(self, meta: CallMeta, provider: str, model: str, tokens: int, caps: Caps) -> int:
        """Check every cap and reserve `tokens`; raises BudgetExceeded naming the cap reached."""
        now = self.clock()

        def op(tx: Tx) -> int | tuple[str, int, int]:
            if tx.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_BUDGET_LOCK,))
            over = self._over(tx, meta, provider, tokens, caps, now)
            if over is not None:
                return over
            row = tx.fetchone(
                """INSERT INTO llm_usage (created_at, week, installation_id, repository, task, role,
                   category, provider, requested_model, reserved_tokens, job_id, delivery_id, outcome)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved') RETURNING id""",
                (
                    now,
                    week_start(now).isoformat(),
                    meta.installation_id,
                    meta.repository,
                    meta.task,
                    meta.role,
                    meta.category,
                    provider,
                    model,
                    tokens,
                    meta.job_id,
                    meta.delivery_id,
                ),
            )
            assert row is not None
            return int(row["id"])

        result = await self.db.run(op)
        if isinstance(result, tuple):
            scope, cap, used = result
            raise BudgetExceeded(scope if scope != "provider" else provider, cap, used, next_week_start(now))
        return result

    async def calls_for_job(self, job_id: int) -> int:
        """LLM calls made for one job, across all its attempts."""
        row = await self.db.run(
            lambda tx: tx.fetchone("SELECT COUNT(*) AS n FROM llm_usage WHERE job_id = ?", (job_id,))
        )
        return int(row["n"]) if row else 0

    async def settle(
        self,
        reservation: int,
        *,
        outcome: str,
        model: str | None = None,
        input_tokens: int = 0,
        cached_tokens: int = 0,
        output_tokens: int = 0,
        cost: float = 0.0,
    ) -> None:
        await self.db.run(
            lambda tx: tx.execute(
                """UPDATE llm_usage SET outcome = ?, model = ?, input_tokens = ?, cached_tokens = ?,
                   output_tokens = ?, cost = ?, reserved_tokens = 0 WHERE id = ?""",
                (outcome, model, input_tokens, cached_tokens, output_tokens, cost, reservation),
            )
        )

    async def summary(self, *, since: float, by: str, repository: str | None = None) -> list[dict[str, Any]]:
        """Calls, tokens and cost grouped by provider, model, task, category, repo or installation."""
        column = {
            "provider": "provider",
            "model": "COALESCE(model, requested_model)",
            "task": "task",
            "category": "category",
            "repo": "repository",
            "installation": "installation_id",
        }[by]
        where, params = "created_at >= ? AND outcome <> 'reserved'", [since]
        params_any: list[Any] = params
        if repository is not None:
            where += " AND repository = ?"
            params_any.append(repository)
        return await self.db.run(
            lambda tx: tx.fetchall(
                f"""SELECT {column} AS key, COUNT(*) AS calls,
                    SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END) AS ok,
                    COALESCE(SUM(input_tokens), 0) AS input_tokens,
                    COALESCE(SUM(cached_tokens), 0) AS cached_tokens,
                    COALESCE(SUM(output_tokens), 0) AS output_tokens,
                    COALESCE(SUM(cost), 0) AS cost
                    FROM llm_usage WHERE {where} GROUP BY {column} ORDER BY cost DESC""",  # noqa: S608
                tuple(params_any),
            )
        )
