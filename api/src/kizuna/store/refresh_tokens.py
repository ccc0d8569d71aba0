"""The rotation hot path in SQLAlchemy Core: statements built once, run in a unit of work
(``kizuna.db.Tx``), rows instead of ORM objects. Measured: the ORM spent ~1 ms per rotation
constructing statements and objects, more than SQLite spent on the work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from kizuna.clock import utc_seconds
from kizuna.db import Tx
from kizuna.models import RefreshToken, Session, User, UTCDateTime

_rt = cast(Table, RefreshToken.__table__)
_s = cast(Table, Session.__table__)
_u = cast(Table, User.__table__)

_TOKEN_COLUMNS = (
    _rt.c.id,
    _rt.c.session_id,
    _rt.c.user_id,
    _rt.c.device_id,
    _rt.c.issued_at,
    _rt.c.expires_at,
    _rt.c.rotated_at,
    _rt.c.revoked_at,
    _rt.c.key_id,
)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    session_id: str
    user_id: str
    device_id: str
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    key_id: str


@dataclass(frozen=True, slots=True)
class TokenContext:
    """A refresh-token record with what rotation needs of its session and user, and the
    store's clock when it was read (``None``: the store has no clock of its own, see
    ``StoreNow``)."""

    token: TokenRecord
    session_revoked: bool
    session_expires_at: datetime
    session_last_used_at: datetime
    session_ip: str
    session_user_agent: str
    user_disabled: bool
    user_roles: list[str]
    store_now: datetime | None


class StoreNow(FunctionElement[datetime]):
    """The store's own clock, read in a statement rotation runs anyway (no extra round trip).
    On PostgreSQL, the database server's time: every replica judges rotation rule 4's window
    on this one clock, whatever its host's clock says. On SQLite, NULL: the store is a file on
    this host, whose clock the caller reads instead (one machine, one clock)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "store_now"


@compiles(StoreNow)
def _no_clock(element: StoreNow, compiler: Any, **kw: Any) -> str:
    return "NULL"


@compiles(StoreNow, "postgresql")
def _server_clock(element: StoreNow, compiler: Any, **kw: Any) -> str:
    # When the statement reached the server (not the transaction's start, nor after a wait for
    # the session's lock), as naive UTC like every column.
    return "(statement_timestamp() AT TIME ZONE 'UTC')"


def new_record(
    *,
    session_id: str,
    user_id: str,
    device_id: str,
    session_expires_at: datetime,
    now: datetime,
    ttl: int,
    key_id: str,
) -> TokenRecord:
    """A session's next current token. Rotation rule 6: it never outlives the session."""
    issued = utc_seconds(now)
    return TokenRecord(
        id=str(uuid.uuid4()),
        session_id=session_id,
        user_id=user_id,
        device_id=device_id,
        issued_at=issued,
        expires_at=min(issued + timedelta(seconds=ttl), session_expires_at),
        rotated_at=None,
        revoked_at=None,
        key_id=key_id,
    )


def _record(row: Any) -> TokenRecord:
    return TokenRecord(*row[: len(_TOKEN_COLUMNS)])


_LOOKUP = (
    select(
        *_TOKEN_COLUMNS,
        _s.c.revoked_at,
        _s.c.expires_at,
        _s.c.last_used_at,
        _s.c.ip,
        _s.c.user_agent,
        _u.c.disabled,
        _u.c.roles,
        StoreNow(),
    )
    .select_from(_rt.join(_s, _s.c.id == _rt.c.session_id).join(_u, _u.c.id == _s.c.user_id))
    .where(_rt.c.id == bindparam("b_token_id"))
    # PostgreSQL: the session's row first, as a revocation takes it (sessions, then tokens).
    # Taken in the opposite order (the token by the rotating UPDATE, the session later), a
    # reuse racing a rotation of the same session deadlocked, one of them answered 503
    # (measured: 3 in 360 refreshes over two replicas). SQLite has one writer; nothing here.
    .with_for_update(of=_s, key_share=True)
)

_MARK_ROTATED = (
    update(_rt)
    .where(
        _rt.c.id == bindparam("b_token_id"),
        _rt.c.rotated_at.is_(None),
        _rt.c.revoked_at.is_(None),
    )
    .values(rotated_at=bindparam("b_now"), replaced_by=bindparam("b_successor"))
)

_INSERT = insert(_rt).values(
    id=bindparam("b_id"),
    session_id=bindparam("b_session_id"),
    user_id=bindparam("b_user_id"),
    device_id=bindparam("b_device_id"),
    issued_at=bindparam("b_issued_at"),
    expires_at=bindparam("b_expires_at"),
    key_id=bindparam("b_key_id"),
)

_CURRENT = (
    select(*_TOKEN_COLUMNS)
    .where(
        _rt.c.session_id == bindparam("b_session_id"),
        _rt.c.rotated_at.is_(None),
        _rt.c.revoked_at.is_(None),
    )
    .order_by(_rt.c.issued_at.desc())
    .limit(1)
)

_TOUCH_SESSION = (
    update(_s)
    .where(_s.c.id == bindparam("b_session_id"))
    .values(
        last_used_at=bindparam("b_now"),
        ip=bindparam("b_ip"),
        user_agent=bindparam("b_user_agent"),
    )
)


def lookup(tx: Tx, *, token_id: str) -> TokenContext | None:
    row = tx.execute(_LOOKUP, {"b_token_id": token_id}).first()
    if row is None:
        return None
    n = len(_TOKEN_COLUMNS)
    return TokenContext(
        token=_record(row),
        session_revoked=row[n] is not None,
        session_expires_at=row[n + 1],
        session_last_used_at=row[n + 2],
        session_ip=row[n + 3],
        session_user_agent=row[n + 4],
        user_disabled=bool(row[n + 5]),
        user_roles=list(row[n + 6]),
        store_now=row[n + 7],
    )


def mark_rotated(tx: Tx, *, token_id: str, successor_id: str, now: datetime) -> bool:
    """Single use, atomically: True for exactly one caller per token."""
    result = tx.execute(
        _MARK_ROTATED, {"b_token_id": token_id, "b_now": now, "b_successor": successor_id}
    )
    return result.rowcount == 1


def add(tx: Tx, *, record: TokenRecord) -> None:
    tx.execute(
        _INSERT,
        {
            "b_id": record.id,
            "b_session_id": record.session_id,
            "b_user_id": record.user_id,
            "b_device_id": record.device_id,
            "b_issued_at": record.issued_at,
            "b_expires_at": record.expires_at,
            "b_key_id": record.key_id,
        },
    )


def current(tx: Tx, *, session_id: str) -> TokenRecord | None:
    row = tx.execute(_CURRENT, {"b_session_id": session_id}).first()
    return None if row is None else _record(row)


def refetch(tx: Tx, *, token_id: str) -> TokenRecord | None:
    found = lookup(tx, token_id=token_id)
    return None if found is None else found.token


def touch_session(tx: Tx, *, session_id: str, now: datetime, ip: str, user_agent: str) -> None:
    tx.execute(
        _TOUCH_SESSION,
        {"b_session_id": session_id, "b_now": now, "b_ip": ip, "b_user_agent": user_agent},
    )


# -- the purge (kizuna.purge) -----------------------------------------------------------------
# A record serves reuse detection (rotation rules 4 and 5) only while its token can still be
# presented: past its ``expires_at`` the token is refused on its own signed expiry (rule 1)
# before the store is asked. A session's records are all revoked with it, at the same moment,
# and go with it. Each batch takes the oldest rows by an index, so it costs the same however
# many rows the table holds.

_BEFORE = bindparam("b_before", type_=_rt.c.expires_at.type)
_LIMIT = bindparam("b_limit", type_=Integer())
_PURGE_EXPIRED = delete(_rt).where(
    _rt.c.id.in_(
        select(_rt.c.id).where(_rt.c.expires_at < _BEFORE).order_by(_rt.c.expires_at).limit(_LIMIT)
    )
)
_PURGE_REVOKED = delete(_rt).where(
    _rt.c.id.in_(
        select(_rt.c.id).where(_rt.c.revoked_at < _BEFORE).order_by(_rt.c.revoked_at).limit(_LIMIT)
    )
)
_PURGEABLE = (
    select(func.count())
    .select_from(_rt)
    .where(or_(_rt.c.expires_at < _BEFORE, _rt.c.revoked_at < _BEFORE))
)


def purge_expired(tx: Tx, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` records that expired before ``before``; returns how many."""
    return tx.execute(_PURGE_EXPIRED, {"b_before": before, "b_limit": limit}).rowcount


def purge_revoked(tx: Tx, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` records revoked before ``before``; returns how many."""
    return tx.execute(_PURGE_REVOKED, {"b_before": before, "b_limit": limit}).rowcount


def purgeable(tx: Tx, *, before: datetime) -> int:
    """How many records the two purges above would delete, all batches together."""
    row = tx.execute(_PURGEABLE, {"b_before": before}).first()
    return int(row[0]) if row else 0
