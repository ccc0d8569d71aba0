"""Throttling of password attempts and sign-ups, per account and per client address.

An attempt is counted *before* the work it throttles (an argon2 verification takes ~40 ms,
long enough for a burst to arrive before the first failure is known) and handed back when the
attempt succeeds. Every bucket of an attempt is checked and counted in all of them or in none,
atomically, so the limits hold for attempts sent at once and across every worker and replica
that shares the counters: the store's (one transaction per attempt), or Redis's when
``KIZUNA_REDIS_URL`` is set (one script per attempt, no database write; the store takes over
while Redis does not answer). See ``kizuna.throttle_counters``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kizuna.db import Database, Tx
from kizuna.settings import Settings
from kizuna.throttle_counters import Counters, Hits, Limit, StoreCounters


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    limit: int
    window: int  # seconds

    def bucket(self, key: str) -> str:
        # Hashed so the counters never hold the addresses people typed.
        return f"{self.name}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt on record; ``refund_in`` takes it back when it turned out well."""

    hits: Hits


def account_key(email: str) -> str:
    return email.strip().lower()


class Throttle:
    def __init__(self, db: Database, settings: Settings) -> None:
        window = settings.login_fail_window
        self.password_per_account = Rule(
            "password-account", settings.login_fail_per_account, window
        )
        self.password_per_ip = Rule("password-ip", settings.login_fail_per_ip, window)
        self.signup_per_ip = Rule("signup-ip", settings.signup_per_ip, window)
        self.store_counters = StoreCounters(db, longest_window=window)
        # Where attempts are counted: the store's, unless services.build puts Redis's here.
        self.counters: Counters = self.store_counters

    @property
    def db(self) -> Database:
        return self.store_counters.db

    @db.setter
    def db(self, db: Database) -> None:
        self.store_counters.db = db

    async def password_attempt(self, *, email: str, ip: str) -> Attempt:
        """Count a password check for the account and the address, or raise ``Throttled``."""
        return await self.attempt(
            (self.password_per_account, account_key(email)), (self.password_per_ip, ip)
        )

    async def attempt(self, *checks: tuple[Rule, str]) -> Attempt:
        limits = [Limit(rule.bucket(key), rule.limit, rule.window) for rule, key in checks]
        outcome = await self.counters.count(limits)
        if isinstance(outcome, int):
            raise Throttled(outcome)
        return Attempt(outcome)

    @staticmethod
    def refund_in(tx: Tx, attempt: Attempt) -> None:
        """Take the attempt back, inside the unit of work that records its success."""
        attempt.hits.give_back_in(tx)

    async def refund(self, attempt: Attempt) -> None:
        await attempt.hits.give_back()

    async def close(self) -> None:
        await self.counters.close()
