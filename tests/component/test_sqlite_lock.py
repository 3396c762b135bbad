"""SQLite shared by several processes (a receiver and `autopack worker`s): the write lock another
connection holds is waited for, in fine steps, up to the busy timeout; then a clear error."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

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
