"""SQLAlchemy Core statements run straight on a ``sqlite3`` connection: every unit of work on
the embedded store (see ``kizuna.db``).

The SQL text and every value conversion are SQLAlchemy's own: each statement is compiled once
by the SQLite dialect, and its bind and result processors (``UTCDateTime``, JSON, Boolean) come
from the column types. What is skipped is the per-execution machinery around them (session,
pool checkout, events, result objects). Measured on a one-statement transaction: 116 µs through
a SQLAlchemy ``Session``, 7.5 µs like this; a rotation spent more time there than in SQLite.

Statements with expanding parameters (``IN`` over a Python list) are refused: their SQL depends
on each call's values, so there is nothing to compile once.

This leans on SQLAlchemy's compiler internals (``SQLCompiler.binds``, ``positiontup``, the
types' processors), so ``tests/test_sqlite_writer.py`` runs every statement of the store
modules both ways and compares the answers; ``pyproject.toml`` allows the SQLAlchemy versions
that test has passed on.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

T = TypeVar("T")
_Processor = Callable[[Any], Any] | None

_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # name, value given when the statement was built (else required at execution), processor
    binds: tuple[tuple[str, Any, bool, _Processor], ...]
    results: tuple[_Processor, ...]


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    assert isinstance(compiled, SQLCompiler)
    if any(bind.expanding for bind in compiled.binds.values()):
        raise TypeError("expanding parameters (IN over a list) are not supported here")
    built = compiled.params
    binds = tuple(
        (
            name,
            built.get(name),
            compiled.binds[name].required,
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
        )
        for name in compiled.positiontup or ()
    )
    columns = getattr(statement, "exported_columns", ())
    results = tuple(
        col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns
    )
    return _Compiled(compiled.string, binds, results)


class Rows:
    """The answer to one statement, fetched in full (so no statement is left open at COMMIT)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows


class Statements:
    """Compiled statements by identity. The hot ones are module-level constants, so they are
    compiled once; one built per call is compiled per call and soon pushed out."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._cache: dict[int, tuple[Executable, _Compiled]] = {}
        # Shared by the reader threads: a hit is one dict lookup, a miss changes the cache.
        self._misses = threading.Lock()

    def get(self, statement: Executable) -> _Compiled:
        hit = self._cache.get(id(statement))
        if hit is not None and hit[0] is statement:
            return hit[1]
        compiled = _compile(statement, self.dialect)
        with self._misses:
            if len(self._cache) >= _CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
            # The entry holds the statement, so its id cannot be reused while it is cached.
            self._cache[id(statement)] = (statement, compiled)
        return compiled


class DirectTx:
    """A ``kizuna.db.Tx`` over a ``sqlite3`` connection inside ``run``'s transaction."""

    __slots__ = ("_connection", "_statements")

    def __init__(self, connection: sqlite3.Connection, statements: Statements) -> None:
        self._connection = connection
        self._statements = statements

    def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Rows:
        compiled = self._statements.get(statement)
        given = parameters or {}
        arguments: list[Any] = []
        for name, built, required, process in compiled.binds:
            if name in given:
                value = given[name]
            elif required:
                raise TypeError(f"no value for the bind parameter {name!r}")
            else:
                value = built
            arguments.append(process(value) if process is not None else value)
        try:
            cursor = self._connection.execute(compiled.sql, arguments)
            raw = cursor.fetchall()
        except sqlite3.Error as exc:
            raise translated(exc, compiled.sql, arguments) from exc
        processors = compiled.results
        rows = [
            tuple(
                v if p is None or v is None else p(v) for v, p in zip(row, processors, strict=True)
            )
            for row in raw
        ]
        return Rows(rows, cursor.rowcount)


def translated(exc: sqlite3.Error, sql: str | None, arguments: Sequence[Any] | None) -> Exception:
    """The exception SQLAlchemy would have raised (OperationalError, IntegrityError, ...), so
    that callers see one family of store errors whichever path ran. Parameters are hidden:
    they may hold an email address or a user agent, and errors get logged."""
    return DBAPIError.instance(sql, arguments, exc, sqlite3.Error, hide_parameters=True)


def run(
    connection: sqlite3.Connection,
    statements: Statements,
    work: Callable[[DirectTx], T],
    *,
    write: bool = True,
) -> T:
    """``work`` in one transaction: committed when it returns, rolled back when it raises.
    A write transaction takes the write lock up front (``BEGIN IMMEDIATE``); a read one
    (``BEGIN``) sees one snapshot of the file and never waits for the writer (WAL)."""
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"
    try:
        connection.execute(begin)
    except sqlite3.Error as exc:
        raise translated(exc, begin, None) from exc
    try:
        result = work(DirectTx(connection, statements))
        connection.execute("COMMIT")
    except BaseException as exc:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise translated(exc, "COMMIT", None) from exc
        raise
    return result
