"""The schema. Alembic migrations under ``migrations/`` create exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, hands back aware UTC, so SQLite and PostgreSQL behave alike."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UTCDateTime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Bumped by every change that session caches must notice (roles, disabled, name).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# The admin list pages and searches users by email in code-point order (store/users.py): SQLite
# compares bytes and its unique index serves; PostgreSQL needs an index in the "C" collation.
Index("ix_users_email_bytewise", User.email.collate("C")).ddl_if(dialect="postgresql")


class Session(Base):
    """A login on one device; the family of refresh tokens that descend from it."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # absolute lifetime
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_sessions_user_live", "user_id", "revoked_at"),
        Index("ix_sessions_device", "device_id"),
        Index("ix_sessions_revoked_at", "revoked_at"),
        Index("ix_sessions_user_created", "user_id", "created_at"),  # admin: a user's sessions
        # The purge's (kizuna.purge): sessions past their lifetime, sessions long idle.
        Index("ix_sessions_expires_at", "expires_at"),
        Index("ix_sessions_last_used_at", "last_used_at"),
    )


class RefreshToken(Base):
    """One refresh token of a session. Holds no token material: the token is a MAC over
    these fields with a key that lives outside the database."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # refresh_token_id
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(36))
    device_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_id: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_refresh_tokens_session", "session_id", "rotated_at"),
        # The purge's (kizuna.purge): records past their expiry, records of revoked sessions.
        Index("ix_refresh_tokens_expires_at", "expires_at"),
        Index("ix_refresh_tokens_revoked_at", "revoked_at"),
    )


class SecurityEvent(Base):
    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        # A user's events newest first (the admin's pages, keyed on (at, id)); and whether an
        # event was recorded lately for this account or this address (throttled, recorded once
        # a minute).
        Index("ix_security_events_user_at", "user_id", "at", "id"),
        Index("ix_security_events_ip_at", "ip", "at"),
        # The purge's (kizuna.purge): events past their retention.
        Index("ix_security_events_at", "at"),
    )


# SQLite gives an INTEGER PRIMARY KEY rowid semantics; BIGINT elsewhere.
_Serial = BigInteger().with_variant(Integer(), "sqlite")


class Change(Base):
    """The change feed: one row per revoked session or changed user, numbered by the store in
    commit order (see ``store/changes.py``). Session caches (and other services) follow it by
    number, never by wall-clock time."""

    __tablename__ = "changes"

    seq: Mapped[int] = mapped_column(_Serial, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "session" or "user"
    key: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The revocation feed's starting point: the entries of the last token lifetime.
        Index("ix_changes_at", "at"),
        {"sqlite_autoincrement": True},
    )


class ThrottleHit(Base):
    """One counted attempt in a throttling bucket (``kizuna.throttle``)."""

    __tablename__ = "throttle_hits"

    id: Mapped[int] = mapped_column(_Serial, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_throttle_hits_bucket_at", "bucket", "at"),
        # The purge's (kizuna.purge): attempts older than any window, whatever their bucket.
        Index("ix_throttle_hits_at", "at"),
    )


class ServiceCredential(Base):
    """A resource server's credential for the revocation feed (``GET /api/revocations``).
    Only the SHA-256 of the secret is kept: the secret is 256 random bits, so a plain hash
    cannot be brute-forced and can be looked up directly."""

    __tablename__ = "service_credentials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
