"""Worker pool: retries with backoff, dead-letter, rate-limit reschedules, graceful shutdown, leases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import respx
from githubkit.exception import RequestFailed

from app.errors import PermanentError
from app.flows.dispatch import Dispatcher
from app.flows.registry import Flow, Registry
from app.inbox.models import Job, NewDelivery
from app.inbox.store import Inbox
from app.inbox.worker import WorkerPool
from tests.component.harness import Harness
from tests.fake_github import API, FakeGitHub
from tests.support import comment_payload


@pytest.fixture
async def inbox(tmp_path: Path) -> AsyncIterator[Inbox]:
    box = Inbox.open(f"sqlite:///{tmp_path / 'w.db'}")
    await box.migrate()
    yield box
    box.close()


async def add(inbox: Inbox, n: int, subject: str = "o/r#1", max_attempts: int = 3) -> None:
    await inbox.record_delivery(
        NewDelivery(f"d-{n}", "e", None, 1, "o/r", subject, {}, b"{}", time.time()),
        ["f"],
        max_attempts=max_attempts,
    )


async def until(predicate: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def pool(inbox: Inbox, handler: Callable[[Job], Awaitable[None]], **kw: float) -> WorkerPool:
    options: dict[str, float] = {
        "poll_seconds": 0.02,
        "backoff_base": 0.05,
        "backoff_cap": 0.1,
        "lease_seconds": 5,
    }
    options.update(kw)
    return WorkerPool(inbox, handler, concurrency=4, **options)  # type: ignore[arg-type]


async def status(inbox: Inbox, delivery: str = "d-1") -> str:
    return (await inbox.jobs_for_delivery(delivery))[0].status


async def test_transient_errors_retry_then_succeed(inbox: Inbox) -> None:
    calls: list[int] = []

    async def flaky(job: Job) -> None:
        calls.append(job.attempts)
        if job.attempts < 3:
            raise ConnectionError("GitHub 502")

    await add(inbox, 1)
    workers = pool(inbox, flaky)
    workers.start()
    await until(lambda: _is(inbox, "done"))
    await workers.stop(1)
    assert calls == [1, 2, 3]
    (job,) = await inbox.jobs_for_delivery("d-1")
    assert job.last_error is None


async def _is(inbox: Inbox, wanted: str, delivery: str = "d-1") -> bool:
    return await status(inbox, delivery) == wanted


async def test_dead_letter_after_max_attempts(inbox: Inbox) -> None:
    async def broken(job: Job) -> None:
        raise RuntimeError(f"still broken (attempt {job.attempts})")

    await add(inbox, 1, max_attempts=3)
    workers = pool(inbox, broken)
    workers.start()
    await until(lambda: _is(inbox, "dead"))
    await workers.stop(1)
    (job,) = await inbox.jobs_for_delivery("d-1")
    assert job.attempts == 3
    assert job.last_error == "RuntimeError: still broken (attempt 3)"


async def test_permanent_error_is_not_retried(inbox: Inbox) -> None:
    calls = 0

    async def refuse(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("bad input")

    await add(inbox, 1)
    workers = pool(inbox, refuse)
    workers.start()
    await until(lambda: _is(inbox, "failed"))
    await workers.stop(1)
    assert calls == 1


async def test_error_text_is_redacted(inbox: Inbox) -> None:
    async def leaky(job: Job) -> None:
        raise RuntimeError("token ghs_16C7e42F292c6912E7710c838347Ae178B4a rejected")

    await add(inbox, 1, max_attempts=1)
    workers = pool(inbox, leaky)
    workers.start()
    await until(lambda: _is(inbox, "dead"))
    await workers.stop(1)
    (job,) = await inbox.jobs_for_delivery("d-1")
    assert job.last_error is not None
    assert "ghs_" not in job.last_error


@pytest.mark.parametrize(
    ("status_code", "headers", "wait"),
    [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "+3600"}, 3600),  # primary
        (429, {"retry-after": "120"}, 120),  # secondary
        (403, {"retry-after": "30"}, 30),
    ],
)
async def test_rate_limit_reschedules_for_the_reset(
    tmp_path: Path, status_code: int, headers: dict[str, str], wait: float
) -> None:
    harness = Harness(tmp_path)
    if headers.get("x-ratelimit-reset") == "+3600":
        headers = {**headers, "x-ratelimit-reset": str(int(time.time()) + 3600)}
    thread = FakeGitHub()
    with respx.mock(assert_all_called=False) as router:
        router.get(url__regex=rf"{API}/repos/octo-org/widgets/collaborators/.*").respond(
            status_code, headers=headers, json={"message": "API rate limit exceeded"}
        )
        thread.install(router)  # after: the first matching route wins
        await harness.deliver("issue_comment", comment_payload("/autopack help"))
        workers = WorkerPool(harness.inbox, harness.dispatcher, concurrency=1, poll_seconds=0.02)
        started = time.time()
        workers.start()

        async def rescheduled() -> bool:
            jobs = await harness.inbox.jobs_for_subject("octo-org/widgets#7")
            return jobs[0].reschedules == 1

        await until(rescheduled)
        await workers.stop(1)
    (job,) = await harness.inbox.jobs_for_subject("octo-org/widgets#7")
    assert job.status == "queued"
    assert job.attempts == 0  # a rate limit is not a failed attempt
    assert started + wait - 5 <= job.run_at <= time.time() + wait + 5
    assert "RateLimitExceeded" in (job.last_error or "")
    harness.close()


async def test_github_5xx_is_retried_and_404_fails(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    thread = FakeGitHub()
    with respx.mock(assert_all_called=False) as router:
        route = router.get(url__regex=rf"{API}/repos/octo-org/widgets/collaborators/.*")
        route.respond(502, json={"message": "Bad gateway"})
        comments = router.get(url__regex=rf"{API}/repos/octo-org/widgets/issues/7/comments")
        comments.respond(200, json=[])
        thread.install(router)
        await harness.deliver("issue_comment", comment_payload("/autopack help"))
        job = await harness.inbox.claim("w", 60)
        assert job is not None
        with pytest.raises(RequestFailed):  # transient: not mapped to PermanentError
            await harness.dispatcher(job)
        route.respond(404, json={"message": "Not Found"})
        comments.respond(404, json={"message": "Not Found"})
        with pytest.raises(PermanentError, match="404"):
            await harness.dispatcher(job)
    harness.close()


async def test_graceful_shutdown_finishes_or_releases(inbox: Inbox) -> None:
    release = asyncio.Event()

    async def handler(job: Job) -> None:
        if job.delivery_id == "d-1":
            await asyncio.sleep(0.2)  # finishes within the grace period
        else:
            await release.wait()  # never finishes by itself

    await add(inbox, 1, subject="a")
    await add(inbox, 2, subject="b")
    workers = pool(inbox, handler)
    workers.start()
    await until(lambda: _running(inbox, 2))
    await add(inbox, 3, subject="c")  # arrives during shutdown: must not be claimed
    await workers.stop(grace=1.0)
    assert await status(inbox, "d-1") == "done"
    (released,) = await inbox.jobs_for_delivery("d-2")
    assert (released.status, released.attempts, released.last_error) == ("queued", 0, "released at shutdown")
    assert await status(inbox, "d-3") == "queued"


async def _running(inbox: Inbox, n: int) -> bool:
    return (await inbox.stats()).by_status["running"] == n


async def test_lost_lease_cancels_the_attempt(inbox: Inbox) -> None:
    cancelled = asyncio.Event()

    async def slow(job: Job) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    await add(inbox, 1)
    workers = pool(inbox, slow, lease_seconds=0.3)
    workers.start()
    await until(lambda: _running(inbox, 1))
    # Another worker took the job over (as after a long pause of this process).
    await inbox.db.run(lambda tx: tx.execute("UPDATE jobs SET lease_token = 'someone-else'"))
    await asyncio.wait_for(cancelled.wait(), 5)
    await workers.stop(1)
    (job,) = await inbox.jobs_for_delivery("d-1")
    assert job.lease_token == "someone-else"  # the loser wrote nothing


async def test_unknown_flow_fails_permanently(inbox: Inbox) -> None:
    registry = Registry()
    registry.register(Flow("other", frozenset({("x", None)}), handler=lambda ctx: asyncio.sleep(0)))
    dispatcher = Dispatcher(
        registry, inbox, None, __import__("app.settings", fromlist=["Settings"]).Settings.load()
    )
    await add(inbox, 1)
    job = await inbox.claim("w", 10)
    assert job is not None
    with pytest.raises(PermanentError, match="no flow named 'f'"):
        await dispatcher(job)


async def test_unreachable_database_stops_the_attempt_before_its_lease_ends(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled_at: list[float] = []

    async def slow(job: Job) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled_at.append(time.monotonic())
            raise

    async def unreachable(job: Job, lease: float) -> bool:
        raise ConnectionError("database unreachable")

    await add(inbox, 1)
    workers = pool(inbox, slow, lease_seconds=0.9)
    workers.start()
    await until(lambda: _running(inbox, 1))
    started = time.monotonic()
    monkeypatch.setattr(inbox, "heartbeat", unreachable)
    await until(lambda: _async_true(bool(cancelled_at)))
    await workers.stop(1)
    # Cancelled before its lease ran out, so no other worker could have started it meanwhile.
    assert cancelled_at[0] - started < 0.9


async def _async_true(value: bool) -> bool:
    return value


async def test_outcome_that_cannot_be_recorded_runs_again(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = 0

    async def handler(job: Job) -> None:
        nonlocal runs
        runs += 1

    real_complete = inbox.complete
    failures = iter([True])

    async def flaky_complete(job: Job) -> bool:
        if next(failures, False):
            raise ConnectionError("database went away")
        return await real_complete(job)

    monkeypatch.setattr(inbox, "complete", flaky_complete)
    await add(inbox, 1)
    workers = pool(inbox, handler, lease_seconds=0.3)
    workers.start()
    await until(lambda: _is(inbox, "done"))
    await workers.stop(1)
    assert runs == 2  # the first result was lost with the database; the lease brought the job back


# ---- waking without polling --------------------------------------------------------------------


async def test_a_job_rescheduled_to_a_time_runs_then_not_a_poll_later(inbox: Inbox) -> None:
    """The pool sleeps until the earliest queued job is due, at most a poll interval (here two
    minutes, while the test waits 30 s at most: only the due time can wake it in time)."""
    ran = asyncio.Event()

    async def handler(job: Job) -> None:
        ran.set()

    await add(inbox, 1)
    job = await inbox.claim("w", 30)
    assert job is not None
    await inbox.reschedule(job, inbox.clock() + 0.3, "a reset", max_reschedules=5)
    workers = pool(inbox, handler, poll_seconds=120)
    workers.start()
    try:
        await asyncio.wait_for(ran.wait(), timeout=30)
    finally:
        await asyncio.wait_for(workers.stop(grace=1), timeout=60)


async def test_notify_wakes_a_worker_in_another_process(pg_url: str) -> None:
    """PostgreSQL: a job queued through one process's inbox wakes the idle workers of another at
    once (LISTEN/NOTIFY); they poll only every two minutes here, and the test waits 30 s at most."""
    queuing = Inbox.open(pg_url)
    working = Inbox.open(pg_url)
    try:
        await queuing.migrate()
        ran = asyncio.Event()

        async def handler(job: Job) -> None:
            ran.set()

        workers = pool(working, handler, poll_seconds=120)
        workers.start()
        try:
            await asyncio.sleep(0.5)  # the pool is idle, listening
            await add(queuing, 1)
            await asyncio.wait_for(ran.wait(), timeout=30)
        finally:
            await asyncio.wait_for(workers.stop(grace=1), timeout=60)
    finally:
        queuing.close()
        working.close()
