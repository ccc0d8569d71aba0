"""Users, as ``UserRecord``s."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy import update as update_statement
from sqlalchemy.exc import IntegrityError

from kizuna.db import Tx
from kizuna.models import User
from kizuna.store import NotFound, changes

_u = cast(Table, User.__table__)


class EmailTaken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A row of ``users``: the same attributes as ``kizuna.models.User``, in column order."""

    id: str
    email: str
    name: str
    password_hash: str
    roles: list[str]
    disabled: bool
    created_at: datetime
    password_changed_at: datetime
    updated_at: datetime


assert tuple(f.name for f in fields(UserRecord)) == tuple(c.key for c in _u.columns)


def _record(row: Sequence[Any]) -> UserRecord:
    return UserRecord(*row)


def normalize_email(email: str) -> str:
    return email.strip().lower()


_BY_EMAIL = select(*_u.columns).where(_u.c.email == bindparam("b_email"))
_BY_ID = select(*_u.columns).where(_u.c.id == bindparam("b_user_id"))
_ALL = select(*_u.columns).order_by(_u.c.created_at, _u.c.email)
_INSERT = insert(_u).values(
    id=bindparam("b_id"),
    email=bindparam("b_email"),
    name=bindparam("b_name"),
    password_hash=bindparam("b_password_hash"),
    roles=bindparam("b_roles", type_=_u.c.roles.type),
    disabled=bindparam("b_disabled"),
    created_at=bindparam("b_now"),
    password_changed_at=bindparam("b_now"),
    updated_at=bindparam("b_now"),
)
_UPDATE = (
    update_statement(_u)
    .where(_u.c.id == bindparam("b_user_id"))
    .values(
        roles=bindparam("b_roles", type_=_u.c.roles.type),
        disabled=bindparam("b_disabled"),
        updated_at=bindparam("b_now"),
    )
)
_SET_PASSWORD = (
    update_statement(_u)
    .where(_u.c.id == bindparam("b_user_id"))
    .values(password_hash=bindparam("b_password_hash"), password_changed_at=bindparam("b_now"))
)


def get_by_email(tx: Tx, *, email: str) -> UserRecord | None:
    """The user with this email, compared normalised (a login's lookup: one statement)."""
    row = tx.execute(_BY_EMAIL, {"b_email": normalize_email(email)}).first()
    return None if row is None else _record(row)


def get(tx: Tx, *, user_id: str) -> UserRecord | None:
    row = tx.execute(_BY_ID, {"b_user_id": user_id}).first()
    return None if row is None else _record(row)


def create(
    tx: Tx,
    *,
    email: str,
    password_hash: str,
    name: str = "",
    roles: Sequence[str] = (),
    now: datetime,
) -> UserRecord:
    """Raises ``EmailTaken`` if a user has this email already."""
    user = UserRecord(
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
    try:
        tx.execute(
            _INSERT,
            {
                "b_id": user.id,
                "b_email": user.email,
                "b_name": user.name,
                "b_password_hash": user.password_hash,
                "b_roles": user.roles,
                "b_disabled": user.disabled,
                "b_now": now,
            },
        )
    except IntegrityError as exc:
        raise EmailTaken(email) from exc
    return user


def list_all(tx: Tx) -> list[UserRecord]:
    return [_record(row) for row in tx.execute(_ALL).all()]


def update(
    tx: Tx,
    *,
    user_id: str,
    now: datetime,
    roles: Sequence[str] | None = None,
    disabled: bool | None = None,
) -> UserRecord:
    """Change roles and/or the disabled flag; every process's session cache hears of it
    through the change feed. Raises ``NotFound`` if there is no such user."""
    user = get(tx, user_id=user_id)
    if user is None:
        raise NotFound(user_id)
    user = replace(
        user,
        roles=user.roles if roles is None else sorted(set(roles)),
        disabled=user.disabled if disabled is None else disabled,
        updated_at=now,
    )
    tx.execute(
        _UPDATE,
        {"b_user_id": user_id, "b_roles": user.roles, "b_disabled": user.disabled, "b_now": now},
    )
    changes.add(tx, kind="user", keys=[user_id], now=now)
    return user


def set_password(tx: Tx, *, user_id: str, password_hash: str, now: datetime) -> None:
    """Raises ``NotFound`` if there is no such user."""
    done = tx.execute(
        _SET_PASSWORD, {"b_user_id": user_id, "b_password_hash": password_hash, "b_now": now}
    )
    if done.rowcount != 1:
        raise NotFound(user_id)
