"""Two database backends behind one tiny interface: run a function inside a transaction.

Inbox logic is written once as plain synchronous functions `op(tx) -> T` using `?` placeholders.
No transaction is ever held across an `await` on the network (DESIGN §3): an operation is
synchronous code, run whole.

- SQLite: group commit on one connection. Operations awaited on the event loop run there together
  in one `BEGIN IMMEDIATE` transaction and only the COMMIT (the fsync) goes to a thread; a failing
  operation undoes only itself. WAL and `synchronous=FULL`: a delivery answered 202 is on disk.
- PostgreSQL: a psycopg connection pool used from a thread pool; one transaction per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
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
_Result = tuple[_Waiter, bool, Any]


def _settle(results: list[_Result]) -> None:
    for waiter, ok, value in results:
        if waiter.future.done():  # an awaiting task was cancelled
            continue
        if ok:
            waiter.future.set_result(value)
        else:
            waiter.future.set_exception(value)


class SqliteDatabase:
    """One connection, group commit, safe for several processes (WAL).

    The receiver answers 202 only once a delivery is on disk, so how fast it takes a burst is set
    by how cheaply many waiting deliveries become durable together. Operations awaited on an event
    loop are collected while the previous group commits, then run together on that loop inside one
    `BEGIN IMMEDIATE`; only the `COMMIT`, where SQLite writes and fsyncs the WAL, runs in a thread.
    So the loop never waits on the disk, and no statement pays a thread hop or a GIL hand-off (a
    writer thread running every statement cost the receiver about a fifth of its CPU in them).
    `run_sync` (the CLI, threads without a loop) and a group that finds another process holding
    the write lock run a whole group in a thread instead, waiting for the lock in fine steps.
    """

    dialect = "sqlite"
    MAX_GROUP = 256  # operations run on the loop in one go, so a burst never stalls it for long

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._conn = self._open(busy_timeout_ms)
        self._tx = _SqliteTx(self._conn)
        # Held by whoever uses the connection, from BEGIN until its COMMIT has returned.
        self._lock = threading.Lock()
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-commit")
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="sqlite-wait")
        # Each loop's waiting operations, and the loops whose group is in flight. Only the loop's
        # own thread touches its entries.
        self._waiting: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
        self._in_flight: set[asyncio.AbstractEventLoop] = set()
        self._closed = False

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        if self.path != ":memory:" and str(mode).lower() != "wal":
            raise DatabaseUnavailable(f"SQLite database {self.path} refused WAL mode ({mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # A group's BEGIN IMMEDIATE is the one place a lock is waited for; on the loop it is tried
        # once, in a thread `_begin` waits in fine steps instead of SQLite's busy handler.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    # -- operations awaited on an event loop ------------------------------------------------

    async def run(self, op: Callable[[Tx], T]) -> T:
        if self._closed:
            raise DatabaseUnavailable("SQLite database is closed")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop)
        group = self._waiting.setdefault(loop, [])
        group.append((op, waiter))
        if len(group) == 1 and loop not in self._in_flight:
            loop.call_soon(self._start_group, loop)
        return await waiter.future  # type: ignore[no-any-return, misc]

    def _start_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop: run the waiting operations in one transaction and hand its COMMIT to the
        committer thread; `_group_done` starts the next group with whatever arrived meanwhile."""
        waiting = self._waiting.get(loop)
        if not waiting or loop in self._in_flight:
            return
        group, self._waiting[loop] = waiting[: self.MAX_GROUP], waiting[self.MAX_GROUP :]
        self._in_flight.add(loop)
        if self._closed:
            error = DatabaseUnavailable("SQLite database is closed")
            self._group_done(loop, [(w, False, error) for _, w in group])
            return
        if self._lock.acquire(blocking=False):
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error:
                self._lock.release()  # another process writes: wait for it in a thread
            else:
                results = self._run_group(group)
                done = self._committer.submit(self._commit, group, results)
                done.add_done_callback(lambda f: self._settle_on(loop, f.result()))
                return
        done = self._waiter.submit(self._run_locked, group)
        done.add_done_callback(lambda f: self._settle_on(loop, f.result()))

    def _settle_on(self, loop: asyncio.AbstractEventLoop, results: list[_Result]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(self._group_done, loop, results)

    def _group_done(self, loop: asyncio.AbstractEventLoop, results: list[_Result]) -> None:
        self._in_flight.discard(loop)
        _settle(results)
        if self._waiting.get(loop):
            self._start_group(loop)
        else:
            self._waiting.pop(loop, None)  # a finished loop (each test has one) is not kept

    def _commit(self, group: list[_Request], results: list[_Result]) -> list[_Result]:
        """In the committer thread: make the group durable, then free the connection."""
        try:
            return self._finish(group, results)
        finally:
            self._lock.release()

    def _finish(self, group: list[_Request], results: list[_Result]) -> list[_Result]:
        """COMMIT; if that fails, nothing of the group happened and every operation says so."""
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            error = DatabaseUnavailable(f"SQLite commit failed: {exc}")
            return [(w, False, error) for _, w in group]
        return results

    # -- shared by both paths ----------------------------------------------------------------

    def _run_group(self, group: list[_Request]) -> list[_Result]:
        """Run a group inside the open transaction. Fast path: one savepoint for all. If any
        operation raises, that savepoint is rolled back and each runs again in its own, so one
        failure undoes only itself (operations only touch the database: running them again is
        safe) and the write lock is never let go of midway. A group of one runs once."""
        if len(group) > 1:
            with contextlib.suppress(Exception), self._tx.savepoint():
                return [(waiter, True, op(self._tx)) for op, waiter in group]
        results: list[_Result] = []
        for op, waiter in group:
            try:
                with self._tx.savepoint():
                    results.append((waiter, True, op(self._tx)))
            except Exception as exc:
                results.append((waiter, False, exc))
        return results

    def _run_locked(self, group: list[_Request]) -> list[_Result]:
        """In the calling thread: take the connection, wait for the write lock, run, commit."""
        with self._lock:
            if self._closed:
                return [(w, False, DatabaseUnavailable("SQLite database is closed")) for _, w in group]
            try:
                self._begin()
            except sqlite3.Error as exc:
                return [(w, False, DatabaseUnavailable(f"SQLite: {exc}")) for _, w in group]
            return self._finish(group, self._run_group(group))

    def _begin(self) -> None:
        """Take the write lock, waiting while another process holds it. SQLite's own busy handler
        sleeps 1, 2, 5, 10, 15, 20, 25 ms... between tries, so a receiver sharing the database
        with a worker process would answer tens of milliseconds late whenever their commits meet;
        other processes' write transactions last about a millisecond, so this tries every 0.2 ms
        at first and never sleeps more than 2 ms, up to the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        pause = 0.0002
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)

    def run_sync(self, op: Callable[[Tx], T]) -> T:
        if self._closed:
            raise DatabaseUnavailable("SQLite database is closed")
        waiter = _Waiter(None)
        _settle(self._run_locked([(op, waiter)]))
        assert isinstance(waiter.future, Future)
        return waiter.future.result()  # type: ignore[no-any-return]

    def close(self) -> None:
        """Let the group in flight commit, refuse the rest, close the connection."""
        if self._closed:
            return
        self._closed = True
        self._waiter.shutdown(wait=True)
        self._committer.shutdown(wait=True)
        with self._lock:
            self._conn.close()
        error = DatabaseUnavailable("SQLite database is closed")
        for loop, group in list(self._waiting.items()):
            self._waiting[loop] = []
            self._settle_on(loop, [(w, False, error) for _, w in group])


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
