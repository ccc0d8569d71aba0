"""Everything a request needs, built once per process and hung on ``app.state.kizuna``."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kizuna.cookies import SessionCookies
from kizuna.db import Database
from kizuna.hashing_process import Slots, default_slots
from kizuna.keys import KeyRing
from kizuna.password_hasher import PasswordHasher
from kizuna.session_cache import SessionCache
from kizuna.settings import Settings, ensure_data_dir
from kizuna.throttle import Throttle
from kizuna.throttle_counters import RedisCounters, redis_client
from kizuna.tokens import AccessTokens, RefreshTokens


@dataclass
class Services:
    settings: Settings
    db: Database
    keyring: KeyRing
    access_tokens: AccessTokens
    refresh_tokens: RefreshTokens
    hasher: PasswordHasher
    throttle: Throttle
    session_cache: SessionCache
    cookies: SessionCookies

    async def close(self) -> None:
        await self.hasher.close()
        await self.throttle.close()
        await self.db.dispose()


@contextmanager
def keyring_lock(settings: Settings) -> Iterator[None]:
    """Serialises key-ring changes across processes (workers starting, ``keys rotate``)."""
    ensure_data_dir(settings)
    with open(settings.data_dir / ".keys.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_keyring(settings: Settings) -> KeyRing:
    keyring = KeyRing(
        settings.keys_dir,
        alg=settings.signing_alg,
        access_ttl=settings.access_token_ttl,
        leeway=settings.clock_leeway,
    )
    # Several workers may start at once on a fresh data dir: one creates the first keys.
    with keyring_lock(settings):
        keyring.ensure()
    return keyring


def build(settings: Settings) -> Services:
    keyring = open_keyring(settings)
    db = Database(settings.db_url)
    return Services(
        settings=settings,
        db=db,
        keyring=keyring,
        access_tokens=AccessTokens(
            keyring,
            issuer=settings.issuer,
            audience=settings.audience,
            ttl=settings.access_token_ttl,
            leeway=settings.clock_leeway,
            logout_horizon=settings.refresh_token_ttl,
        ),
        refresh_tokens=RefreshTokens(keyring, issuer=settings.issuer, leeway=settings.clock_leeway),
        hasher=PasswordHasher(
            concurrency=settings.hash_concurrency,
            slots=Slots(settings.data_dir, settings.hash_cores or default_slots()),
            max_queue=settings.hash_queue,
        ),
        throttle=_throttle(db, settings),
        session_cache=SessionCache(db, ttl=settings.session_cache_ttl),
        cookies=SessionCookies(settings),
    )


def _throttle(db: Database, settings: Settings) -> Throttle:
    """Counting in Redis when one is configured (the store takes over while it is down)."""
    throttle = Throttle(db, settings)
    if settings.redis_url is not None:
        client = redis_client(settings.redis_url, timeout=settings.redis_timeout)
        throttle.counters = RedisCounters(
            client, throttle.store_counters, recheck=settings.redis_recheck
        )
    return throttle
