"""Service credentials (resource servers reading the revocation feed), as
``ServiceCredentialRecord``s. The store holds the SHA-256 of each secret, never the secret."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from kizuna.db import Tx
from kizuna.models import ServiceCredential
from kizuna.store import NotFound

_sc = cast(Table, ServiceCredential.__table__)


class NameTaken(Exception):
    """A credential of that name exists (live or revoked: names are never reused, so a name
    in a log line always means one credential)."""


@dataclass(frozen=True, slots=True)
class ServiceCredentialRecord:
    """A row of ``service_credentials``, in column order."""

    id: str
    name: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None


assert tuple(f.name for f in fields(ServiceCredentialRecord)) == tuple(c.key for c in _sc.columns)


def _record(row: Sequence[Any]) -> ServiceCredentialRecord:
    return ServiceCredentialRecord(*row)


_INSERT = insert(_sc).values(
    id=bindparam("b_id"),
    name=bindparam("b_name"),
    secret_hash=bindparam("b_secret_hash"),
    created_at=bindparam("b_now"),
)
_ALL = select(*_sc.columns).order_by(_sc.c.created_at, _sc.c.name)
_BY_NAME = select(*_sc.columns).where(_sc.c.name == bindparam("b_name"))
# Looked up by the hash itself: comparing a hash of a 256-bit secret leaks nothing useful
# through timing, so no constant-time comparison is needed.
_LIVE_BY_HASH = select(*_sc.columns).where(
    _sc.c.secret_hash == bindparam("b_secret_hash"), _sc.c.revoked_at.is_(None)
)
_REVOKE = (
    update(_sc)
    .where(_sc.c.name == bindparam("b_name"), _sc.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("b_now"))
)


def create(tx: Tx, *, name: str, secret_hash: str, now: datetime) -> ServiceCredentialRecord:
    """Raises ``NameTaken`` if a credential has this name already."""
    record = ServiceCredentialRecord(
        id=str(uuid.uuid4()), name=name, secret_hash=secret_hash, created_at=now, revoked_at=None
    )
    try:
        tx.execute(
            _INSERT,
            {"b_id": record.id, "b_name": name, "b_secret_hash": secret_hash, "b_now": now},
        )
    except IntegrityError as exc:
        raise NameTaken(name) from exc
    return record


def list_all(tx: Tx) -> list[ServiceCredentialRecord]:
    return [_record(row) for row in tx.execute(_ALL).all()]


def live_by_hash(tx: Tx, *, secret_hash: str) -> ServiceCredentialRecord | None:
    """The credential whose secret hashes to ``secret_hash``, unless it is revoked."""
    row = tx.execute(_LIVE_BY_HASH, {"b_secret_hash": secret_hash}).first()
    return None if row is None else _record(row)


def revoke(tx: Tx, *, name: str, now: datetime) -> bool:
    """True if it was live until now, False if it was revoked already. Raises ``NotFound``
    if there is no credential of that name."""
    if tx.execute(_REVOKE, {"b_name": name, "b_now": now}).rowcount == 1:
        return True
    if tx.execute(_BY_NAME, {"b_name": name}).first() is None:
        raise NotFound(name)
    return False
