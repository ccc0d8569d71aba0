"""The store's engines, and the one way to use them: a unit of work.

A unit of work is a plain function over a SQLAlchemy ``Session``, run in one transaction by
``await db.write(work)`` / ``await db.read(work)``, never on the event loop:

- SQLite: the work runs in a thread on a ``sqlite3`` connection, start to finish in one hop.
  Statement-by-statement async drivers cost a thread round trip per cursor call (26 for one
  rotation, measured), which made rotation ten times slower than the work itself. One thread
  writes (``BEGIN IMMEDIATE``; WAL lets the reader threads go on meanwhile): several writers on
  one file only fight over its lock.
- PostgreSQL: the same function runs through SQLAlchemy's asyncio extension
  (``AsyncSession.run_sync``) on asyncpg, which is natively asynchronous.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

T = TypeVar("T")
Work = Callable[[Session], T]

_READER_THREADS = 4


def sync_sqlite_url(url: str) -> str:
    """``sqlite+aiosqlite:///…`` (the configured, async form) → the ``sqlite3`` driver's URL."""
    scheme, _, rest = url.partition("://")
    return "sqlite://" + rest if scheme.startswith("sqlite") else url


def _lock_path(url: str) -> str:
    database = make_url(sync_sqlite_url(url)).database
    if not database or database == ":memory:":
        raise ValueError("the SQLite store needs a file")
    return database + ".write-lock"


def _sqlite_engine(url: str, *, writer: bool, pool_size: int) -> Engine:
    engine = create_engine(
        sync_sqlite_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver so the writer can say BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a second process waits (busy_timeout)
        # instead of failing on a read-to-write lock upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _run(engine: Engine, work: Work[T]) -> T:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return work(session)


class _WriterLock:
    """One writer across processes too (``--workers N``): SQLite's own busy handler polls
    with sleeps of up to 100 ms, which turned two workers' lock fights into seconds of p99;
    a kernel file lock hands over the moment it is released. Used by the writer thread only."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def run(self, engine: Engine, work: Work[T]) -> T:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            return _run(engine, work)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._async: AsyncEngine | None = None
        if self.is_sqlite:
            self._write_engine = _sqlite_engine(url, writer=True, pool_size=1)
            self._write_lock = _WriterLock(_lock_path(url))
            self._read_engine = _sqlite_engine(url, writer=False, pool_size=_READER_THREADS)
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            self._readers = ThreadPoolExecutor(
                max_workers=_READER_THREADS, thread_name_prefix="sqlite-reader"
            )
        else:
            self._async = create_async_engine(
                url, pool_size=10, max_overflow=10, pool_pre_ping=True, pool_timeout=10
            )

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` in one read-write transaction; commits on return, rolls back on raise."""
        if self._async is not None:
            return await self._run_async(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._writer, self._write_lock.run, self._write_engine, work
        )

    async def read(self, work: Work[T]) -> T:
        if self._async is not None:
            return await self._run_async(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, _run, self._read_engine, work)

    async def _run_async(self, work: Work[T]) -> T:
        assert self._async is not None
        async with AsyncSession(self._async, expire_on_commit=False) as session, session.begin():
            return await session.run_sync(work)

    async def dispose(self) -> None:
        if self._async is not None:
            await self._async.dispose()
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._write_engine.dispose)
        await loop.run_in_executor(self._writer, self._write_lock.close)
        self._writer.shutdown(wait=False)
        await loop.run_in_executor(self._readers, self._read_engine.dispose)
        self._readers.shutdown(wait=False)
