"""Sessions (logins on one device), as ``SessionRecord``s, and the security events log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from kizuna.clock import utc_seconds
from kizuna.db import Tx
from kizuna.models import RefreshToken, SecurityEvent, Session, User
from kizuna.store import changes
from kizuna.store.users import UserRecord

_s = cast(Table, Session.__table__)
_rt = cast(Table, RefreshToken.__table__)
_u = cast(Table, User.__table__)
_events = cast(Table, SecurityEvent.__table__)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A row of ``sessions``: the same attributes as ``kizuna.models.Session``, in column
    order."""

    id: str
    user_id: str
    device_id: str
    user_agent: str
    ip: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None


assert tuple(f.name for f in fields(SessionRecord)) == tuple(c.key for c in _s.columns)
_SESSION_WIDTH = len(_s.columns)


def _record(row: Sequence[Any]) -> SessionRecord:
    return SessionRecord(*row[:_SESSION_WIDTH])


_CREATE = insert(_s).values(
    id=bindparam("b_id"),
    user_id=bindparam("b_user_id"),
    device_id=bindparam("b_device_id"),
    ip=bindparam("b_ip"),
    user_agent=bindparam("b_user_agent"),
    created_at=bindparam("b_now"),
    last_used_at=bindparam("b_now"),
    expires_at=bindparam("b_expires_at"),
)


def create(
    tx: Tx,
    *,
    user_id: str,
    device_id: str,
    ip: str,
    user_agent: str,
    now: datetime,
    max_age: int,
) -> tuple[str, datetime]:
    """A new session; returns its id and the end of its absolute lifetime."""
    session_id = str(uuid.uuid4())
    expires_at = utc_seconds(now) + timedelta(seconds=max_age)
    tx.execute(
        _CREATE,
        {
            "b_id": session_id,
            "b_user_id": user_id,
            "b_device_id": device_id,
            "b_ip": ip,
            "b_user_agent": user_agent,
            "b_now": now,
            "b_expires_at": expires_at,
        },
    )
    return session_id, expires_at


_REVOKE_SESSION = (
    update(_s)
    .where(_s.c.id == bindparam("b_session_id"), _s.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("b_now"), revoke_reason=bindparam("b_reason"))
)
_REVOKE_TOKENS = (
    update(_rt)
    .where(_rt.c.session_id == bindparam("b_session_id"), _rt.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("b_now"), revoke_reason=bindparam("b_reason"))
)
_RECORD_EVENT = insert(_events).values(
    at=bindparam("b_at"),
    kind=bindparam("b_kind"),
    user_id=bindparam("b_user_id"),
    session_id=bindparam("b_session_id"),
    ip=bindparam("b_ip"),
    user_agent=bindparam("b_user_agent"),
    detail=bindparam("b_detail", type_=_events.c.detail.type),
)


def revoke(tx: Tx, *, session_ids: Sequence[str], reason: str, now: datetime) -> list[str]:
    """Revoke sessions and every token of theirs; returns the ids that were still live.
    One session at a time, with statements built once: the lists are a user's sessions, and
    rotation (a hot path) revokes one."""
    revoked = []
    for session_id in dict.fromkeys(session_ids):
        values = {"b_session_id": session_id, "b_now": now, "b_reason": reason}
        if tx.execute(_REVOKE_SESSION, values).rowcount == 1:
            revoked.append(session_id)
        tx.execute(_REVOKE_TOKENS, values)
    changes.add(tx, kind="session", keys=revoked, now=now)
    return revoked


_LIVE = select(_s.c.id).where(_s.c.user_id == bindparam("b_user_id"), _s.c.revoked_at.is_(None))
_LIVE_ON_DEVICE = _LIVE.where(_s.c.device_id == bindparam("b_device_id"))
_LIVE_EXCEPT = _LIVE.where(_s.c.id != bindparam("b_except_id"))


def live_ids(
    tx: Tx,
    *,
    user_id: str,
    device_id: str | None = None,
    except_id: str | None = None,
) -> list[str]:
    """The user's sessions not revoked: all, those on one device, or all but one."""
    if device_id is not None and except_id is not None:
        raise TypeError("device_id or except_id, not both")
    params = {"b_user_id": user_id, "b_device_id": device_id, "b_except_id": except_id}
    if device_id is not None:
        rows = tx.execute(_LIVE_ON_DEVICE, params).all()
    elif except_id is not None:
        rows = tx.execute(_LIVE_EXCEPT, params).all()
    else:
        rows = tx.execute(_LIVE, params).all()
    return [str(row[0]) for row in rows]


_NOW = bindparam("b_now", type_=_s.c.expires_at.type)
_LIST_LIVE = (
    select(*_s.columns)
    .join(
        _rt,
        and_(
            _rt.c.session_id == _s.c.id,
            _rt.c.rotated_at.is_(None),
            _rt.c.revoked_at.is_(None),
            _rt.c.expires_at > _NOW,
        ),
    )
    .where(
        _s.c.user_id == bindparam("b_user_id"),
        _s.c.revoked_at.is_(None),
        _s.c.expires_at > _NOW,
    )
    .order_by(_s.c.last_used_at.desc())
)


def list_live(tx: Tx, *, user_id: str, now: datetime) -> list[SessionRecord]:
    """Sessions that can still be used: not revoked, within their absolute lifetime, and with
    a current refresh token that has not run out (idle expiry). Most recently used first."""
    rows = tx.execute(_LIST_LIVE, {"b_user_id": user_id, "b_now": now}).all()
    # A session has one current token; should it ever have two, it is listed once.
    seen: dict[str, SessionRecord] = {}
    for row in rows:
        seen.setdefault(row[0], _record(row))
    return list(seen.values())


_GET = select(*_s.columns).where(_s.c.id == bindparam("b_session_id"))
_GET_WITH_USER = (
    select(*_s.columns, *_u.columns)
    .select_from(_s.join(_u, _u.c.id == _s.c.user_id))
    .where(_s.c.id == bindparam("b_session_id"))
)


def get(tx: Tx, *, session_id: str) -> SessionRecord | None:
    row = tx.execute(_GET, {"b_session_id": session_id}).first()
    return None if row is None else _record(row)


def get_with_user(tx: Tx, *, session_id: str) -> tuple[SessionRecord, UserRecord] | None:
    row = tx.execute(_GET_WITH_USER, {"b_session_id": session_id}).first()
    if row is None:
        return None
    return _record(row), UserRecord(*row[_SESSION_WIDTH:])


def record_event(
    tx: Tx,
    *,
    kind: str,
    now: datetime,
    user_id: str | None,
    session_id: str | None,
    ip: str = "",
    user_agent: str = "",
    detail: dict[str, str] | None = None,
) -> None:
    tx.execute(
        _RECORD_EVENT,
        {
            "b_at": now,
            "b_kind": kind,
            "b_user_id": user_id,
            "b_session_id": session_id,
            "b_ip": ip,
            "b_user_agent": user_agent,
            "b_detail": detail or {},
        },
    )


@dataclass(frozen=True, slots=True)
class SessionOfUser:
    """A session as an admin sees it: with the end of its current refresh token (``None`` when
    it has none: ended, or never rotated past a revocation)."""

    session: SessionRecord
    token_expires_at: datetime | None


_OF_USER = (
    select(*_s.columns, _rt.c.expires_at)
    .select_from(
        _s.outerjoin(
            _rt,
            and_(
                _rt.c.session_id == _s.c.id,
                _rt.c.rotated_at.is_(None),
                _rt.c.revoked_at.is_(None),
            ),
        )
    )
    .where(_s.c.user_id == bindparam("b_user_id"))
    .order_by(_s.c.created_at.desc())
    .limit(bindparam("b_limit"))
)


def of_user(tx: Tx, *, user_id: str, limit: int) -> list[SessionOfUser]:
    """The user's sessions, live or not, newest first, at most ``limit`` (the admin's view;
    index ``ix_sessions_user_created``)."""
    seen: dict[str, SessionOfUser] = {}
    for row in tx.execute(_OF_USER, {"b_user_id": user_id, "b_limit": limit}).all():
        seen.setdefault(row[0], SessionOfUser(_record(row), row[_SESSION_WIDTH]))
    return list(seen.values())


# -- the purge (kizuna.purge) -----------------------------------------------------------------
# A session goes once it has ended (revoked, or past its absolute lifetime) before ``before``,
# or once none of its refresh-token records would survive the same purge: then no token of it
# can be presented any more (idle expiry). Its remaining records go with it (ON DELETE
# CASCADE); the records' own purge runs first, so there are few left. Each batch takes the
# oldest rows by an index.

_BEFORE = bindparam("b_before", type_=_s.c.expires_at.type)
_IDLE_BEFORE = bindparam("b_idle_before", type_=_s.c.last_used_at.type)
_LIMIT = bindparam("b_limit", type_=Integer())
# A record of the session that the records' purge keeps (refresh_tokens.purge_*).
_KEEPS_A_TOKEN = exists().where(
    _rt.c.session_id == _s.c.id,
    _rt.c.expires_at >= _BEFORE,
    or_(_rt.c.revoked_at.is_(None), _rt.c.revoked_at >= _BEFORE),
)
_PURGE_REVOKED = delete(_s).where(
    _s.c.id.in_(
        select(_s.c.id).where(_s.c.revoked_at < _BEFORE).order_by(_s.c.revoked_at).limit(_LIMIT)
    )
)
_PURGE_EXPIRED = delete(_s).where(
    _s.c.id.in_(
        select(_s.c.id).where(_s.c.expires_at < _BEFORE).order_by(_s.c.expires_at).limit(_LIMIT)
    )
)
# ``b_idle_before`` only narrows the scan to sessions that can have no token left (see
# ``purge_idle``); what decides is that none is kept.
_PURGE_IDLE = delete(_s).where(
    _s.c.id.in_(
        select(_s.c.id)
        .where(_s.c.last_used_at < _IDLE_BEFORE, ~_KEEPS_A_TOKEN)
        .order_by(_s.c.last_used_at)
        .limit(_LIMIT)
    )
)
_PURGEABLE = (
    select(func.count())
    .select_from(_s)
    .where(
        or_(
            _s.c.revoked_at < _BEFORE,
            _s.c.expires_at < _BEFORE,
            and_(_s.c.last_used_at < _IDLE_BEFORE, ~_KEEPS_A_TOKEN),
        )
    )
)
_EVENTS_BEFORE = bindparam("b_before", type_=_events.c.at.type)
_PURGE_EVENTS = delete(_events).where(
    _events.c.id.in_(
        select(_events.c.id)
        .where(_events.c.at < _EVENTS_BEFORE)
        .order_by(_events.c.at)
        .limit(_LIMIT)
    )
)
_PURGEABLE_EVENTS = select(func.count()).where(_events.c.at < _EVENTS_BEFORE)


def purge_revoked(tx: Tx, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` sessions revoked before ``before``; returns how many."""
    return tx.execute(_PURGE_REVOKED, {"b_before": before, "b_limit": limit}).rowcount


def purge_expired(tx: Tx, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` sessions whose absolute lifetime ended before ``before``."""
    return tx.execute(_PURGE_EXPIRED, {"b_before": before, "b_limit": limit}).rowcount


def purge_idle(tx: Tx, *, before: datetime, idle_before: datetime, limit: int) -> int:
    """Delete at most ``limit`` sessions none of whose records the records' purge keeps.
    ``idle_before``: a session last used after it may still hold one (its newest token
    expires at most the refresh-token lifetime after its last use, plus a minute, see
    ``rotation._TOUCH_EVERY``); giving it keeps each batch from reading through them."""
    params = {"b_before": before, "b_idle_before": idle_before, "b_limit": limit}
    return tx.execute(_PURGE_IDLE, params).rowcount


def purgeable(tx: Tx, *, before: datetime, idle_before: datetime) -> int:
    """How many sessions the three purges above would delete, all batches together."""
    row = tx.execute(_PURGEABLE, {"b_before": before, "b_idle_before": idle_before}).first()
    return int(row[0]) if row else 0


def purge_events(tx: Tx, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` security events recorded before ``before``."""
    return tx.execute(_PURGE_EVENTS, {"b_before": before, "b_limit": limit}).rowcount


def purgeable_events(tx: Tx, *, before: datetime) -> int:
    row = tx.execute(_PURGEABLE_EVENTS, {"b_before": before}).first()
    return int(row[0]) if row else 0
