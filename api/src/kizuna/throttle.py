"""Throttling of password attempts and sign-ups, per account and per client address.

An attempt is counted *before* the work it throttles (an argon2 verification takes ~40 ms,
long enough for a burst to arrive before the first failure is known) and handed back when the
attempt succeeds. The counts live in the store, in one transaction per attempt that checks
every bucket and counts in all of them or in none, so the limits hold for attempts sent at once
and across every worker and replica that shares the store.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import timedelta

from kizuna.clock import utcnow
from kizuna.db import Database, Tx
from kizuna.settings import Settings
from kizuna.store import throttle_hits


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    limit: int
    window: int  # seconds

    def bucket(self, key: str) -> str:
        # Hashed so the store never holds the addresses people typed.
        return f"{self.name}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt on record; ``refund_in`` takes it back when it turned out well."""

    hit_ids: tuple[int, ...]


def account_key(email: str) -> str:
    return email.strip().lower()


# One purge of long-forgotten buckets per this many attempts, on average.
_PURGE_EVERY = 500


class Throttle:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        window = settings.login_fail_window
        self.password_per_account = Rule(
            "password-account", settings.login_fail_per_account, window
        )
        self.password_per_ip = Rule("password-ip", settings.login_fail_per_ip, window)
        self.signup_per_ip = Rule("signup-ip", settings.signup_per_ip, window)
        self._longest = max(window, 1)

    async def password_attempt(self, *, email: str, ip: str) -> Attempt:
        """Count a password check for the account and the address, or raise ``Throttled``."""
        return await self.attempt(
            (self.password_per_account, account_key(email)), (self.password_per_ip, ip)
        )

    async def attempt(self, *checks: tuple[Rule, str]) -> Attempt:
        now = utcnow()
        buckets = sorted({(rule.bucket(key), rule) for rule, key in checks}, key=lambda b: b[0])
        purge = random.randrange(_PURGE_EVERY) == 0  # noqa: S311 - not a secret

        def work(tx: Tx) -> Attempt | int:
            for bucket, _ in buckets:  # in one order everywhere: no deadlock between two
                throttle_hits.lock(tx, bucket=bucket)
            waits = []
            for bucket, rule in buckets:
                since = now - timedelta(seconds=rule.window)
                count, oldest = throttle_hits.in_window(tx, bucket=bucket, since=since)
                if count >= rule.limit:
                    frees_at = (oldest or now) + timedelta(seconds=rule.window)
                    waits.append((frees_at - now).total_seconds())
            if waits:
                return max(1, math.ceil(max(waits)))
            if purge:
                throttle_hits.purge(tx, before=now - timedelta(seconds=self._longest))
            return Attempt(tuple(throttle_hits.add(tx, bucket=b, at=now) for b, _ in buckets))

        outcome = await self.db.write(work)
        if isinstance(outcome, int):
            raise Throttled(outcome)
        return outcome

    @staticmethod
    def refund_in(tx: Tx, attempt: Attempt) -> None:
        """Take the attempt back, inside the unit of work that records its success."""
        throttle_hits.remove(tx, hit_ids=attempt.hit_ids)

    async def refund(self, attempt: Attempt) -> None:
        await self.db.write(lambda tx: self.refund_in(tx, attempt))
