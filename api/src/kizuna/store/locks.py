"""Serialising writers that must not interleave, on every store.

On SQLite there is one writer at a time already (``BEGIN IMMEDIATE`` and the writer lock), so
this statement does nothing there. On PostgreSQL it takes a transaction-scoped advisory lock
named by a string, held until COMMIT or ROLLBACK: the next writer that asks for the same name
waits until then, so whatever it does comes strictly after what the first one committed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import BindParameter, ClauseElement


class Serialize(Executable, ClauseElement):
    """``tx.execute(SERIALIZE, {"b_lock": name})``: wait for, then hold, the lock ``name``."""

    inherit_cache = True

    def __init__(self, name: BindParameter[str]) -> None:
        self.name = name


@compiles(Serialize)
def _nothing(element: Serialize, compiler: Any, **kw: Any) -> str:
    # A statement that returns no rows and changes nothing.
    return "SELECT 1 WHERE 1 = 0"


@compiles(Serialize, "postgresql")
def _advisory_lock(element: Serialize, compiler: Any, **kw: Any) -> str:
    name = compiler.process(element.name, **kw)
    return f"SELECT pg_advisory_xact_lock(hashtextextended({name}, 0))"


SERIALIZE = Serialize(bindparam("b_lock", type_=None))
