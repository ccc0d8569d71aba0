"""Accounts and sessions: sign-up, login, password change, revocation."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from kizuna.clientinfo import ClientInfo
from kizuna.clock import utcnow
from kizuna.db import Tx
from kizuna.password_hasher import HashingBusy
from kizuna.password_policy import WeakPassword, check_policy
from kizuna.services import Services
from kizuna.store import NotFound
from kizuna.store import refresh_tokens as token_store
from kizuna.store import security_events as event_store
from kizuna.store import sessions as session_store
from kizuna.store import users as user_store
from kizuna.store.refresh_tokens import TokenRecord
from kizuna.store.users import UserRecord
from kizuna.throttle import Attempt, Throttle, Throttled

log = structlog.get_logger("kizuna.accounts")


class InvalidCredentials(Exception):
    pass


@dataclass(frozen=True)
class NewSession:
    user: UserRecord
    session_id: str
    device_id: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_expires_at: datetime


async def start_session(
    services: Services,
    *,
    user: UserRecord,
    device_id: str,
    client: ClientInfo,
    attempt: Attempt | None = None,
) -> NewSession:
    """A new session on this device; the user's previous session on it ends. ``attempt``,
    the password check that led here, is handed back in the same transaction."""
    settings = services.settings
    now = utcnow()
    mac_kid = services.keyring.mac_key.kid
    roles = list(user.roles)

    def work(tx: Tx) -> tuple[list[str], TokenRecord]:
        if attempt is not None:
            Throttle.refund_in(tx, attempt)
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
        access, access_exp = services.access_tokens.issue(
            sub=user.id, sid=record.session_id, roles=roles
        )
        return previous, NewSession(
            user=user,
            session_id=record.session_id,
            device_id=device_id,
            access_token=access,
            access_expires_at=access_exp,
            refresh_token=services.refresh_tokens.for_record(record),
            refresh_expires_at=record.expires_at,
        )

    previous, new = await services.db.write(work, then=minted)
    services.session_cache.forget(*previous)
    return new


async def _record_throttled(
    services: Services, *, kind: str, email: str | None, client: ClientInfo
) -> None:
    """The account's (or, unknown, the address's) security event for a refused attempt, once a
    minute each (``store/security_events.py``). Best effort: the refusal stands whether or not
    the store can record it, and a burst costs one read per try, not a write."""
    now, ip, agent = utcnow(), client.ip, client.user_agent

    def recently(tx: Tx) -> bool:
        return event_store.throttled_recently(tx, kind=kind, email=email, ip=ip, now=now)

    def record(tx: Tx) -> bool:
        return event_store.record_throttled(
            tx, kind=kind, email=email, ip=ip, user_agent=agent, now=now
        )

    try:
        if not await services.db.read(recently):
            await services.db.write(record)
    except Exception as exc:
        log.warning("security_event_not_recorded", kind=kind, error=type(exc).__name__)


async def authenticate(
    services: Services, *, email: str, password: str, client: ClientInfo
) -> tuple[UserRecord, Attempt]:
    """Same answer, and about the same time, for an unknown email, a wrong password and a
    disabled account. The attempt is counted before the password is checked (see
    ``kizuna.throttle``); a successful login hands it back in ``start_session``."""
    try:
        attempt = await services.throttle.password_attempt(email=email, ip=client.ip)
    except Throttled as exc:
        log.warning("login_throttled", security=True, ip=client.ip, retry_after=exc.retry_after)
        await _record_throttled(services, kind="login_throttled", email=email, client=client)
        raise
    try:
        user = await services.db.read(lambda tx: user_store.get_by_email(tx, email=email))
        ok = await services.hasher.verify(password, user.password_hash if user else None)
    except Exception:
        # Busy, or the store failed: the password was never checked, so it was no attempt.
        with contextlib.suppress(Exception):
            await services.throttle.refund(attempt)
        raise
    if not ok or user is None or user.disabled:
        log.info(
            "login_failed",
            user_id=user.id if user else None,
            reason="disabled" if ok and user else "bad_credentials",
            ip=client.ip,
        )
        raise InvalidCredentials()
    return user, attempt


async def register(
    services: Services, *, email: str, password: str, name: str, roles: Sequence[str] = ()
) -> UserRecord:
    """Raises ``WeakPassword`` or ``EmailTaken``; the password is hashed off the loop."""
    check_policy(password, email=email)
    password_hash = await services.hasher.hash(password)
    now = utcnow()
    user = await services.db.write(
        lambda tx: user_store.create(
            tx, email=email, password_hash=password_hash, name=name, roles=roles, now=now
        )
    )
    log.info("user_registered", user_id=user.id)
    return user


async def sign_up(
    services: Services, *, email: str, password: str, name: str, client: ClientInfo
) -> UserRecord:
    """``register`` for a visitor: counted per client address first (each one costs a hash
    and says whether the address has an account); raises ``Throttled`` too."""
    try:
        await services.throttle.attempt((services.throttle.signup_per_ip, client.ip))
    except Throttled as exc:
        log.warning("signup_throttled", security=True, ip=client.ip, retry_after=exc.retry_after)
        await _record_throttled(services, kind="signup_throttled", email=None, client=client)
        raise
    return await register(services, email=email, password=password, name=name)


async def change_password(
    services: Services,
    *,
    user_id: str,
    keep_session_id: str,
    current_password: str,
    new_password: str,
    client: ClientInfo,
) -> None:
    user = await services.db.read(lambda tx: user_store.get(tx, user_id=user_id))
    if user is None:
        raise InvalidCredentials()
    attempt = await services.throttle.password_attempt(email=user.email, ip=client.ip)
    try:
        ok = await services.hasher.verify(current_password, user.password_hash)
    except Exception:
        with contextlib.suppress(Exception):
            await services.throttle.refund(attempt)
        raise
    if not ok:
        log.info("password_change_failed", user_id=user_id, ip=client.ip)
        raise InvalidCredentials()
    try:
        check_policy(new_password, email=user.email)
        new_hash = await services.hasher.hash(new_password)
    except (WeakPassword, HashingBusy):
        await services.throttle.refund(attempt)  # the current password was right
        raise
    now = utcnow()

    def work(tx: Tx) -> list[str]:
        Throttle.refund_in(tx, attempt)
        try:
            user_store.set_password(tx, user_id=user_id, password_hash=new_hash, now=now)
        except NotFound:
            raise InvalidCredentials() from None
        session_store.record_event(
            tx,
            kind="password_changed",
            now=now,
            user_id=user_id,
            session_id=keep_session_id,
            ip=client.ip,
            user_agent=client.user_agent,
        )
        others = session_store.live_ids(tx, user_id=user_id, except_id=keep_session_id)
        return session_store.revoke(tx, session_ids=others, reason="password_changed", now=now)

    revoked = await services.db.write(work)
    services.session_cache.forget(*revoked)
    log.info("password_changed", user_id=user_id, sessions_revoked=len(revoked))


async def revoke_sessions(
    services: Services, *, session_ids: Sequence[str], reason: str
) -> list[str]:
    now = utcnow()
    revoked = await services.db.write(
        lambda tx: session_store.revoke(tx, session_ids=list(session_ids), reason=reason, now=now)
    )
    services.session_cache.forget(*session_ids)
    if revoked:
        log.info("sessions_revoked", session_ids=revoked, reason=reason)
    return revoked


async def revoke_user(services: Services, *, user_id: str, reason: str) -> list[str]:
    now = utcnow()

    def work(tx: Tx) -> tuple[list[str], list[str]]:
        ids = session_store.live_ids(tx, user_id=user_id)
        return ids, session_store.revoke(tx, session_ids=ids, reason=reason, now=now)

    ids, revoked = await services.db.write(work)
    services.session_cache.forget(*ids)
    services.session_cache.forget_user(user_id)
    if revoked:
        log.info("sessions_revoked", user_id=user_id, count=len(revoked), reason=reason)
    return revoked
