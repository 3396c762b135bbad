"""Several worker processes on one PostgreSQL: exactly-once completion, per-subject exclusion,
reclaimed leases of a killed worker, and no head-of-line blocking by a busy subject."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from app.inbox.store import Inbox

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

JOBS = 1000
SUBJECTS = 20
BUSY = "busy/repo#1"
BUSY_JOBS = 100
LEASE = 1.5


async def _prepare(url: str) -> None:
    inbox = Inbox.open(url)
    await inbox.migrate()
    await inbox.db.run(
        lambda tx: tx.execute(
            "CREATE TABLE runs (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job_id BIGINT, "
            "subject TEXT, pid INTEGER, started DOUBLE PRECISION, ended DOUBLE PRECISION)"
        )
    )
    # The busy subject's jobs come first and are slow; the other 19 subjects share the rest.
    for _ in range(BUSY_JOBS):
        await inbox.enqueue("f", BUSY, args={"seconds": 0.03}, max_attempts=5)
    for n in range(JOBS - BUSY_JOBS):
        await inbox.enqueue("f", f"o/r#{n % (SUBJECTS - 1) + 2}", max_attempts=5)
    inbox.close()


def test_three_workers_thousand_jobs(pg_url: str, tmp_path: Path) -> None:
    asyncio.run(_prepare(pg_url))
    logs = [(tmp_path / f"worker{i}.log").open("wb") for i in range(3)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.pg_worker", pg_url, str(LEASE), "4"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        for log in logs
    ]
    inbox = Inbox.open(pg_url)
    try:
        victim = workers[0]
        # Kill one worker while it is in the middle of a job.
        deadline = time.monotonic() + 60
        while not inbox.db.run_sync(
            lambda tx: tx.fetchone("SELECT 1 AS x FROM runs WHERE pid = ? AND ended IS NULL", (victim.pid,))
        ):
            assert time.monotonic() < deadline, "victim never started a job"
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = time.time()

        deadline = time.monotonic() + 180
        while True:
            left = inbox.db.run_sync(
                lambda tx: tx.fetchone("SELECT COUNT(*) AS n FROM jobs WHERE status <> 'done'")
            )
            if left and left["n"] == 0:
                break
            assert time.monotonic() < deadline, f"{left} jobs not done"
            time.sleep(0.2)
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0

        jobs = inbox.db.run_sync(lambda tx: tx.fetchall("SELECT id, subject, attempts, status FROM jobs"))
        runs = inbox.db.run_sync(lambda tx: tx.fetchall("SELECT * FROM runs ORDER BY started"))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        inbox.close()
        for log in logs:
            log.close()

    assert len(jobs) == JOBS
    assert {j["status"] for j in jobs} == {"done"}
    # Every job completed exactly once among the workers that lived. The killed worker may have
    # finished a job whose "done" it never committed; that job then ran again (at-least-once, which
    # is why every flow is idempotent) — but never while the killed run could still be going.
    by_job = defaultdict(list)
    for run in runs:
        assert run["ended"] is not None or run["pid"] == victim.pid
        by_job[run["job_id"]].append(run)
    for job in jobs:
        finished = [r for r in by_job[job["id"]] if r["ended"] is not None]
        survivors = [r for r in finished if r["pid"] != victim.pid]
        assert 1 <= len(finished) <= 2, by_job[job["id"]]
        assert len(survivors) <= 1, by_job[job["id"]]
        if len(finished) == 2:
            lost = next(r for r in finished if r["pid"] == victim.pid)
            assert lost["ended"] <= killed_at <= survivors[0]["started"], by_job[job["id"]]
    unfinished = [r for r in runs if r["ended"] is None]
    assert unfinished, "the killed worker had a job in hand"
    # Its leases were reclaimed: those jobs ran again, on another worker.
    for run in unfinished:
        again = [r for r in runs if r["job_id"] == run["job_id"] and r["ended"] is not None]
        assert again
        assert again[0]["pid"] != victim.pid
        assert again[0]["started"] >= killed_at
        assert next(j for j in jobs if j["id"] == run["job_id"])["attempts"] == 2
    # No two runs of one subject ever overlapped (a killed run lasts until the kill).
    by_subject = defaultdict(list)
    for run in runs:
        by_subject[run["subject"]].append((run["started"], run["ended"] or killed_at))
    assert len(by_subject) == SUBJECTS
    for subject, spans in by_subject.items():
        spans.sort()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            assert s2 >= e1, f"overlap in {subject}"
    # The busy subject (first in the queue, slow) did not hold up the others.
    busy_end = max(end for _, end in by_subject[BUSY])
    others_end = max(end for s, spans in by_subject.items() if s != BUSY for _, end in spans)
    assert others_end < busy_end
    # All three processes did work before the kill.
    assert len({r["pid"] for r in runs}) == 3
