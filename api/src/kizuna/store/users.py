from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DB

from kizuna.models import User


class EmailTaken(Exception):
    pass


def normalize_email(email: str) -> str:
    return email.strip().lower()


def get_by_email(db: DB, *, email: str) -> User | None:
    result = db.execute(select(User).where(User.email == normalize_email(email)))
    return result.scalar_one_or_none()


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


def changed_since(db: DB, *, since: datetime) -> list[tuple[str, datetime]]:
    rows = db.execute(select(User.id, User.updated_at).where(User.updated_at >= since))
    return [(row[0], row[1]) for row in rows]
