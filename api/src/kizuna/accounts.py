"""Accounts and sessions: sign-up, login, password change, revocation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.orm import Session as DB

from kizuna.clientinfo import ClientInfo
from kizuna.clock import utcnow
from kizuna.db import Tx, tx_of
from kizuna.models import User
from kizuna.passwords import check_policy
from kizuna.services import Services
from kizuna.store import refresh_tokens as token_store
from kizuna.store import sessions as session_store
from kizuna.store import users as user_store
from kizuna.store.refresh_tokens import TokenRecord

log = structlog.get_logger("kizuna.accounts")


class InvalidCredentials(Exception):
    pass


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True)
class NewSession:
    user: User
    session_id: str
    device_id: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_expires_at: datetime


async def start_session(
    services: Services, *, user: User, device_id: str, client: ClientInfo
) -> NewSession:
    """A new session on this device; the user's previous session on it ends."""
    settings = services.settings
    now = utcnow()
    mac_kid = services.keyring.mac_key.kid
    roles = list(user.roles)

    def work(tx: Tx) -> tuple[list[str], TokenRecord]:
        previous = session_store.live_ids(tx, user_id=user.id, device_id=device_id)
        session_store.revoke(tx, session_ids=previous, reason="replaced", now=now)
        session_id, session_expires_at = session_store.create(
            tx,
            user_id=user.id,
            device_id=device_id,
            ip=client.ip,
            user_agent=client.user_agent,
            now=now,
            max_age=settings.session_max_age,
        )
        record = token_store.new_record(
            session_id=session_id,
            user_id=user.id,
            device_id=device_id,
            session_expires_at=session_expires_at,
            now=now,
            ttl=settings.refresh_token_ttl,
            key_id=mac_kid,
        )
        token_store.add(tx, record=record)
        return previous, record

    def minted(done: tuple[list[str], TokenRecord]) -> tuple[list[str], NewSession]:
        # After commit, off the loop where the store allows (see rotation._minted).
        previous, record = done
        access, access_exp = services.access.issue(sub=user.id, sid=record.session_id, roles=roles)
        return previous, NewSession(
            user=user,
            session_id=record.session_id,
            device_id=device_id,
            access_token=access,
            access_expires_at=access_exp,
            refresh_token=services.refresh.for_record(record),
            refresh_expires_at=record.expires_at,
        )

    previous, new = await services.db.write_core(work, then=minted)
    services.directory.forget(*previous)
    return new


async def authenticate(
    services: Services, *, email: str, password: str, client: ClientInfo
) -> User:
    """Same answer, and about the same time, for an unknown email, a wrong password and a
    disabled account; failures are throttled per account and per client address."""
    retry_after = await services.throttle.retry_after(email=email, ip=client.ip)
    if retry_after is not None:
        log.warning("login_throttled", ip=client.ip, retry_after=retry_after)
        raise Throttled(retry_after)
    user = await services.db.read_core(lambda tx: user_store.find_by_email(tx, email=email))
    ok = await services.hasher.verify(password, user.password_hash if user else None)
    if not ok or user is None or user.disabled:
        await services.throttle.record_failure(email=email, ip=client.ip)
        log.info(
            "login_failed",
            user_id=user.id if user else None,
            reason="disabled" if ok and user else "bad_credentials",
            ip=client.ip,
        )
        raise InvalidCredentials()
    return user


async def register(
    services: Services, *, email: str, password: str, name: str, roles: Sequence[str] = ()
) -> User:
    """Raises ``WeakPassword`` or ``EmailTaken``; the password is hashed off the loop."""
    check_policy(password, email=email)
    password_hash = await services.hasher.hash(password)
    now = utcnow()
    user = await services.db.write(
        lambda db: user_store.create(
            db, email=email, password_hash=password_hash, name=name, roles=roles, now=now
        )
    )
    log.info("user_registered", user_id=user.id)
    return user


async def change_password(
    services: Services,
    *,
    user_id: str,
    keep_session_id: str,
    current_password: str,
    new_password: str,
    client: ClientInfo,
) -> None:
    user = await services.db.read(lambda db: user_store.get(db, user_id=user_id))
    if user is None:
        raise InvalidCredentials()
    retry_after = await services.throttle.retry_after(email=user.email, ip=client.ip)
    if retry_after is not None:
        raise Throttled(retry_after)
    if not await services.hasher.verify(current_password, user.password_hash):
        await services.throttle.record_failure(email=user.email, ip=client.ip)
        log.info("password_change_failed", user_id=user_id, ip=client.ip)
        raise InvalidCredentials()
    check_policy(new_password, email=user.email)
    new_hash = await services.hasher.hash(new_password)
    now = utcnow()

    def work(db: DB) -> list[str]:
        fresh = user_store.get(db, user_id=user_id)
        if fresh is None:
            raise InvalidCredentials()
        fresh.password_hash = new_hash
        fresh.password_changed_at = now
        others = session_store.live_ids(tx_of(db), user_id=user_id, except_id=keep_session_id)
        return session_store.revoke(
            tx_of(db), session_ids=others, reason="password_changed", now=now
        )

    revoked = await services.db.write(work)
    services.directory.forget(*revoked)
    log.info("password_changed", user_id=user_id, sessions_revoked=len(revoked))


async def revoke_sessions(
    services: Services, *, session_ids: Sequence[str], reason: str
) -> list[str]:
    now = utcnow()
    revoked = await services.db.write(
        lambda db: session_store.revoke(
            tx_of(db), session_ids=list(session_ids), reason=reason, now=now
        )
    )
    services.directory.forget(*session_ids)
    if revoked:
        log.info("sessions_revoked", session_ids=revoked, reason=reason)
    return revoked


async def revoke_user(services: Services, *, user_id: str, reason: str) -> list[str]:
    now = utcnow()

    def work(db: DB) -> tuple[list[str], list[str]]:
        ids = session_store.live_ids(tx_of(db), user_id=user_id)
        return ids, session_store.revoke(tx_of(db), session_ids=ids, reason=reason, now=now)

    ids, revoked = await services.db.write(work)
    services.directory.forget(*ids)
    services.directory.forget_user(user_id)
    if revoked:
        log.info("sessions_revoked", user_id=user_id, count=len(revoked), reason=reason)
    return revoked
