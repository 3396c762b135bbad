"""Two database backends behind one tiny interface: run a function inside a transaction.

Inbox logic is written once as plain synchronous functions `op(tx) -> T` using `?` placeholders.
Each backend runs them in a thread, so no transaction is ever held across an `await` on the
network (DESIGN §3):

- SQLite: one writer thread owns the connection and commits every operation waiting in its queue
  in a single `BEGIN IMMEDIATE` transaction (group commit), each inside its own savepoint so one
  failing operation does not undo the others. WAL and `synchronous=FULL`: a delivery answered 202
  is on disk.
- PostgreSQL: a psycopg connection pool used from a thread pool; one transaction per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from app.logs import get_logger

log = get_logger("autopack.db")
T = TypeVar("T")
Params = Sequence[Any]


class IntegrityError(Exception):
    """A constraint was violated (both backends raise this one type)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened."""


class Tx(Protocol):
    """What an operation sees: execute SQL, read rows as dicts."""

    dialect: str

    def execute(self, sql: str, params: Params = ()) -> int: ...
    def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...
    def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None: ...
    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]: ...


class Database(Protocol):
    dialect: str

    async def run(self, op: Callable[[Tx], T]) -> T: ...
    def run_sync(self, op: Callable[[Tx], T]) -> T: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# SQLite


class _TxBase:
    """execute / fetchall / fetchone over one backend-specific `_cursor`."""

    dialect: str

    def _cursor(self, sql: str, params: Params) -> Any:
        raise NotImplementedError

    def execute(self, sql: str, params: Params = ()) -> int:
        return int(self._cursor(sql, params).rowcount)

    def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        cur = self._cursor(sql, params)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None


class _SqliteTx(_TxBase):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._savepoints = 0

    def _cursor(self, sql: str, params: Params) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        self._conn.execute(f"RELEASE {name}")


class _Waiter:
    """Where an operation's result goes: a thread's Future, or an asyncio future on a loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.future: Future[Any] | asyncio.Future[Any] = (
            loop.create_future() if loop is not None else Future()
        )


_Request = tuple[Callable[[Any], Any], _Waiter]


def _settle(results: list[tuple[_Waiter, bool, Any]]) -> None:
    for waiter, ok, value in results:
        if waiter.future.done():  # an awaiting task was cancelled
            continue
        if ok:
            waiter.future.set_result(value)
        else:
            waiter.future.set_exception(value)


class SqliteDatabase:
    """One connection, one writer thread, group commit. Safe for several processes (WAL)."""

    dialect = "sqlite"
    MAX_BATCH = 512

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._main, args=(busy_timeout_ms,), name="sqlite-writer", daemon=True
        )
        self._thread.start()
        self._ready.result()

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        if self.path != ":memory:" and str(mode).lower() != "wal":
            raise DatabaseUnavailable(f"SQLite database {self.path} refused WAL mode ({mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Every statement runs inside a batch's BEGIN IMMEDIATE, the one place a lock is waited
        # for; `_begin` waits for it in fine steps instead of SQLite's busy handler.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    def _main(self, busy_timeout_ms: int) -> None:
        try:
            conn = self._open(busy_timeout_ms)
        except DatabaseUnavailable as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        tx = _SqliteTx(conn)
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < self.MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit_batch(conn, tx, batch)
            if stop:
                break
        conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, tx: _SqliteTx, batch: list[_Request]) -> None:
        """Run a batch in one transaction. Fast path: no savepoints. If any operation raises, the
        whole batch is rolled back and run again with a savepoint per operation, so one failure
        undoes only itself (operations only touch the database, so running them again is safe)."""
        try:
            self._begin(conn)
        except sqlite3.Error as exc:
            self._deliver([(w, False, DatabaseUnavailable(f"SQLite: {exc}")) for _, w in batch])
            return
        results: list[tuple[_Waiter, bool, Any]] = []
        try:
            for op, waiter in batch:
                results.append((waiter, True, op(tx)))
        except Exception:
            conn.execute("ROLLBACK")
            self._begin(conn)
            results = []
            for op, waiter in batch:
                try:
                    with tx.savepoint():
                        results.append((waiter, True, op(tx)))
                except Exception as exc:
                    results.append((waiter, False, exc))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = DatabaseUnavailable(f"SQLite commit failed: {exc}")
            self._deliver([(w, False, error) for _, w in batch])
            return
        self._deliver(results)

    def _begin(self, conn: sqlite3.Connection) -> None:
        """Take the write lock, waiting while another process holds it. SQLite's own busy handler
        sleeps 1, 2, 5, 10, 15, 20, 25 ms... between tries, so a receiver sharing the database
        with a worker process would answer tens of milliseconds late whenever their commits meet;
        other processes' write transactions last about a millisecond, so this tries every 0.2 ms
        at first and never sleeps more than 2 ms, up to the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        pause = 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)

    @staticmethod
    def _deliver(results: list[tuple[_Waiter, bool, Any]]) -> None:
        """Hand results back: one wake-up per event loop per batch, not one per operation."""
        by_loop: dict[asyncio.AbstractEventLoop | None, list[tuple[_Waiter, bool, Any]]] = {}
        for item in results:
            by_loop.setdefault(item[0].loop, []).append(item)
        for loop, items in by_loop.items():
            if loop is None:
                _settle(items)
            else:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(_settle, items)

    def _submit(self, op: Callable[[Tx], T], loop: asyncio.AbstractEventLoop | None) -> _Waiter:
        if not self._thread.is_alive():
            raise DatabaseUnavailable("SQLite writer thread is not running")
        waiter = _Waiter(loop)
        self._queue.put((op, waiter))
        return waiter

    async def run(self, op: Callable[[Tx], T]) -> T:
        waiter = self._submit(op, asyncio.get_running_loop())
        return await waiter.future  # type: ignore[no-any-return, misc]

    def run_sync(self, op: Callable[[Tx], T]) -> T:
        future = self._submit(op, None).future
        assert isinstance(future, Future)
        return future.result()  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class _PgTx(_TxBase):
    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def _cursor(self, sql: str, params: Params) -> Any:
        import psycopg

        try:
            return self._conn.execute(sql.replace("?", "%s"), params)
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._conn.transaction():
            yield


class PostgresDatabase:
    """A psycopg connection pool driven from a small thread pool."""

    dialect = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.url = url
        try:
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max_connections,
                open=True,
                timeout=15,
                kwargs={"autocommit": False},
            )
            self._pool.wait(timeout=15)
        except (psycopg.Error, Exception) as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {_safe(exc)}") from exc
        self._executor = ThreadPoolExecutor(max_workers=max_connections, thread_name_prefix="pg")

    def run_sync(self, op: Callable[[Tx], T]) -> T:
        import psycopg

        try:
            with self._pool.connection() as conn, conn.transaction():
                return op(_PgTx(conn))
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"PostgreSQL: {_safe(exc)}") from exc

    async def run(self, op: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run_sync, op)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._pool.close()

    async def listen(self, channel: str, wake: Callable[[], None], *, retry_seconds: float = 5.0) -> None:
        """Call `wake` on every notification of `channel`, until cancelled: one connection of its
        own (LISTEN needs one outside the pool), reconnected after a failure. After (re)connecting
        it wakes once, since a notification may have been missed meanwhile."""
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {channel}")
                    wake()
                    async for _ in conn.notifies():
                        wake()
            except psycopg.Error as exc:
                log.warning(
                    "job notifications lost; listening again", error=_safe(exc), retry_in=retry_seconds
                )
                await asyncio.sleep(retry_seconds)


def _safe(exc: BaseException) -> str:
    """Connection errors can echo the URL; keep only the first line, without credentials."""
    import re

    return re.sub(r"://[^@/\s]+@", "://***@", str(exc).splitlines()[0] if str(exc) else repr(exc))


def connect(url: str) -> SqliteDatabase | PostgresDatabase:
    """Open the database a DATABASE_URL names."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///") or ":memory:"
        return SqliteDatabase(path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    raise DatabaseUnavailable(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]}")
