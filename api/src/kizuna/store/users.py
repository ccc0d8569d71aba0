from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DB

from kizuna.db import Tx, tx_of
from kizuna.models import User
from kizuna.store import changes

_u = cast(Table, User.__table__)


class EmailTaken(Exception):
    pass


def normalize_email(email: str) -> str:
    return email.strip().lower()


def get_by_email(db: DB, *, email: str) -> User | None:
    result = db.execute(select(User).where(User.email == normalize_email(email)))
    return result.scalar_one_or_none()


_FIELDS = tuple(column.key for column in _u.columns)
_BY_EMAIL = select(*_u.columns).where(_u.c.email == bindparam("b_email"))


def find_by_email(tx: Tx, *, email: str) -> User | None:
    """``get_by_email`` as one Core statement (a login's lookup): the user comes back as a
    detached ``User``, built from the row without a ``Session``."""
    row = tx.execute(_BY_EMAIL, {"b_email": normalize_email(email)}).first()
    return None if row is None else User(**dict(zip(_FIELDS, row, strict=True)))


def get(db: DB, *, user_id: str) -> User | None:
    return db.get(User, user_id)


def create(
    db: DB,
    *,
    email: str,
    password_hash: str,
    name: str = "",
    roles: Sequence[str] = (),
    now: datetime,
) -> User:
    user = User(
        id=str(uuid.uuid4()),
        email=normalize_email(email),
        name=name,
        password_hash=password_hash,
        roles=sorted(set(roles)),
        disabled=False,
        created_at=now,
        password_changed_at=now,
        updated_at=now,
    )
    db.add(user)
    try:
        db.flush()
    except IntegrityError as exc:
        raise EmailTaken(email) from exc
    return user


def list_all(db: DB) -> Sequence[User]:
    result = db.execute(select(User).order_by(User.created_at, User.email))
    return result.scalars().all()


def update(
    db: DB,
    *,
    user_id: str,
    now: datetime,
    roles: Sequence[str] | None = None,
    disabled: bool | None = None,
) -> User | None:
    """Change roles and/or the disabled flag; every process's session cache hears of it
    through the change feed. None if there is no such user."""
    user = db.get(User, user_id)
    if user is None:
        return None
    if roles is not None:
        user.roles = sorted(set(roles))
    if disabled is not None:
        user.disabled = disabled
    user.updated_at = now
    changes.add(tx_of(db), kind="user", keys=[user_id], now=now)
    return user
