"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MIN_LENGTH = 8
MAX_LENGTH = 128  # NIST 800-63B: allow at least 64; a bound keeps hashing cost bounded


class WeakPassword(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("kizuna").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def check_policy(password: str, *, email: str | None = None) -> None:
    """NIST 800-63B / ASVS 6.2: length and a blocklist, no composition rules."""
    normalized = unicodedata.normalize("NFKC", password)
    if len(normalized) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.")
    if len(normalized) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    lowered = normalized.lower()
    if lowered in common_passwords():
        raise WeakPassword("This password is too common; choose another.")
    if email and lowered in {email.lower(), email.split("@", 1)[0].lower()}:
        raise WeakPassword("The password must not be your email address.")


def _lower_priority() -> None:
    """Hashing threads yield the CPU to request handling: with several workers their hashing
    threads can fill every core, and a login may wait where a page view should not."""
    # Not Linux, or not allowed: run at normal priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class PasswordHasher:
    """argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), in a small dedicated
    thread pool: hashing never runs on the event loop, and the pool is kept smaller than
    the machine so a burst of logins cannot starve the loop of CPU."""

    def __init__(self, *, concurrency: int) -> None:
        self._hasher = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19_456, parallelism=1),))
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, password: str, stored: str | None) -> bool:
        """Verify against ``stored``; with no stored hash (unknown account) verify against a
        dummy so both cases cost the same time."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(24))
            stored = self._dummy
            password = password + "\x00never"
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._hasher.verify, password, stored)
        except Exception:  # a corrupt stored hash is a failed login, not a 500
            return False

    async def warm_up(self) -> None:
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(24))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
