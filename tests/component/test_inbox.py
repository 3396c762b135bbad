"""The inbox state machine on both backends (PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.inbox.installations import Installations
from app.inbox.models import NewDelivery
from app.inbox.store import Inbox
from app.inbox.triage_log import TriageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'inbox.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    box = Inbox.open(url, clock=Clock())
    box.db.run_sync(__import__("app.inbox.schema", fromlist=["migrate"]).migrate)
    yield box
    box.close()


def clock(inbox: Inbox) -> Clock:
    assert isinstance(inbox.clock, Clock)
    return inbox.clock


def delivery(n: int, subject: str = "o/r#1", now: float = 1_800_000_000.0) -> NewDelivery:
    return NewDelivery(f"d-{n}", "issue_comment", "created", 1, "o/r", subject, {}, b"{}", now)


async def test_record_is_atomic_and_idempotent(inbox: Inbox) -> None:
    assert await inbox.record_delivery(delivery(1), ["a", "b"], max_attempts=3) == "queued"
    assert await inbox.record_delivery(delivery(1), ["a", "b"], max_attempts=3) == "duplicate"
    assert await inbox.record_delivery(delivery(2), [], max_attempts=3) == "ignored"
    assert [j.flow for j in await inbox.jobs_for_delivery("d-1")] == ["a", "b"]
    assert await inbox.jobs_for_delivery("d-2") == []


async def test_one_running_job_per_subject_and_others_not_blocked(inbox: Inbox) -> None:
    for n in range(3):
        await inbox.record_delivery(delivery(n, "o/r#1"), ["f"], max_attempts=3)
    await inbox.record_delivery(delivery(9, "o/r#2"), ["f"], max_attempts=3)
    first = await inbox.claim("w1", 30)
    assert first is not None
    assert first.subject == "o/r#1"
    second = await inbox.claim("w2", 30)
    assert second is not None
    assert second.subject == "o/r#2"  # the busy subject does not hold up the other one
    assert await inbox.claim("w3", 30) is None  # o/r#1 still running, o/r#2 running
    assert await inbox.complete(first)
    third = await inbox.claim("w3", 30)
    assert third is not None
    assert (third.subject, third.delivery_id) == ("o/r#1", "d-1")  # in order within the subject


async def test_transient_failures_back_off_then_dead_letter(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=2)
    job = await inbox.claim("w", 30)
    assert job is not None
    assert await inbox.fail(job, "boom 1", retry_in=10) == "queued"
    assert await inbox.claim("w", 30) is None  # not due yet
    clock(inbox).now += 10
    job = await inbox.claim("w", 30)
    assert job is not None
    assert job.attempts == 2
    assert await inbox.fail(job, "boom 2", retry_in=20) == "dead"
    (dead,) = await inbox.jobs_for_delivery("d-1")
    assert (dead.status, dead.last_error, dead.attempts) == ("dead", "boom 2", 2)
    clock(inbox).now += 100
    assert await inbox.claim("w", 30) is None


async def test_permanent_failure(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=5)
    job = await inbox.claim("w", 30)
    assert job is not None
    assert await inbox.fail(job, "404", retry_in=None) == "failed"
    assert (await inbox.jobs_for_delivery("d-1"))[0].status == "failed"


async def test_reschedule_does_not_spend_attempts_and_is_bounded(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=1)
    job = await inbox.claim("w", 30)
    assert job is not None
    assert await inbox.reschedule(job, clock(inbox).now + 60, "rate limit", max_reschedules=1) == "queued"
    clock(inbox).now += 59
    assert await inbox.claim("w", 30) is None
    clock(inbox).now += 1
    job = await inbox.claim("w", 30)
    assert job is not None
    assert (job.attempts, job.reschedules) == (1, 1)  # attempt refunded, then spent again
    assert await inbox.reschedule(job, clock(inbox).now + 60, "again", max_reschedules=1) == "failed"


async def test_expired_lease_is_reclaimed_and_the_old_owner_fenced(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=3)
    stale = await inbox.claim("w-dead", 30)
    assert stale is not None
    clock(inbox).now += 31
    (reclaimed,) = await inbox.reclaim_expired()
    assert reclaimed.status == "queued"
    fresh = await inbox.claim("w-new", 30)
    assert fresh is not None
    assert fresh.id == stale.id
    assert fresh.attempts == 2
    assert not await inbox.complete(stale)  # the dead worker's late result is refused
    assert not await inbox.heartbeat(stale, 30)
    assert await inbox.fail(stale, "late", retry_in=1) == "lost"
    assert await inbox.complete(fresh)


async def test_expired_lease_out_of_attempts_is_dead(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=1)
    assert await inbox.claim("w", 30) is not None
    clock(inbox).now += 31
    (reclaimed,) = await inbox.reclaim_expired()
    assert reclaimed.status == "dead"


async def test_heartbeat_keeps_the_lease(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=3)
    job = await inbox.claim("w", 30)
    assert job is not None
    clock(inbox).now += 20
    assert await inbox.heartbeat(job, 30)
    clock(inbox).now += 20
    assert await inbox.reclaim_expired() == []


async def test_release_refunds_the_attempt(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=3)
    job = await inbox.claim("w", 30)
    assert job is not None
    assert await inbox.release(job)
    again = await inbox.claim("w", 30)
    assert again is not None
    assert again.attempts == 1


async def test_scheduled_job_with_dedupe_key(inbox: Inbox) -> None:
    at = clock(inbox).now + 3600
    first = await inbox.enqueue("digest", "o/r", args={"week": 48}, run_at=at, dedupe_key="digest:o/r:48")
    assert first is not None
    assert await inbox.enqueue("digest", "o/r", run_at=at, dedupe_key="digest:o/r:48") is None
    assert await inbox.claim("w", 30) is None
    clock(inbox).now = at
    job = await inbox.claim("w", 30)
    assert job is not None
    assert (job.id, job.args, job.delivery_id) == (first, {"week": 48}, None)


async def test_requeue_and_latest_unsuccessful(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), ["f"], max_attempts=1)
    job = await inbox.claim("w", 30)
    assert job is not None
    await inbox.fail(job, "boom", retry_in=1)
    latest = await inbox.latest_unsuccessful_job("o/r#1")
    assert latest is not None
    assert latest.id == job.id
    assert await inbox.latest_unsuccessful_job("o/r#1", exclude=job.id) is None
    assert await inbox.requeue(job.id)
    assert not await inbox.requeue(job.id)  # already queued
    again = await inbox.claim("w", 30)
    assert again is not None
    assert again.attempts == 1


async def test_retry_delivery_routes_an_ignored_one(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1), [], max_attempts=3)
    ids = await inbox.retry_delivery("d-1", ["newflow"], max_attempts=3)
    assert len(ids) == 1
    (row,) = await inbox.list_deliveries()
    assert row["state"] == "queued"


async def test_delivery_states_and_listing(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1, "o/r#1"), ["f"], max_attempts=1)
    await inbox.record_delivery(delivery(2, "o/r#2"), [], max_attempts=1)
    job = await inbox.claim("w", 30)
    assert job is not None
    await inbox.fail(job, "x", retry_in=1)
    states = {r["id"]: r["state"] for r in await inbox.list_deliveries()}
    assert states == {"d-1": "dead", "d-2": "ignored"}
    assert [r["id"] for r in await inbox.list_deliveries(state="dead")] == ["d-1"]


async def test_prune_keeps_records_and_unfinished_payloads(inbox: Inbox) -> None:
    old = clock(inbox).now
    await inbox.record_delivery(delivery(1, now=old), ["f"], max_attempts=3)  # still queued
    await inbox.record_delivery(delivery(2, now=old), [], max_attempts=3)  # finished (ignored)
    clock(inbox).now += 15 * 86400
    assert await inbox.prune_payloads(14 * 86400) == 1
    kept, pruned = await inbox.get_delivery("d-1"), await inbox.get_delivery("d-2")
    assert kept is not None
    assert pruned is not None
    assert kept.payload == b"{}"
    assert (pruned.payload, pruned.headers, pruned.pruned_at) == (None, None, clock(inbox).now)


async def test_prune_goes_through_every_chunk(inbox: Inbox) -> None:
    inbox.PRUNE_CHUNK = 2  # type: ignore[misc]
    old = clock(inbox).now
    for n in range(1, 6):
        await inbox.record_delivery(delivery(n, now=old), [], max_attempts=3)
    await inbox.record_delivery(delivery(6, now=old), ["f"], max_attempts=3)  # still queued
    clock(inbox).now += 15 * 86400
    assert await inbox.prune_payloads(14 * 86400) == 5
    assert await inbox.prune_payloads(14 * 86400) == 0
    payloads = {n: (await inbox.get_delivery(f"d-{n}")).payload for n in range(1, 7)}  # type: ignore[union-attr]
    assert payloads == {1: None, 2: None, 3: None, 4: None, 5: None, 6: b"{}"}


async def test_stats(inbox: Inbox) -> None:
    await inbox.record_delivery(delivery(1, "o/r#1"), ["f"], max_attempts=3)
    await inbox.record_delivery(delivery(2, "o/r#2"), ["f"], max_attempts=3)
    await inbox.claim("w", 30)
    clock(inbox).now += 5
    stats = await inbox.stats()
    assert stats.by_status["queued"] == 1
    assert stats.by_status["running"] == 1
    assert stats.oldest_due_age == pytest.approx(5)


async def test_installations(inbox: Inbox) -> None:
    await Installations(inbox.db).upsert(
        1, "octo-org", "Organization", "Organization", repositories=[(10, "octo-org/a")]
    )
    await Installations(inbox.db).change_repositories(1, added=[(11, "octo-org/b")], removed=[10])
    (inst,) = await Installations(inbox.db).all()
    assert inst["repositories"] == ["octo-org/b"]
    await Installations(inbox.db).delete(1)
    assert await Installations(inbox.db).all() == []


async def test_a_failing_operation_in_a_batch_undoes_only_itself(tmp_path: Path) -> None:
    """SQLite group commit: concurrent operations share a transaction; one that fails midway must
    not take the others with it, nor leave half its own writes behind."""
    import asyncio

    from app.inbox.db import IntegrityError, Tx

    box = Inbox.open(f"sqlite:///{tmp_path / 'batch.db'}")
    await box.migrate()

    def half_then_fail(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO deliveries (id, event, status, received_at) VALUES ('half', 'e', 'ignored', 0)"
        )
        tx.execute(
            "INSERT INTO deliveries (id, event, status, received_at) VALUES ('half', 'e', 'ignored', 0)"
        )

    groups: list[int] = []
    original = box.db._run_group  # type: ignore[attr-defined]

    def counting(group: list[Any]) -> Any:
        groups.append(len(group))
        return original(group)

    box.db._run_group = counting  # type: ignore[attr-defined]
    results = await asyncio.gather(
        box.db.run(lambda tx: None),
        box.record_delivery(delivery(1), ["f"], max_attempts=3),
        box.db.run(half_then_fail),
        box.record_delivery(delivery(2), ["f"], max_attempts=3),
        return_exceptions=True,
    )
    assert groups == [4]  # awaited together: one transaction, the failing one inside it
    assert results[1] == "queued"
    assert isinstance(results[2], IntegrityError)
    assert results[3] == "queued"
    ids = [r["id"] for r in await box.db.run(lambda tx: tx.fetchall("SELECT id FROM deliveries ORDER BY id"))]
    assert ids == ["d-1", "d-2"]  # nothing of the failed operation, everything of the others
    box.close()


async def test_proposals_one_open_per_issue_and_rejections(inbox: Inbox) -> None:
    import asyncio

    from app.inbox.proposals import Proposals
    from app.policy.proposal import Proposal

    store = Proposals(inbox.db)
    first = Proposal(repository="o/r", issue=7, installation_id=1, title="first")
    racing = [Proposal(repository="o/r", issue=7, installation_id=1, title=f"p{i}") for i in range(5)]
    results = await asyncio.gather(*(store.start(p) for p in [first, *racing]))
    assert sum(results) == 1  # two triggers racing for one issue start one proposal
    winner = await store.get("o/r", 7)
    assert winner is not None
    winner.status, winner.pr_number, winner.waiting_sha = "awaiting_test_ci", 12, "abc"
    await store.save(winner)
    assert (await store.by_pr("o/r", 12)) == winner
    assert not await store.start(Proposal(repository="o/r", issue=7, installation_id=1))
    winner.status = "failed"
    await store.save(winner)
    assert await store.start(Proposal(repository="o/r", issue=7, installation_id=1, title="again"))
    again = await store.get("o/r", 7)
    assert again is not None
    assert again.title == "again"
    assert await store.by_pr("o/r", 12) is None  # the old PR number went with the old record
    assert await store.rejection("o/r", 7) is None
    await store.record_rejection("o/r", 7, 12, "", "maintainer")
    assert await store.rejection("o/r", 7) == ""
    await store.record_rejection("o/r", 7, 13, "too big", "maintainer")
    assert await store.rejection("o/r", 7) == "too big"
    assert await store.rejection("o/r", 8) is None


async def test_triage_analysis_is_kept_for_proposals(inbox: Inbox) -> None:
    assert await TriageLog(inbox.db).latest_analysis("o/r", 7) is None
    await TriageLog(inbox.db).record("o/r", 7, "a", "h1", "b", 1)  # an old triage without an analysis
    await TriageLog(inbox.db).record("o/r", 7, "a", "h2", "b", 1, {"area": "app", "warranted": True})
    assert await TriageLog(inbox.db).latest_analysis("o/r", 7) == {"area": "app", "warranted": True}
