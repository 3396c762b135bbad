"""Async workers: claim jobs with a lease, keep it alive, record every outcome.

One loop per process claims up to `concurrency` jobs and runs each as an asyncio task. A running
job's lease is extended every third of its length; if the lease is lost (another worker reclaimed
it after this process stalled), the attempt is cancelled — its result could no longer be recorded
anyway, because every final write is fenced by the lease token.

On SIGTERM (`stop()`): no new claims; running jobs get a grace period to finish; whatever is still
running then is cancelled and released to the queue without spending an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable

import structlog

from app import metrics
from app.errors import PermanentError, Reschedule
from app.inbox.backoff import backoff_delay
from app.inbox.models import Job
from app.inbox.store import Inbox
from app.logs import get_logger, redactor

log = get_logger("autopack.worker")

JobHandler = Callable[[Job], Awaitable[None]]
Housekeeping = Callable[[], Awaitable[None]]


class WorkerPool:
    def __init__(
        self,
        inbox: Inbox,
        handler: JobHandler,
        *,
        concurrency: int = 4,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        backoff_base: float = 5.0,
        backoff_cap: float = 900.0,
        max_reschedules: int = 50,
        housekeeping: Housekeeping | None = None,
        housekeeping_every: float = 3600.0,
        rng: random.Random | None = None,
    ) -> None:
        self.inbox = inbox
        self.handler = handler
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_reschedules = max_reschedules
        self.housekeeping = housekeeping
        self.housekeeping_every = housekeeping_every
        self.rng = rng or random.Random()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: dict[asyncio.Task[None], Job] = {}
        self._lost: set[int] = set()
        self._released: set[int] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self.run(), name="worker-pool")
        # Other processes' jobs (PostgreSQL): woken by their NOTIFY, not at the next poll.
        self._listen_task = asyncio.create_task(self.inbox.listen(self.wake), name="job-notifications")

    def wake(self) -> None:
        """A new job may be due (the receiver in this process just queued one)."""
        self._wake.set()

    async def run(self) -> None:
        last_reclaim = 0.0
        last_housekeeping = time.monotonic()
        log.info("workers started", owner=self.owner, concurrency=self.concurrency)
        while not self._stopping:
            now = time.monotonic()
            if now - last_reclaim >= min(self.lease_seconds / 4, 15.0):
                last_reclaim = now
                await self._reclaim()
            if self.housekeeping and now - last_housekeeping >= self.housekeeping_every:
                last_housekeeping = now
                await self._guard("housekeeping", self.housekeeping())
            # Cleared before looking, so a wake-up that arrives while we look (a job queued, stop())
            # is not lost: the wait below then returns at once.
            self._wake.clear()
            claimed = await self._fill()
            if claimed:
                continue  # look again at once: more may be due
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=await self._idle_for())

    async def _idle_for(self) -> float:
        """Until the earliest queued job comes due, at most a poll interval: a job rescheduled to a
        time (a rate-limit reset, a backoff) runs then, not up to a poll later."""
        due = await self._guard("next due", self.inbox.next_due())
        if not isinstance(due, float):
            return self.poll_seconds
        wait = due - self.inbox.clock()
        # Due already but not claimed: its subject is busy; the job that holds it wakes us.
        return self.poll_seconds if wait <= 0 else min(self.poll_seconds, wait)

    async def stop(self, grace: float) -> None:
        """Stop claiming, let running jobs finish for `grace` seconds, release the rest."""
        self._stopping = True
        self._wake.set()
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = list(self._running)
        if tasks:
            log.info("waiting for running jobs", running=len(tasks), grace_seconds=grace)
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                self._released.add(self._running[task].id)
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        log.info("workers stopped", owner=self.owner)

    # ---- claiming --------------------------------------------------------------------------

    async def _guard(self, what: str, coro: Awaitable[object]) -> object:
        try:
            return await coro
        except Exception as exc:
            log.error(f"{what} failed", error=redactor.text(repr(exc)))
            return None

    async def _reclaim(self) -> None:
        jobs = await self._guard("lease reclaim", self.inbox.reclaim_expired())
        for job in jobs or []:  # type: ignore[attr-defined]
            metrics.LEASES_RECLAIMED.inc()
            log.warning(
                "lease expired; job taken back",
                job=job.id,
                flow=job.flow,
                subject=job.subject,
                status=job.status,
            )

    async def _fill(self) -> int:
        claimed = 0
        while not self._stopping and len(self._running) < self.concurrency:
            job = await self._guard("claim", self.inbox.claim(self.owner, self.lease_seconds))
            if not isinstance(job, Job):
                break
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
            self._running[task] = job
            task.add_done_callback(self._finished)
            claimed += 1
        return claimed

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()

    # ---- one attempt -----------------------------------------------------------------------

    async def _heartbeat(self, job: Job, task: asyncio.Task[None]) -> None:
        """Extend the lease every third of its length; stop the attempt once it cannot be kept.

        If the database cannot be reached, the lease runs out and another worker may take the job:
        this attempt then cancels itself shortly before that moment, so two attempts of one subject
        never run at once.
        """
        valid_until = time.monotonic() + self.lease_seconds
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                kept = await self.inbox.heartbeat(job, self.lease_seconds)
            except Exception as exc:
                log.warning("heartbeat failed", job=job.id, error=redactor.text(repr(exc)))
                next_beat = time.monotonic() + self.lease_seconds / 3
                if next_beat < valid_until - self.lease_seconds / 6:
                    continue  # the next heartbeat can still extend the lease in time
                kept = False
            if not kept:
                log.warning("lease lost; cancelling the attempt", job=job.id)
                self._lost.add(job.id)
                task.cancel()
                return
            valid_until = time.monotonic() + self.lease_seconds

    async def _execute(self, job: Job) -> None:
        structlog.contextvars.bind_contextvars(
            job=job.id,
            flow=job.flow,
            subject=job.subject,
            delivery=job.delivery_id,
            attempt=job.attempts,
        )
        current = asyncio.current_task()
        assert current is not None
        heartbeat = asyncio.create_task(self._heartbeat(job, current))
        started = time.monotonic()
        outcome = "done"
        try:
            try:
                await self.handler(job)
            finally:
                heartbeat.cancel()
            outcome = await self._record(job, None)
        except asyncio.CancelledError:
            outcome = await self._cancelled(job)
        except Exception as exc:
            outcome = await self._record(job, exc)
        finally:
            metrics.JOBS.labels(job.flow, outcome).inc()
            metrics.JOB_DURATION.labels(job.flow).observe(time.monotonic() - started)
            log.info("job attempt ended", outcome=outcome, duration=round(time.monotonic() - started, 3))
            structlog.contextvars.clear_contextvars()

    async def _record(self, job: Job, exc: Exception | None) -> str:
        """Write the attempt's outcome. If the database is unreachable the outcome is lost, the lease
        runs out, and the job runs again: at-least-once, never lost."""
        try:
            return await self._write_outcome(job, exc)
        except Exception as db_error:
            log.error(
                "could not record the job's outcome; it will run again when its lease expires",
                error=redactor.text(repr(db_error)),
            )
            return "unrecorded"

    async def _write_outcome(self, job: Job, exc: Exception | None) -> str:
        if exc is None:
            return "done" if await self.inbox.complete(job) else "lease_lost"
        if isinstance(exc, Reschedule):
            state = await self.inbox.reschedule(job, exc.at, exc.reason, max_reschedules=self.max_reschedules)
            log.info("job rescheduled", reason=exc.reason, run_at=exc.at, state=state)
            return "rescheduled" if state == "queued" else state
        if isinstance(exc, PermanentError):
            log.warning("job failed permanently", error=redactor.text(str(exc)))
            return await self.inbox.fail(job, redactor.text(str(exc)), retry_in=None)
        delay = backoff_delay(job.attempts, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng)
        detail = redactor.text(f"{type(exc).__name__}: {exc}")
        state = await self.inbox.fail(job, detail, retry_in=delay)
        log.warning(
            "job attempt failed",
            error=detail,
            state=state,
            retry_in=round(delay, 1),
            traceback=redactor.text("".join(traceback.format_exception(exc))[-3000:]),
        )
        return "retry" if state == "queued" else state

    async def _cancelled(self, job: Job) -> str:
        if job.id in self._lost:
            self._lost.discard(job.id)
            return "lease_lost"
        if job.id in self._released:
            self._released.discard(job.id)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.inbox.release(job))
            log.info("job released at shutdown")
            return "released"
        raise asyncio.CancelledError
