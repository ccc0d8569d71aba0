"""The security events log, as ``EventRecord``s: a user's events newest first, page by page,
and events recorded at most once a minute (a throttled burst is one event, not one per try).

Events are written by ``sessions.record_event`` (refresh-token reuse, password changes) and by
``record_throttled`` here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, tuple_

from kizuna.db import Tx
from kizuna.models import SecurityEvent
from kizuna.store import sessions as session_store
from kizuna.store import users as user_store
from kizuna.store.users import UserRecord

_e = cast(Table, SecurityEvent.__table__)

# One event per account (or per address, when no account is known) and kind in this long.
THROTTLED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    at: datetime
    kind: str
    user_id: str | None
    session_id: str | None
    ip: str
    user_agent: str
    detail: dict[str, Any]


def _record(row: Sequence[Any]) -> EventRecord:
    return EventRecord(
        id=int(row[0]),
        at=row[1],
        kind=row[2],
        user_id=row[3],
        session_id=row[4],
        ip=row[5],
        user_agent=row[6],
        detail=dict(row[7] or {}),
    )


_COLUMNS = (
    _e.c.id,
    _e.c.at,
    _e.c.kind,
    _e.c.user_id,
    _e.c.session_id,
    _e.c.ip,
    _e.c.user_agent,
    _e.c.detail,
)
_NEWEST = (_e.c.at.desc(), _e.c.id.desc())
# Keyset on (at, id), which the index (user_id, at, id) answers in order.
_FIRST = (
    select(*_COLUMNS)
    .where(_e.c.user_id == bindparam("b_user_id"))
    .order_by(*_NEWEST)
    .limit(bindparam("b_limit"))
)
_OLDER = (
    select(*_COLUMNS)
    .where(
        _e.c.user_id == bindparam("b_user_id"),
        tuple_(_e.c.at, _e.c.id) < tuple_(bindparam("b_at", type_=_e.c.at.type), bindparam("b_id")),
    )
    .order_by(*_NEWEST)
    .limit(bindparam("b_limit"))
)
_RECENT_FOR_USER = (
    select(_e.c.id)
    .where(
        _e.c.user_id == bindparam("b_user_id"),
        _e.c.at > bindparam("b_since", type_=_e.c.at.type),
        _e.c.kind == bindparam("b_kind"),
    )
    .limit(1)
)
_RECENT_FROM_ADDRESS = (
    select(_e.c.id)
    .where(
        _e.c.ip == bindparam("b_ip"),
        _e.c.at > bindparam("b_since", type_=_e.c.at.type),
        _e.c.kind == bindparam("b_kind"),
        _e.c.user_id.is_(None),
    )
    .limit(1)
)


def page_of_user(
    tx: Tx, *, user_id: str, limit: int, older_than: tuple[datetime, int] | None = None
) -> list[EventRecord]:
    """The user's events, newest first: at most ``limit``, those before ``older_than`` (the
    ``(at, id)`` of the last event of the previous page) when given."""
    if older_than is None:
        rows = tx.execute(_FIRST, {"b_user_id": user_id, "b_limit": limit}).all()
    else:
        at, event_id = older_than
        rows = tx.execute(
            _OLDER, {"b_user_id": user_id, "b_at": at, "b_id": event_id, "b_limit": limit}
        ).all()
    return [_record(row) for row in rows]


def _recent_throttle(
    tx: Tx, *, kind: str, email: str | None, ip: str, now: datetime
) -> tuple[UserRecord | None, bool]:
    user = None if email is None else user_store.get_by_email(tx, email=email)
    since = now - THROTTLED_EVERY
    if user is not None:
        recent = tx.execute(
            _RECENT_FOR_USER, {"b_user_id": user.id, "b_since": since, "b_kind": kind}
        ).first()
    else:
        recent = tx.execute(
            _RECENT_FROM_ADDRESS, {"b_ip": ip, "b_since": since, "b_kind": kind}
        ).first()
    return user, recent is not None


def throttled_recently(tx: Tx, *, kind: str, email: str | None, ip: str, now: datetime) -> bool:
    """Whether ``record_throttled`` would skip this one: a read, so that a refused burst costs
    the store no write once its event is on record."""
    return _recent_throttle(tx, kind=kind, email=email, ip=ip, now=now)[1]


def record_throttled(
    tx: Tx, *, kind: str, email: str | None, ip: str, user_agent: str, now: datetime
) -> bool:
    """Record that an attempt was refused by the throttle: against the account with this email
    if there is one, else against the address alone. Once per ``THROTTLED_EVERY`` for each,
    so a burst cannot grow the log by a row per try. True if recorded."""
    user, recent = _recent_throttle(tx, kind=kind, email=email, ip=ip, now=now)
    if recent:
        return False
    session_store.record_event(
        tx,
        kind=kind,
        now=now,
        user_id=None if user is None else user.id,
        session_id=None,
        ip=ip,
        user_agent=user_agent,
    )
    return True
