"""Users, as ``UserRecord``s."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, String, Table, bindparam, insert, select
from sqlalchemy import update as update_statement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

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
    """Every user (the command line's ``users list``); the admin API pages instead."""
    return [_record(row) for row in tx.execute(_ALL).all()]


# -- the admin's pages: users in email order, a page at a time --------------------------------
#
# Emails are stored normalised (``normalize_email``), and unique, so the email alone is the
# page key, and a case-insensitive prefix search is a range of it: [prefix, successor(prefix)).
# That holds in code-point order, which SQLite's default comparison gives (bytes of UTF-8);
# PostgreSQL compares in the database's locale unless the comparison says COLLATE "C", and an
# index in that collation answers it (``models.py``, migration 0005). No LIKE: nothing in the
# search is a pattern, so "%" and "_" are plain characters.


class _Bytewise(FunctionElement[str]):
    """``column`` compared in code-point order on every store."""

    type = String()
    name = "bytewise"
    inherit_cache = True


@compiles(_Bytewise)
def _bytewise_default(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_Bytewise, "postgresql")
def _bytewise_postgresql(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.clauses, **kw)} COLLATE "C"'


def _email() -> ColumnElement[str]:
    # A function, not a module-level constant: a SQL function counts as a statement of its own.
    return _Bytewise(_u.c.email)


def _page_where(*conditions: ColumnElement[bool], descending: bool = False) -> Select[Any]:
    order = _email().desc() if descending else _email()
    return select(*_u.columns).where(*conditions).order_by(order).limit(bindparam("b_limit"))


_PAGE_AFTER = _page_where(_email() > bindparam("b_after"))
_PAGE_FROM_BELOW = _page_where(_email() >= bindparam("b_from"), _email() < bindparam("b_below"))
_PAGE_AFTER_BELOW = _page_where(_email() > bindparam("b_after"), _email() < bindparam("b_below"))
_PAGE_BEFORE = _page_where(
    _email() < bindparam("b_before"), _email() >= bindparam("b_from"), descending=True
)


def successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, in code-point order
    (``None`` if there is none: the prefix is all U+10FFFF). Surrogates are skipped: neither
    store holds them."""
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if point == 0xD800:
            point = 0xE000
        if point <= 0x10FFFF:
            return "".join(chars) + chr(point)
    return None


def page(
    tx: Tx,
    *,
    limit: int,
    prefix: str = "",
    after: str | None = None,
    before: str | None = None,
) -> list[UserRecord]:
    """At most ``limit`` users whose (normalised) email starts with ``prefix``, in email order:
    the first ones, those after the email ``after``, or the last ones before ``before``
    (returned in email order too). Each is one range of one index, however deep the page."""
    prefix = normalize_email(prefix)
    if after is not None and before is not None:
        raise TypeError("after or before, not both")
    if before is not None:
        rows = tx.execute(
            _PAGE_BEFORE, {"b_before": before, "b_from": prefix, "b_limit": limit}
        ).all()
        return [_record(row) for row in reversed(rows)]
    below = successor(prefix) if prefix else None
    if prefix and below is None:
        return []
    if below is None:
        rows = tx.execute(_PAGE_AFTER, {"b_after": after or "", "b_limit": limit}).all()
    elif after is None:
        rows = tx.execute(
            _PAGE_FROM_BELOW, {"b_from": prefix, "b_below": below, "b_limit": limit}
        ).all()
    else:
        rows = tx.execute(
            _PAGE_AFTER_BELOW, {"b_after": after, "b_below": below, "b_limit": limit}
        ).all()
    return [_record(row) for row in rows]


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
