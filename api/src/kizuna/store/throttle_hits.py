"""Counted attempts per throttling bucket, as Core statements (see ``kizuna.throttle``)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, insert, select

from kizuna.db import Tx
from kizuna.models import ThrottleHit
from kizuna.store.locks import SERIALIZE

_h = cast(Table, ThrottleHit.__table__)

_IN_WINDOW = select(func.count(), func.min(_h.c.at)).where(
    _h.c.bucket == bindparam("b_bucket"), _h.c.at > bindparam("b_since", type_=_h.c.at.type)
)
_ADD = insert(_h).values(bucket=bindparam("b_bucket"), at=bindparam("b_at")).returning(_h.c.id)
_FORGET = delete(_h).where(
    _h.c.bucket == bindparam("b_bucket"), _h.c.at <= bindparam("b_since", type_=_h.c.at.type)
)
_REMOVE = delete(_h).where(_h.c.id == bindparam("b_id"))
_PURGE = delete(_h).where(_h.c.at <= bindparam("b_since", type_=_h.c.at.type))


def lock(tx: Tx, *, bucket: str) -> None:
    """Hold the bucket until commit (PostgreSQL): two processes cannot both count 9 of 10."""
    tx.execute(SERIALIZE, {"b_lock": "kizuna.throttle:" + bucket})


def in_window(tx: Tx, *, bucket: str, since: datetime) -> tuple[int, datetime | None]:
    """How many attempts the bucket holds after ``since``, and the oldest of them."""
    tx.execute(_FORGET, {"b_bucket": bucket, "b_since": since})
    row = tx.execute(_IN_WINDOW, {"b_bucket": bucket, "b_since": since}).first()
    if row is None:
        return 0, None
    return int(row[0]), row[1]


def add(tx: Tx, *, bucket: str, at: datetime) -> int:
    row = tx.execute(_ADD, {"b_bucket": bucket, "b_at": at}).first()
    assert row is not None
    return int(row[0])


def remove(tx: Tx, *, hit_ids: tuple[int, ...]) -> None:
    for hit_id in hit_ids:
        tx.execute(_REMOVE, {"b_id": hit_id})


def purge(tx: Tx, *, before: datetime) -> None:
    """Forget attempts of every bucket older than any window."""
    tx.execute(_PURGE, {"b_since": before})


# -- the purge (kizuna.purge): the same as ``purge``, in batches taken by an index -------------

_PURGE_SOME = delete(_h).where(
    _h.c.id.in_(
        select(_h.c.id)
        .where(_h.c.at <= bindparam("b_since", type_=_h.c.at.type))
        .order_by(_h.c.at)
        .limit(bindparam("b_limit"))
    )
)
_PURGEABLE = select(func.count()).where(_h.c.at <= bindparam("b_since", type_=_h.c.at.type))


def purge_some(tx: Tx, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` attempts counted at or before ``before``; returns how many."""
    return tx.execute(_PURGE_SOME, {"b_since": before, "b_limit": limit}).rowcount


def purgeable(tx: Tx, *, before: datetime) -> int:
    row = tx.execute(_PURGEABLE, {"b_since": before}).first()
    return int(row[0]) if row else 0
