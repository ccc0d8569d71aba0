"""The store's engines, and the way to use them: a unit of work.

A unit of work is a plain function run in one transaction, never on the event loop: over a
SQLAlchemy ``Session`` with ``await db.write(work)`` / ``await db.read(work)``, or, for the hot
paths, over Core statements only (a ``Tx``) with ``await db.write_core(work)`` /
``await db.read_core(work)``.

- SQLite: the work runs in a thread on a ``sqlite3`` connection, start to finish in one hop.
  Statement-by-statement async drivers cost a thread round trip per cursor call (26 for one
  rotation, measured), which made rotation ten times slower than the work itself. One thread
  writes (``BEGIN IMMEDIATE``; WAL lets the reader threads go on meanwhile): several writers on
  one file only fight over its lock.
  A Core unit of work runs its statements straight on a ``sqlite3`` connection of the writer
  thread, or of a reader thread (``kizuna.sqlite_direct``): SQLAlchemy's per-execution
  machinery cost a rotation more than SQLite did, and a login's user lookup through a
  ``Session`` held the GIL for about 0.4 ms, which page views served meanwhile waited for.
- PostgreSQL: the same function runs through SQLAlchemy's asyncio extension
  (``AsyncSession.run_sync`` / ``AsyncConnection.run_sync``) on asyncpg, which is natively
  asynchronous.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, overload

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable

from kizuna import sqlite_direct
from kizuna.sqlite_writer import SQLiteWriter, WriterLock, make_way

T = TypeVar("T")
U = TypeVar("U")
Work = Callable[[Session], T]


class Rows(Protocol):
    """What a Core statement answers: its rows, and for DML how many rows it touched."""

    @property
    def rowcount(self) -> int: ...
    def first(self) -> Sequence[Any] | None: ...
    def all(self) -> Sequence[Sequence[Any]]: ...


class Tx(Protocol):
    """A transaction that runs Core statements; all that the hot-path store functions use."""

    def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Rows: ...


CoreWork = Callable[[Tx], T]


class _ConnectionTx:
    """A ``Tx`` over a SQLAlchemy ``Connection`` (PostgreSQL, and Session units of work)."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Rows:
        return self.connection.execute(statement, dict(parameters or {}))


def tx_of(session: Session) -> Tx:
    """The ``Tx`` of a Session unit of work: Core store functions join its transaction."""
    return _ConnectionTx(session.connection())


_READER_THREADS = 4


def sync_sqlite_url(url: str) -> str:
    """``sqlite+aiosqlite:///…`` (the configured, async form) → the ``sqlite3`` driver's URL."""
    scheme, _, rest = url.partition("://")
    return "sqlite://" + rest if scheme.startswith("sqlite") else url


def _database_path(url: str) -> str:
    database = make_url(sync_sqlite_url(url)).database
    if not database or database == ":memory:":
        raise ValueError("the SQLite store needs a file")
    return database


def _configure(dbapi_connection: sqlite3.Connection) -> None:
    # Take BEGIN away from the driver so the writer can say BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_engine(url: str, *, writer: bool, pool_size: int) -> Engine:
    engine = create_engine(
        sync_sqlite_url(url),
        hide_parameters=True,  # errors get logged; parameters hold emails and user agents
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _configure(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a second process waits (busy_timeout)
        # instead of failing on a read-to-write lock upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _run(engine: Engine, work: Work[T]) -> T:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return work(session)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._async: AsyncEngine | None = None
        if self.is_sqlite:
            self._path = _database_path(url)
            self._write_engine = _sqlite_engine(url, writer=True, pool_size=1)
            # The writer thread's own connection for Core units of work, opened on first use.
            self._direct: sqlite3.Connection | None = None
            self._statements = sqlite_direct.Statements(self._write_engine.dialect)
            self._writer = SQLiteWriter(
                lock=WriterLock(self._path + ".write-lock"),
                run_group=self._run_direct_group,
                on_exit=self._close_writer,
            )
            self._read_engine = _sqlite_engine(url, writer=False, pool_size=_READER_THREADS)
            self._readers = ThreadPoolExecutor(
                max_workers=_READER_THREADS, thread_name_prefix="sqlite-reader"
            )
            # Each reader thread's own connection for Core units of work, opened on first use.
            self._reader_local = threading.local()
            self._reader_connections: list[sqlite3.Connection] = []
            self._reader_connections_lock = threading.Lock()
        else:
            self._async = create_async_engine(
                url,
                hide_parameters=True,
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                pool_timeout=10,
            )

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` in one read-write transaction; commits on return, rolls back on raise."""
        if self._async is not None:
            return await self._run_async(work)
        result: T = await self._writer.submit(lambda: _run(self._write_engine, work), None)
        return result

    @overload
    async def write_core(self, work: CoreWork[T]) -> T: ...
    @overload
    async def write_core(self, work: CoreWork[T], then: Callable[[T], U]) -> U: ...
    async def write_core(
        self, work: CoreWork[Any], then: Callable[[Any], Any] | None = None
    ) -> Any:
        """Run a Core unit of work in one read-write transaction, as ``write`` does; then, once
        it has committed, ``then`` on its result. On SQLite both run in the writer thread,
        ``then`` after the write lock is released: CPU work that needs no lock (signing)."""
        if self._async is not None:
            async with self._async.begin() as connection:
                result = await connection.run_sync(lambda sync: work(_ConnectionTx(sync)))
            return result if then is None else then(result)
        return await self._writer.submit(lambda: self._run_direct(work), work, then)

    # In the writer thread only:

    def _connect_direct(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            _configure(connection)
        except sqlite3.Error as exc:
            raise sqlite_direct.translated(exc, None, None) from exc
        return connection

    def _direct_connection(self) -> sqlite3.Connection:
        if self._direct is None:
            self._direct = self._connect_direct()
        return self._direct

    def _run_direct(self, work: CoreWork[T]) -> T:
        return sqlite_direct.run(self._direct_connection(), self._statements, work)

    def _run_direct_group(self, units: list[CoreWork[Any]]) -> list[Any]:
        return sqlite_direct.run(
            self._direct_connection(), self._statements, lambda tx: [unit(tx) for unit in units]
        )

    def _close_writer(self) -> None:
        self._write_engine.dispose()
        if self._direct is not None:
            self._direct.close()
            self._direct = None

    async def read(self, work: Work[T]) -> T:
        if self._async is not None:
            return await self._run_async(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, _run, self._read_engine, work)

    async def read_core(self, work: CoreWork[T]) -> T:
        """Run a Core unit of work in one read transaction (one consistent snapshot). On
        SQLite it runs in a reader thread, alongside the writer (WAL)."""
        if self._async is not None:
            async with self._async.begin() as connection:
                result: T = await connection.run_sync(lambda sync: work(_ConnectionTx(sync)))
            return result
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_direct, work)

    # In a reader thread only:

    def _read_direct(self, work: CoreWork[T]) -> T:
        connection: sqlite3.Connection | None = getattr(self._reader_local, "connection", None)
        if connection is None:
            connection = self._connect_direct()
            with self._reader_connections_lock:
                self._reader_connections.append(connection)
            self._reader_local.connection = connection
        make_way()  # see sqlite_writer.make_way: this thread has just woken up
        return sqlite_direct.run(connection, self._statements, work, write=False)

    async def _run_async(self, work: Work[T]) -> T:
        assert self._async is not None
        async with AsyncSession(self._async, expire_on_commit=False) as session, session.begin():
            return await session.run_sync(work)

    async def dispose(self) -> None:
        if self._async is not None:
            await self._async.dispose()
            return
        await self._writer.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._readers, self._read_engine.dispose)
        # Waits for reads still running before their connections close (off the loop).
        await asyncio.to_thread(self._readers.shutdown, wait=True)
        with self._reader_connections_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
