"""A worker process for the PostgreSQL concurrency test: the real WorkerPool and Inbox, with a
handler that records each run (start, end, pid) in the same database.

Usage: python -m tests.integration.pg_worker DATABASE_URL LEASE_SECONDS CONCURRENCY
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from app.inbox.models import Job
from app.inbox.store import Inbox
from app.inbox.worker import WorkerPool


async def main(url: str, lease: float, concurrency: int) -> None:
    inbox = Inbox.open(url)

    async def handler(job: Job) -> None:
        started = time.time()
        row_id = await inbox.db.run(
            lambda tx: tx.fetchone(
                "INSERT INTO runs (job_id, subject, pid, started) VALUES (?, ?, ?, ?) RETURNING id",
                (job.id, job.subject, os.getpid(), started),
            )
        )
        await asyncio.sleep(float(job.args.get("seconds", 0.002)))
        await inbox.db.run(
            lambda tx: tx.execute("UPDATE runs SET ended = ? WHERE id = ?", (time.time(), row_id["id"]))
        )

    pool = WorkerPool(inbox, handler, concurrency=concurrency, lease_seconds=lease, poll_seconds=0.05)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    pool.start()
    await stop.wait()
    await pool.stop(grace=5)
    inbox.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
