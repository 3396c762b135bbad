"""The durable inbox: deliveries, jobs and their state machine (DESIGN §3).

    queued ──claim──▶ running ──ok──────────────▶ done
      ▲                 │ ├──transient error──▶ queued (run_at = now + backoff) … dead after N
      │                 │ ├──PermanentError───▶ failed
      │                 │ ├──Reschedule(at)───▶ queued (run_at = at, attempt not counted)
      └──lease expired / graceful release───────┘

Every transition that ends a claim is fenced by the claim's lease token, so a worker that lost
its lease (it was paused, its database connection dropped) cannot overwrite the state another
worker has since written. At most one job per subject is running at a time, enforced by a partial
unique index as well as by the claim query, and a busy subject never blocks others: the claim
takes the oldest due job whose subject is idle.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from app.inbox import schema
from app.inbox.db import Database, IntegrityError, Tx, connect
from app.inbox.models import (
    TERMINAL,
    Delivery,
    DeliveryStatus,
    Job,
    JobStatus,
    NewDelivery,
    QueueStats,
)
from app.policy.rate_budget import Budget

_CLAIM_RETRIES = 5


class SchemaOutOfDate(Exception):
    """The database needs `autopack migrate` before this release can use it."""


def _job(row: dict[str, Any]) -> Job:
    args = row.get("args")
    return Job(
        id=int(row["id"]),
        flow=row["flow"],
        subject=row["subject"],
        delivery_id=row["delivery_id"],
        args=json.loads(args) if args else {},
        status=row["status"],
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        reschedules=int(row["reschedules"]),
        run_at=float(row["run_at"]),
        created_at=float(row["created_at"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        lease_owner=row["lease_owner"],
        lease_token=row["lease_token"],
        lease_expires_at=row["lease_expires_at"],
        last_error=row["last_error"],
    )


def _delivery(row: dict[str, Any]) -> Delivery:
    payload = row["payload"]
    return Delivery(
        id=row["id"],
        event=row["event"],
        action=row["action"],
        installation_id=row["installation_id"],
        repository=row["repository"],
        subject=row["subject"],
        status=row["status"],
        received_at=float(row["received_at"]),
        headers=json.loads(row["headers"]) if row["headers"] else None,
        payload=bytes(payload) if payload is not None else None,
        pruned_at=row["pruned_at"],
    )


_INSERT_JOB = """INSERT INTO jobs (flow, subject, delivery_id, args, dedupe_key, status, attempts,
    max_attempts, reschedules, run_at, created_at) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, 0, ?, ?)"""

# The delivery's overall state, from its jobs: what `deliveries list --status` filters on.
_DELIVERY_STATE = """
SELECT d.id, d.event, d.action, d.repository, d.subject, d.received_at, d.pruned_at,
  CASE WHEN d.status = 'ignored' THEN 'ignored'
       WHEN SUM(CASE WHEN j.status = 'running' THEN 1 ELSE 0 END) > 0 THEN 'running'
       WHEN SUM(CASE WHEN j.status = 'queued' THEN 1 ELSE 0 END) > 0 THEN 'queued'
       WHEN SUM(CASE WHEN j.status = 'dead' THEN 1 ELSE 0 END) > 0 THEN 'dead'
       WHEN SUM(CASE WHEN j.status = 'failed' THEN 1 ELSE 0 END) > 0 THEN 'failed'
       ELSE 'done' END AS state,
  COUNT(j.id) AS jobs, MAX(j.attempts) AS attempts
FROM deliveries d LEFT JOIN jobs j ON j.delivery_id = d.id
GROUP BY d.id, d.event, d.action, d.repository, d.subject, d.received_at, d.pruned_at, d.status
"""


class Inbox:
    """All inbox operations, each one transaction, on either backend."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], float] = time.time) -> Inbox:
        return cls(connect(url), clock=clock)

    def close(self) -> None:
        self.db.close()

    # ---- schema ----------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        return await self.db.run(schema.migrate)

    async def schema_version(self) -> int:
        return await self.db.run(schema.current_version)

    async def prepare(self) -> None:
        """SQLite migrates on start; PostgreSQL must already be migrated (`autopack migrate`)."""
        if self.db.dialect == "sqlite":
            await self.migrate()
            return
        version = await self.schema_version()
        if version < schema.LATEST:
            raise SchemaOutOfDate(
                f"database schema is at version {version}, this release needs {schema.LATEST}: "
                "run `autopack migrate`"
            )

    async def ping(self) -> None:
        await self.db.run(lambda tx: tx.fetchone("SELECT 1 AS ok"))

    # ---- intake ----------------------------------------------------------------------------

    async def record_delivery(self, delivery: NewDelivery, flows: Iterable[str], *, max_attempts: int) -> str:
        """Store a verified delivery and one job per flow that handles it, atomically.

        Returns "queued", "ignored" (recorded, no flow handles it), "duplicate" (this delivery
        id was recorded before; nothing changes) or "replayed" (this exact body was accepted
        before under another delivery id, within the retention period; nothing is stored).
        """
        flow_names = list(flows)
        status = DeliveryStatus.QUEUED if flow_names else DeliveryStatus.IGNORED
        headers = json.dumps(delivery.headers, separators=(",", ":"))

        def op(tx: Tx) -> str:
            inserted = tx.execute(
                """INSERT INTO deliveries (id, event, action, installation_id, repository, subject,
                   status, received_at, headers, payload, body_sha256)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                (
                    delivery.id,
                    delivery.event,
                    delivery.action,
                    delivery.installation_id,
                    delivery.repository,
                    delivery.subject,
                    status.value,
                    delivery.received_at,
                    headers,
                    delivery.payload,
                    delivery.body_sha256,
                ),
            )
            if inserted == 0:
                known = tx.fetchone("SELECT 1 AS x FROM deliveries WHERE id = ?", (delivery.id,))
                return "duplicate" if known else "replayed"
            for flow in flow_names:
                tx.execute(
                    _INSERT_JOB,
                    (
                        flow,
                        delivery.subject,
                        delivery.id,
                        None,
                        None,
                        max_attempts,
                        delivery.received_at,
                        delivery.received_at,
                    ),
                )
            return status.value

        return await self.db.run(op)

    async def enqueue(
        self,
        flow: str,
        subject: str,
        *,
        args: dict[str, Any] | None = None,
        run_at: float | None = None,
        dedupe_key: str | None = None,
        delivery_id: str | None = None,
        max_attempts: int = 8,
    ) -> int | None:
        """Create a job (now or scheduled). With a dedupe key, a second call creates nothing."""
        now = self.clock()

        def op(tx: Tx) -> int | None:
            if dedupe_key is not None and tx.fetchone(
                "SELECT id FROM jobs WHERE dedupe_key = ?", (dedupe_key,)
            ):
                return None
            try:
                with tx.savepoint():
                    row = tx.fetchone(
                        _INSERT_JOB + " RETURNING id",
                        (
                            flow,
                            subject,
                            delivery_id,
                            json.dumps(args) if args else None,
                            dedupe_key,
                            max_attempts,
                            run_at if run_at is not None else now,
                            now,
                        ),
                    )
            except IntegrityError:
                return None  # a concurrent enqueue with the same dedupe key won
            return int(row["id"]) if row else None

        return await self.db.run(op)

    # ---- claims ----------------------------------------------------------------------------

    async def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """Take the oldest due job whose subject has no running job, with a lease."""
        for _ in range(_CLAIM_RETRIES):
            try:
                return await self.db.run(lambda tx: self._claim(tx, owner, lease_seconds))
            except IntegrityError:
                continue  # another worker started a job of the same subject first: look again
        return None

    def _claim(self, tx: Tx, owner: str, lease_seconds: float) -> Job | None:
        now = self.clock()
        lock = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
        row = tx.fetchone(
            """SELECT id FROM jobs j WHERE j.status = 'queued' AND j.run_at <= ?
               AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.subject = j.subject
                               AND r.status = 'running')
               ORDER BY j.run_at, j.id LIMIT 1"""  # noqa: S608 - `lock` is a constant clause
            + lock,
            (now,),
        )
        if row is None:
            return None
        claimed = tx.fetchone(
            """UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?,
               lease_token = ?, lease_expires_at = ?, started_at = ?, finished_at = NULL
               WHERE id = ? AND status = 'queued' RETURNING *""",
            (owner, uuid.uuid4().hex, now + lease_seconds, now, row["id"]),
        )
        return _job(claimed) if claimed else None

    async def heartbeat(self, job: Job, lease_seconds: float) -> bool:
        """Extend the lease; False means the lease was lost and the attempt must stop."""
        until = self.clock() + lease_seconds
        return (
            await self.db.run(
                lambda tx: tx.execute(
                    "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND lease_token = ? "
                    "AND status = 'running'",
                    (until, job.id, job.lease_token),
                )
            )
            == 1
        )

    async def reclaim_expired(self) -> list[Job]:
        """Take back running jobs whose lease ran out (their worker died); dead if out of tries."""
        now = self.clock()

        def op(tx: Tx) -> list[Job]:
            rows = tx.fetchall(
                """UPDATE jobs SET
                     status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                     finished_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END,
                     run_at = ?, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                     last_error = 'lease expired: the worker running it stopped or lost the database'
                   WHERE status = 'running' AND lease_expires_at < ? RETURNING *""",
                (now, now, now),
            )
            return [_job(r) for r in rows]

        return await self.db.run(op)

    # ---- ends of an attempt (fenced by the lease token) ------------------------------------

    def _finish(self, job: Job, sets: str, params: tuple[Any, ...]) -> Callable[[Tx], bool]:
        def op(tx: Tx) -> bool:
            return (
                tx.execute(
                    f"UPDATE jobs SET {sets}, lease_owner = NULL, lease_token = NULL, "  # noqa: S608
                    "lease_expires_at = NULL WHERE id = ? AND lease_token = ? AND status = 'running'",
                    (*params, job.id, job.lease_token),
                )
                == 1
            )

        return op

    async def complete(self, job: Job) -> bool:
        return await self.db.run(
            self._finish(job, "status = 'done', finished_at = ?, last_error = NULL", (self.clock(),))
        )

    async def fail(self, job: Job, error: str, *, retry_in: float | None) -> str:
        """Record a failed attempt: retry after `retry_in` seconds, or end it.

        `retry_in=None` is a permanent failure (status failed). A retry when no attempts are left
        dead-letters the job instead.
        """
        now = self.clock()
        error = error[:4000]
        if retry_in is None:
            status, sets, params = (
                "failed",
                "status = 'failed', finished_at = ?, last_error = ?",
                (now, error),
            )
        elif job.attempts >= job.max_attempts:
            status, sets, params = (
                "dead",
                "status = 'dead', finished_at = ?, last_error = ?",
                (now, error),
            )
        else:
            status = "queued"
            sets, params = "status = 'queued', run_at = ?, last_error = ?", (now + retry_in, error)
        ok = await self.db.run(self._finish(job, sets, params))
        return status if ok else "lost"

    async def reschedule(self, job: Job, at: float, reason: str, *, max_reschedules: int) -> str:
        """Run again at `at` without spending an attempt (bounded, so nothing loops forever)."""
        if job.reschedules >= max_reschedules:
            return await self.fail(
                job, f"rescheduled {job.reschedules} times, giving up: {reason}", retry_in=None
            )
        ok = await self.db.run(
            self._finish(
                job,
                "status = 'queued', run_at = ?, attempts = attempts - 1, "
                "reschedules = reschedules + 1, last_error = ?",
                (at, f"rescheduled: {reason}"[:4000]),
            )
        )
        return "queued" if ok else "lost"

    async def release(self, job: Job) -> bool:
        """Give an unfinished job back at shutdown, without spending its attempt."""
        return await self.db.run(
            self._finish(
                job,
                "status = 'queued', run_at = ?, attempts = attempts - 1, last_error = 'released at shutdown'",
                (self.clock(),),
            )
        )

    # ---- operator actions ------------------------------------------------------------------

    async def requeue(self, job_id: int) -> bool:
        """Run a finished job again from a fresh set of attempts (`retry`)."""
        terminal = tuple(s.value for s in TERMINAL)
        return (
            await self.db.run(
                lambda tx: tx.execute(
                    "UPDATE jobs SET status = 'queued', attempts = 0, reschedules = 0, run_at = ?, "
                    "finished_at = NULL WHERE id = ? AND status IN (?, ?, ?)",
                    (self.clock(), job_id, *terminal),
                )
            )
            == 1
        )

    async def retry_delivery(self, delivery_id: str, flows: Iterable[str], *, max_attempts: int) -> list[int]:
        """Re-run a delivery: requeue its finished jobs, or route it anew if it had none."""
        flow_names = list(flows)
        now = self.clock()

        def op(tx: Tx) -> list[int]:
            row = tx.fetchone("SELECT subject, payload FROM deliveries WHERE id = ?", (delivery_id,))
            if row is None:
                raise KeyError(delivery_id)
            jobs = tx.fetchall("SELECT id, status FROM jobs WHERE delivery_id = ?", (delivery_id,))
            if jobs:
                ids = [int(j["id"]) for j in jobs if j["status"] in {s.value for s in TERMINAL}]
                for job_id in ids:
                    tx.execute(
                        "UPDATE jobs SET status = 'queued', attempts = 0, reschedules = 0, "
                        "run_at = ?, finished_at = NULL WHERE id = ?",
                        (now, job_id),
                    )
                return ids
            if row["payload"] is None:
                raise ValueError(f"delivery {delivery_id} was pruned; its payload is gone")
            ids = []
            for flow in flow_names:
                created = tx.fetchone(
                    _INSERT_JOB + " RETURNING id",
                    (flow, row["subject"], delivery_id, None, None, max_attempts, now, now),
                )
                if created:
                    ids.append(int(created["id"]))
            if ids:
                tx.execute("UPDATE deliveries SET status = 'queued' WHERE id = ?", (delivery_id,))
            return ids

        return await self.db.run(op)

    # ---- reads -----------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        row = await self.db.run(lambda tx: tx.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,)))
        return _job(row) if row else None

    async def jobs_for_delivery(self, delivery_id: str) -> list[Job]:
        rows = await self.db.run(
            lambda tx: tx.fetchall("SELECT * FROM jobs WHERE delivery_id = ? ORDER BY id", (delivery_id,))
        )
        return [_job(r) for r in rows]

    async def jobs_for_subject(self, subject: str) -> list[Job]:
        rows = await self.db.run(
            lambda tx: tx.fetchall("SELECT * FROM jobs WHERE subject = ? ORDER BY id", (subject,))
        )
        return [_job(r) for r in rows]

    async def latest_unsuccessful_job(self, subject: str, *, exclude: int | None = None) -> Job | None:
        """The most recent failed or dead job of a subject (what `/autopack retry` re-runs)."""
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT * FROM jobs WHERE subject = ? AND status IN ('failed', 'dead') "
                "AND id <> ? ORDER BY COALESCE(finished_at, created_at) DESC, id DESC LIMIT 1",
                (subject, exclude if exclude is not None else -1),
            )
        )
        return _job(row) if row else None

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self.db.run(
            lambda tx: tx.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        )
        return _delivery(row) if row else None

    async def list_deliveries(self, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, params = ("WHERE state = ?", (state, limit)) if state else ("", (limit,))
        return await self.db.run(
            lambda tx: tx.fetchall(
                f"SELECT * FROM ({_DELIVERY_STATE}) s {where} "  # noqa: S608
                "ORDER BY received_at DESC, id LIMIT ?",
                params,
            )
        )

    async def stats(self) -> QueueStats:
        now = self.clock()

        def op(tx: Tx) -> QueueStats:
            # One count per partial index, so /metrics never scans the finished jobs.
            rows = [
                *tx.fetchall("SELECT 'queued' AS status, COUNT(*) AS n FROM jobs WHERE status = 'queued'"),
                *tx.fetchall("SELECT 'running' AS status, COUNT(*) AS n FROM jobs WHERE status = 'running'"),
                *tx.fetchall(
                    "SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('failed', 'dead') "
                    "GROUP BY status"
                ),
            ]
            oldest = tx.fetchone(
                "SELECT MIN(run_at) AS t FROM jobs WHERE status = 'queued' AND run_at <= ?", (now,)
            )
            by_status = {s.value: 0 for s in JobStatus if s is not JobStatus.DONE}
            by_status.update({r["status"]: int(r["n"]) for r in rows})
            t = oldest["t"] if oldest else None
            return QueueStats(by_status=by_status, oldest_due_age=max(0.0, now - t) if t else 0.0)

        return await self.db.run(op)

    async def save_rate_limit(
        self, installation_id: int, remaining: int, limit: int, reset: float, seen_at: float
    ) -> None:
        """An installation's latest core rate limit as GitHub reported it (the newest wins)."""
        await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO github_rate_limits (installation_id, remaining, rate_limit, reset_at, seen_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (installation_id) DO UPDATE SET "
                "remaining = excluded.remaining, rate_limit = excluded.rate_limit, "
                "reset_at = excluded.reset_at, seen_at = excluded.seen_at "
                "WHERE excluded.seen_at >= github_rate_limits.seen_at",
                (installation_id, remaining, limit, reset, seen_at),
            )
        )

    async def next_due(self) -> float | None:
        """When the earliest queued job comes due (None: nothing is queued)."""
        row = await self.db.run(
            lambda tx: tx.fetchone("SELECT MIN(run_at) AS t FROM jobs WHERE status = 'queued'")
        )
        return float(row["t"]) if row and row["t"] is not None else None

    async def listen(self, wake: Callable[[], None]) -> None:
        """PostgreSQL: call `wake` whenever any process queues a job (LISTEN/NOTIFY), until
        cancelled. SQLite has one process: the receiver wakes its own workers directly."""
        listen = getattr(self.db, "listen", None)
        if listen is None:
            return
        await listen("autopack_jobs", wake)

    async def block_installation(self, installation_id: int, until: float) -> None:
        """A secondary rate limit: the installation's jobs wait until `until` (the later wins)."""
        await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO github_rate_limits (installation_id, remaining, rate_limit, reset_at, seen_at, "
                "blocked_until) VALUES (?, 0, 0, 0, 0, ?) ON CONFLICT (installation_id) DO UPDATE SET "
                "blocked_until = excluded.blocked_until "
                "WHERE excluded.blocked_until > github_rate_limits.blocked_until",
                (installation_id, until),
            )
        )

    async def rate_budget(self, installation_id: int) -> Budget | None:
        """What GitHub last said of the installation's budget, as any process recorded it."""
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT remaining, rate_limit, reset_at, blocked_until FROM github_rate_limits "
                "WHERE installation_id = ?",
                (installation_id,),
            )
        )
        if row is None:
            return None
        return Budget(
            int(row["remaining"]), int(row["rate_limit"]), float(row["reset_at"]), float(row["blocked_until"])
        )

    # ---- housekeeping ----------------------------------------------------------------------

    PRUNE_CHUNK = 500

    async def prune_payloads(self, retention_seconds: float) -> int:
        """Drop payloads and headers of finished deliveries past retention; keep the records.
        In chunks: one transaction never rewrites a day of deliveries while the receiver waits."""
        now = self.clock()

        def chunk(tx: Tx) -> int:
            return tx.execute(
                """UPDATE deliveries SET payload = NULL, headers = NULL, body_sha256 = NULL, pruned_at = ?
                   WHERE id IN (
                     SELECT d.id FROM deliveries d
                     WHERE d.received_at < ? AND d.pruned_at IS NULL AND NOT EXISTS (
                       SELECT 1 FROM jobs j WHERE j.delivery_id = d.id
                       AND j.status IN ('queued', 'running'))
                     LIMIT ?)""",
                (now, now - retention_seconds, self.PRUNE_CHUNK),
            )

        total = 0
        while (pruned := await self.db.run(chunk)) > 0:
            total += pruned
            if pruned < self.PRUNE_CHUNK:
                break
        return total
