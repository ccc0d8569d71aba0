"""The change feed (``store/changes.py``) as resource servers read it: each entry with what a
token verifier must do about it. A session entry names a revoked session; a user entry comes
with the user's state as it is now (disabled, roles), read in the same statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, select

from kizuna.db import Tx
from kizuna.models import Change, User

_c = cast(Table, Change.__table__)
_u = cast(Table, User.__table__)


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    seq: int
    kind: str  # "session" or "user"
    key: str  # the session id or the user id
    # For a user entry, the user now; None for a session entry. A user that no longer
    # exists reads as disabled with no roles: nothing of theirs may be accepted.
    disabled: bool | None
    roles: list[str] | None


def _entries() -> Select[Any]:
    # Each entry with its user's state as it is now (only user entries find one).
    return select(_c.c.seq, _c.c.kind, _c.c.key, _u.c.id, _u.c.disabled, _u.c.roles).select_from(
        _c.outerjoin(_u, and_(_c.c.kind == "user", _u.c.id == _c.c.key))
    )


_AFTER = (
    _entries().where(_c.c.seq > bindparam("b_after")).order_by(_c.c.seq).limit(bindparam("b_limit"))
)
# By time only to choose where a new reader starts (what may still matter to a token issued
# before it); the order is still the sequence's.
_SINCE = (
    _entries()
    .where(_c.c.at >= bindparam("b_since", type_=_c.c.at.type))
    .order_by(_c.c.seq)
    .limit(bindparam("b_limit"))
)


def _entry(row: Any) -> RevocationEntry:
    seq, kind, key, user_id, disabled, roles = row
    if kind != "user":
        return RevocationEntry(int(seq), str(kind), str(key), None, None)
    if user_id is None:
        return RevocationEntry(int(seq), "user", str(key), True, [])
    return RevocationEntry(int(seq), "user", str(key), bool(disabled), list(roles))


def after(tx: Tx, *, seq: int, limit: int) -> list[RevocationEntry]:
    """Entries numbered above ``seq``, oldest first, at most ``limit``."""
    return [_entry(r) for r in tx.execute(_AFTER, {"b_after": seq, "b_limit": limit}).all()]


def since(tx: Tx, *, at: datetime, limit: int) -> list[RevocationEntry]:
    """Entries written at ``at`` or later, in sequence order, at most ``limit``."""
    return [_entry(r) for r in tx.execute(_SINCE, {"b_since": at, "b_limit": limit}).all()]
