"""Refresh-token rotation, exactly as docs/protocol.md §6.

1. Bad signature / type / shape → ``refresh_token_invalid`` and expired → ``refresh_token_expired``,
   both decided before the store is touched.
2. Session revoked → ``refresh_token_revoked``; past its absolute lifetime → ``session_expired``.
3. The session's current token → marked rotated and replaced by a successor, atomically: the
   conditional UPDATE lets exactly one of many concurrent requests win.
4. Rotated less than the grace window ago → the session's current token again, byte for byte
   (it is recomputed from its record, see ``tokens.RefreshTokens``), plus a new access token.
   "Ago" is on the store's clock, never this host's: replicas whose clocks disagree judge alike.
5. Any other reuse → the whole session is revoked and a security event recorded →
   ``refresh_token_reused``.
6. A successor never outlives the session (``store.refresh_tokens.new_record``).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from kizuna.clientinfo import ClientInfo
from kizuna.clock import utcnow
from kizuna.db import Tx
from kizuna.errors import Code
from kizuna.services import Services
from kizuna.store import refresh_tokens as token_store
from kizuna.store import sessions as session_store
from kizuna.store.refresh_tokens import TokenContext, TokenRecord
from kizuna.tokens import RefreshClaims, TokenError

log = structlog.get_logger("kizuna.rotation")


class Refused(enum.StrEnum):
    """The refusals of rotation, each answered with the catalogue entry of the same code."""

    missing = Code.refresh_token_missing
    invalid = Code.refresh_token_invalid
    expired = Code.refresh_token_expired
    revoked = Code.refresh_token_revoked
    reused = Code.refresh_token_reused
    session_expired = Code.session_expired


class RefreshRefused(Exception):
    def __init__(self, code: Refused) -> None:
        super().__init__(code.value)
        self.code = code


@dataclass(frozen=True)
class _Decision:
    """What the transaction decided: hand out ``record`` (the session's current token)."""

    record: TokenRecord
    roles: list[str]
    replayed: bool


@dataclass(frozen=True)
class Rotated:
    session_id: str
    user_id: str
    roles: list[str]
    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_expires_at: datetime
    replayed: bool  # True when rule 4 answered


async def rotate(
    services: Services, token: str | None, client: ClientInfo, *, waited: float = 0.0
) -> Rotated:
    """``waited``: seconds the request had already spent in queues before it reached us (the
    web tier's word, see ``clientinfo.waited_upstream``). Rule 4's window is judged by when the
    request was sent, so time spent in queues here or there never turns a racing tab's refresh
    into a reuse. Only durations come from this host (its monotonic clock); the moment they are
    taken from is the store's (``_decide``)."""
    sent = time.monotonic() - waited
    if not token:
        raise RefreshRefused(Refused.missing)
    try:
        claims = services.refresh_tokens.verify(token)
    except TokenError as exc:
        raise RefreshRefused(Refused.expired if exc.expired else Refused.invalid) from exc

    settings = services.settings
    policy = _Policy(
        grace=timedelta(seconds=settings.refresh_grace),
        ttl=settings.refresh_token_ttl,
        mac_kid=services.keyring.mac_key.kid,
    )

    def minted(decided: _Decision | Refused) -> Rotated | Refused:
        return decided if isinstance(decided, Refused) else _minted(services, decided)

    outcome = await services.db.write(
        lambda tx: _decide(tx, claims, client, policy, sent), then=minted
    )

    if isinstance(outcome, Refused):
        services.session_cache.forget(claims.sid)
        if outcome is Refused.reused:
            log.warning(
                "refresh_reuse_detected",
                security=True,
                user_id=claims.sub,
                session_id=claims.sid,
                refresh_token_id=claims.jti,
                ip=client.ip,
                waited_upstream=round(waited, 3),
            )
        raise RefreshRefused(outcome)
    log.info(
        "refresh",
        user_id=outcome.user_id,
        session_id=outcome.session_id,
        replayed=outcome.replayed,
        ip=client.ip,
    )
    return outcome


def _minted(services: Services, decision: _Decision) -> Rotated:
    """The new pair of tokens, made once the rotation has committed (``write``'s
    ``then``). On SQLite that is in the writer thread, with the write lock released: there the
    ES256 signature's release of the GIL lets the event loop go on; made on the event loop,
    that release let the writer cut in, and a 20 µs signature cost the loop over 100 µs
    (measured)."""
    record = decision.record
    access, access_exp = services.access_tokens.issue(
        sub=record.user_id, sid=record.session_id, roles=decision.roles
    )
    return Rotated(
        session_id=record.session_id,
        user_id=record.user_id,
        roles=decision.roles,
        access_token=access,
        access_expires_at=access_exp,
        refresh_token=services.refresh_tokens.for_record(record),
        refresh_expires_at=record.expires_at,
        replayed=decision.replayed,
    )


@dataclass(frozen=True)
class _Policy:
    grace: timedelta
    ttl: int
    mac_kid: str


# How stale a session's last_used_at / ip / user agent may get before a refresh rewrites them:
# one write fewer on most rotations.
_TOUCH_EVERY = timedelta(seconds=60)


def _decide(
    tx: Tx, claims: RefreshClaims, client: ClientInfo, policy: _Policy, sent: float
) -> _Decision | Refused:
    """One transaction, run off the event loop (see ``kizuna.db``). A refusal is returned, not
    raised: what it wrote (a revocation, a security event) commits, and on SQLite it does not
    roll back the group of rotations it was committed with (``kizuna.sqlite_writer``).

    Every moment it compares or writes is on one clock, the store's (read with the record,
    ``token_store.StoreNow``): replicas whose clocks disagree judge a duplicate alike."""
    since_sent = max(0.0, time.monotonic() - sent)  # a duration: no host's clock in it
    found = token_store.lookup(tx, token_id=claims.jti)
    if found is None:
        # Validly signed but unknown: its record has expired away (or it was never ours).
        return Refused.invalid
    now = found.store_now or utcnow()
    # The moment the request was sent, on the store's clock.
    sent_at = now - timedelta(seconds=since_sent)
    record = found.token
    if record.session_id != claims.sid or record.user_id != claims.sub:
        return Refused.invalid
    if found.session_revoked:
        return Refused.revoked
    if found.user_disabled:
        session_store.revoke(tx, session_ids=[record.session_id], reason="user_disabled", now=now)
        return Refused.revoked
    if found.session_expires_at <= now:
        return Refused.session_expired
    if record.rotated_at is None and record.revoked_at is None:
        return _rotate_current(tx, found, client, now, sent_at, policy)
    return _replay_or_reuse(tx, record, found, client, now, sent_at, policy)


def _rotate_current(
    tx: Tx,
    found: TokenContext,
    client: ClientInfo,
    now: datetime,
    sent_at: datetime,
    policy: _Policy,
) -> _Decision | Refused:
    record = found.token
    successor = token_store.new_record(
        session_id=record.session_id,
        user_id=record.user_id,
        device_id=record.device_id,
        session_expires_at=found.session_expires_at,
        now=now,
        ttl=policy.ttl,
        key_id=policy.mac_kid,
    )
    if not token_store.mark_rotated(tx, token_id=record.id, successor_id=successor.id, now=now):
        # Another request rotated it between our read and our write (possible on PostgreSQL;
        # SQLite's single writer serialises us): answer as one of the racers (rule 4).
        fresh = token_store.refetch(tx, token_id=record.id)
        if fresh is None:
            return Refused.invalid
        return _replay_or_reuse(tx, fresh, found, client, now, sent_at, policy)
    token_store.add(tx, record=successor)
    if (
        now - found.session_last_used_at >= _TOUCH_EVERY
        or found.session_ip != client.ip
        or found.session_user_agent != client.user_agent
    ):
        token_store.touch_session(
            tx, session_id=record.session_id, now=now, ip=client.ip, user_agent=client.user_agent
        )
    return _Decision(record=successor, roles=found.user_roles, replayed=False)


def _replay_or_reuse(
    tx: Tx,
    record: TokenRecord,
    found: TokenContext,
    client: ClientInfo,
    now: datetime,
    sent_at: datetime,
    policy: _Policy,
) -> _Decision | Refused:
    rotated_at = record.rotated_at
    # Judged by when the request was sent (``rotate``): a racer held up in a queue is a racer.
    if record.revoked_at is None and rotated_at is not None and sent_at - rotated_at < policy.grace:
        current = token_store.current(tx, session_id=record.session_id)
        if current is not None and current.expires_at > now:
            return _Decision(record=current, roles=found.user_roles, replayed=True)
    if not session_store.revoke(
        tx, session_ids=[record.session_id], reason="refresh_token_reused", now=now
    ):
        # A racer ended the session after our read (possible on PostgreSQL; SQLite's single
        # writer serialises us): the first reuse alone is the theft, the others find it ended.
        return Refused.revoked
    session_store.record_event(
        tx,
        kind="refresh_token_reused",
        now=now,
        user_id=record.user_id,
        session_id=record.session_id,
        ip=client.ip,
        user_agent=client.user_agent,
        detail={"refresh_token_id": record.id},
    )
    return Refused.reused
