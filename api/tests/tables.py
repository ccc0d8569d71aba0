"""The schema's tables, for tests that reach into the store where no store function fits, and
a way to read their rows by column name inside a unit of work."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Select, Table

from kizuna.db import Tx
from kizuna.models import RefreshToken, SecurityEvent, Session, ThrottleHit, User

users = cast(Table, User.__table__)
sessions = cast(Table, Session.__table__)
refresh_tokens = cast(Table, RefreshToken.__table__)
security_events = cast(Table, SecurityEvent.__table__)
throttle_hits = cast(Table, ThrottleHit.__table__)


def rows(tx: Tx, statement: Select[Any]) -> list[Any]:
    """The statement's rows, each with its columns as attributes."""
    names = [column.key for column in statement.selected_columns]
    return [
        SimpleNamespace(**dict(zip(names, row, strict=True))) for row in tx.execute(statement).all()
    ]
