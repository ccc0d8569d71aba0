"""The change feed: what per-process session caches (``kizuna.session_cache``) must drop.

Each revoked session and each changed user adds a row, numbered by the store. Readers follow
the feed by number ("everything after 1041"), so the only thing that matters is that numbers
become visible in order. They do: on SQLite one transaction writes at a time; on PostgreSQL a
writer takes the feed's lock (``store/locks.py``) before it takes a number and holds it until
it commits, so no number can appear after a larger one has been read. A wall-clock stamp could
not promise that: a transaction held up for a few seconds commits a stamp from the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select

from kizuna.db import Tx
from kizuna.models import Change
from kizuna.store.locks import SERIALIZE

_c = cast(Table, Change.__table__)
_FEED_LOCK = "kizuna.changes"

Kind = Literal["session", "user"]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    seq: int
    kind: str
    key: str


_ADD = insert(_c).values(kind=bindparam("b_kind"), key=bindparam("b_key"), at=bindparam("b_at"))


def add(tx: Tx, *, kind: Kind, keys: list[str], now: datetime) -> None:
    """Announce changes, in the caller's transaction (visible when it commits)."""
    if not keys:
        return
    tx.execute(SERIALIZE, {"b_lock": _FEED_LOCK})
    for key in keys:
        tx.execute(_ADD, {"b_kind": kind, "b_key": key, "b_at": now})


_LATEST = select(func.coalesce(func.max(_c.c.seq), 0))
_AFTER = (
    select(_c.c.seq, _c.c.kind, _c.c.key)
    .where(_c.c.seq > bindparam("b_after"))
    .order_by(_c.c.seq)
    .limit(bindparam("b_limit"))
)


def latest(tx: Tx) -> int:
    """The number of the newest entry (0 for none): where a new reader starts."""
    row = tx.execute(_LATEST).first()
    return int(row[0]) if row else 0


def after(tx: Tx, *, seq: int, limit: int = 10_000) -> list[FeedEntry]:
    """Entries numbered above ``seq``, oldest first, at most ``limit``."""
    rows = tx.execute(_AFTER, {"b_after": seq, "b_limit": limit}).all()
    return [FeedEntry(seq=int(r[0]), kind=str(r[1]), key=str(r[2])) for r in rows]


# -- the purge (kizuna.purge) -----------------------------------------------------------------
# The caller chooses ``before`` so that no reader can still need what goes (at least an
# access-token lifetime and a margin ago: ``revocation_feed.retain_seconds``). The newest entry
# always stays, so that ``latest`` never goes back.

_BEFORE = bindparam("b_before", type_=_c.c.at.type)
_newest = _c.alias("newest")
_OLD = (_c.c.at < _BEFORE, _c.c.seq < select(func.max(_newest.c.seq)).scalar_subquery())
_PURGE = delete(_c).where(
    _c.c.seq.in_(select(_c.c.seq).where(*_OLD).order_by(_c.c.at).limit(bindparam("b_limit")))
)
_PURGEABLE = select(func.count()).select_from(_c).where(*_OLD)


def purge(tx: Tx, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` entries written before ``before``; returns how many."""
    return tx.execute(_PURGE, {"b_before": before, "b_limit": limit}).rowcount


def purgeable(tx: Tx, *, before: datetime) -> int:
    row = tx.execute(_PURGEABLE, {"b_before": before}).first()
    return int(row[0]) if row else 0
