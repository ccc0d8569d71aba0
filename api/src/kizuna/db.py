"""The store's engines, and the way to use them: a unit of work.

A unit of work is a plain function given a ``Tx`` (a transaction that runs SQLAlchemy Core
statements) and run in that one transaction, never on the event loop: ``await db.write(work)``
commits when it returns and rolls back when it raises; ``await db.read(work)`` reads one
consistent snapshot. Store functions (``kizuna.store``) take the ``Tx`` and return frozen
dataclasses, never ORM objects; units of work raise domain errors (``EmailTaken``,
``InvalidCredentials``, ``NotFound``), never HTTP problems.

- SQLite: the work runs in a thread, start to finish in one hop, its statements straight on a
  ``sqlite3`` connection (``kizuna.sqlite_direct``). Statement-by-statement async drivers cost
  a thread round trip per cursor call (26 for one rotation, measured), which made rotation ten
  times slower than the work itself; SQLAlchemy's per-execution machinery cost a rotation more
  than SQLite did, and a login's user lookup through an ORM ``Session`` held the GIL for about
  0.4 ms, which page views served meanwhile waited for. One thread writes (``BEGIN
  IMMEDIATE``; WAL lets the reader threads go on meanwhile): several writers on one file only
  fight over its lock.
- PostgreSQL: the same function runs through SQLAlchemy's asyncio extension
  (``AsyncConnection.run_sync``) on asyncpg, which is natively asynchronous.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, overload

from sqlalchemy import Connection, create_engine, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable

from kizuna import sqlite_direct
from kizuna.sqlite_writer import SQLiteWriter, WriterLock, make_way

T = TypeVar("T")
U = TypeVar("U")


class Rows(Protocol):
    """What a Core statement answers: its rows, and for DML how many rows it touched."""

    @property
    def rowcount(self) -> int: ...
    def first(self) -> Sequence[Any] | None: ...
    def all(self) -> Sequence[Sequence[Any]]: ...


class Tx(Protocol):
    """A transaction that runs Core statements: all that a store function is given."""

    def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Rows: ...


Work = Callable[[Tx], T]


class ConnectionTx:
    """A ``Tx`` over a SQLAlchemy ``Connection`` inside its transaction (PostgreSQL)."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Rows:
        return self.connection.execute(statement, dict(parameters or {}))


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


def sqlite_dialect(url: str) -> Dialect:
    """The dialect that compiles the direct path's statements: SQLAlchemy's own for the
    ``sqlite3`` driver (no connection is opened)."""
    return create_engine(sync_sqlite_url(url)).dialect


def configure_sqlite(dbapi_connection: sqlite3.Connection) -> None:
    # Take BEGIN away from the driver so that a write can say BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._async: AsyncEngine | None = None
        if self.is_sqlite:
            self._path = _database_path(url)
            self._statements = sqlite_direct.Statements(sqlite_dialect(url))
            # The writer thread's own connection, opened on first use.
            self._direct: sqlite3.Connection | None = None
            self._writer = SQLiteWriter(
                lock=WriterLock(self._path + ".write-lock"),
                run_one=self._run_direct,
                run_group=self._run_direct_group,
                on_exit=self._close_writer,
            )
            self._readers = ThreadPoolExecutor(
                max_workers=_READER_THREADS, thread_name_prefix="sqlite-reader"
            )
            # Each reader thread's own connection, opened on first use.
            self._reader_local = threading.local()
            self._reader_connections: list[sqlite3.Connection] = []
            self._reader_connections_lock = threading.Lock()
        else:
            self._async = create_async_engine(
                url,
                hide_parameters=True,  # errors get logged; parameters hold emails and agents
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                pool_timeout=10,
            )

    @overload
    async def write(self, work: Work[T]) -> T: ...
    @overload
    async def write(self, work: Work[T], then: Callable[[T], U]) -> U: ...
    async def write(self, work: Work[Any], then: Callable[[Any], Any] | None = None) -> Any:
        """Run ``work`` in one read-write transaction: committed when it returns, rolled back
        when it raises; then, once it has committed, ``then`` on its result. On SQLite both run
        in the writer thread, ``then`` after the write lock is released: CPU work that needs
        no lock (signing)."""
        if self._async is not None:
            async with self._async.begin() as connection:
                result = await connection.run_sync(lambda sync: work(ConnectionTx(sync)))
            return result if then is None else then(result)
        return await self._writer.submit(work, then)

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` in one read transaction (one consistent snapshot). On SQLite it runs
        in a reader thread, alongside the writer (WAL)."""
        if self._async is not None:
            async with self._async.begin() as connection:
                result: T = await connection.run_sync(lambda sync: work(ConnectionTx(sync)))
            return result
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_direct, work)

    def _connect_direct(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            configure_sqlite(connection)
        except sqlite3.Error as exc:
            raise sqlite_direct.translated(exc, None, None) from exc
        return connection

    # In the writer thread only:

    def _direct_connection(self) -> sqlite3.Connection:
        if self._direct is None:
            self._direct = self._connect_direct()
        return self._direct

    def _run_direct(self, work: Work[T]) -> T:
        return sqlite_direct.run(self._direct_connection(), self._statements, work)

    def _run_direct_group(self, units: list[Work[Any]]) -> list[Any]:
        return sqlite_direct.run(
            self._direct_connection(), self._statements, lambda tx: [unit(tx) for unit in units]
        )

    def _close_writer(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None

    # In a reader thread only:

    def _read_direct(self, work: Work[T]) -> T:
        connection: sqlite3.Connection | None = getattr(self._reader_local, "connection", None)
        if connection is None:
            connection = self._connect_direct()
            with self._reader_connections_lock:
                self._reader_connections.append(connection)
            self._reader_local.connection = connection
        make_way()  # see sqlite_writer.make_way: this thread has just woken up
        return sqlite_direct.run(connection, self._statements, work, write=False)

    async def dispose(self) -> None:
        if self._async is not None:
            await self._async.dispose()
            return
        await self._writer.close()
        # Waits for reads still running before their connections close (off the loop).
        await asyncio.to_thread(self._readers.shutdown, wait=True)
        with self._reader_connections_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
