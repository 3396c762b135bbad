"""SQLite shared by several processes (a receiver and `autopack worker`s): the write lock another
connection holds is waited for, in fine steps, up to the busy timeout; then a clear error."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from app.inbox.db import DatabaseUnavailable, SqliteDatabase, Tx


def _insert(tx: Tx) -> int:
    return tx.execute("INSERT INTO t (x) VALUES (1)")


@pytest.fixture
def path(tmp_path: Path) -> str:
    db = str(tmp_path / "lock.db")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER)")
    return db


def test_a_batch_waits_for_another_connections_write_lock_then_commits(path: str) -> None:
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    db = SqliteDatabase(path, busy_timeout_ms=30_000)
    try:
        started = threading.Event()
        result: list[int] = []

        def write() -> None:
            started.set()
            result.append(db.run_sync(_insert))

        writer = threading.Thread(target=write)
        writer.start()
        started.wait()
        other.execute("INSERT INTO t (x) VALUES (2)")
        assert result == []  # still waiting: the lock is held
        other.execute("COMMIT")
        writer.join(timeout=30)
        assert result == [1]
        assert sorted(r[0] for r in other.execute("SELECT x FROM t")) == [1, 2]
    finally:
        db.close()
        other.close()


def test_a_lock_held_past_the_busy_timeout_is_a_clear_error_and_the_next_batch_works(path: str) -> None:
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    db = SqliteDatabase(path, busy_timeout_ms=50)
    try:
        with pytest.raises(DatabaseUnavailable, match="database is locked"):
            db.run_sync(_insert)
        other.execute("ROLLBACK")
        assert db.run_sync(_insert) == 1
    finally:
        db.close()
        other.close()


async def test_an_awaited_operation_waits_for_another_process_off_the_event_loop(path: str) -> None:
    """The lock is released by a callback on the same loop, which could not run while the loop
    waited; and the waiting `_begin` is never called on the loop's thread."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    db = SqliteDatabase(path, busy_timeout_ms=10_000)
    waited_in: list[threading.Thread] = []
    begin = db._begin

    def recording_begin() -> None:
        waited_in.append(threading.current_thread())
        begin()

    db._begin = recording_begin  # type: ignore[method-assign]
    try:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, other.execute, "COMMIT")
        assert await db.run(_insert) == 1
        assert waited_in  # it did wait
        assert threading.current_thread() not in waited_in
        assert await db.run(lambda tx: tx.fetchall("SELECT COUNT(*) AS n FROM t")) == [{"n": 1}]
    finally:
        db.close()
        other.close()


async def test_a_thread_and_the_event_loop_share_the_connection(path: str) -> None:
    """`run_sync` from another thread while the loop's groups are in flight: every write lands
    once, and neither side sees the other's half-done transaction."""
    db = SqliteDatabase(path)
    try:
        thread = threading.Thread(target=lambda: [db.run_sync(_insert) for _ in range(50)])
        thread.start()
        results = await asyncio.gather(*(db.run(_insert) for _ in range(200)))
        await asyncio.to_thread(thread.join, 30)
        assert results == [1] * 200
        assert await db.run(lambda tx: tx.fetchall("SELECT COUNT(*) AS n FROM t")) == [{"n": 250}]
    finally:
        db.close()


async def test_a_closed_database_refuses_operations_clearly(path: str) -> None:
    db = SqliteDatabase(path)
    assert await db.run(_insert) == 1
    db.close()
    with pytest.raises(DatabaseUnavailable, match="closed"):
        await db.run(_insert)
    with pytest.raises(DatabaseUnavailable, match="closed"):
        db.run_sync(_insert)


def test_two_event_loops_in_two_threads_share_one_database(path: str) -> None:
    """The web app's loop (a TestClient's portal, say) and another: whichever holds the
    connection, the other's group waits for it in a thread and every write lands once."""
    db = SqliteDatabase(path)
    results: list[list[int]] = []

    async def many() -> list[int]:
        return list(await asyncio.gather(*(db.run(_insert) for _ in range(100))))

    try:
        threads = [threading.Thread(target=lambda: results.append(asyncio.run(many()))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert results == [[1] * 100, [1] * 100]
        assert db.run_sync(lambda tx: tx.fetchall("SELECT COUNT(*) AS n FROM t")) == [{"n": 200}]
    finally:
        db.close()


async def test_a_burst_runs_in_groups_of_at_most_max_group(path: str) -> None:
    """However many operations wait, the loop runs at most MAX_GROUP of them before it lets
    other work in; the rest follow in the next groups, none lost."""
    db = SqliteDatabase(path)
    db.MAX_GROUP = 4  # type: ignore[misc]
    sizes: list[int] = []
    run_group = db._run_group

    def counting(group: list[Any]) -> Any:
        sizes.append(len(group))
        return run_group(group)

    db._run_group = counting  # type: ignore[method-assign]
    try:
        assert await asyncio.gather(*(db.run(_insert) for _ in range(10))) == [1] * 10
        assert sizes == [4, 4, 2]
    finally:
        db.close()
