"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache
from importlib import resources
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

T = TypeVar("T")

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


# -- hashing, in processes of its own ------------------------------------------------------

_child_hasher: PasswordHash | None = None


def _start_child() -> None:
    """In each hashing process: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane),
    at the lowest priority, so that request handling always comes first. (SCHED_IDLE was
    measured too: no better for page views, and it can starve logins on a busy machine.)"""
    global _child_hasher
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    _child_hasher = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19_456, parallelism=1),))
    # Not Linux, or not allowed: run at normal priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 19)


def _exit_with(parent: int) -> None:
    """A hashing process ends with its server, even one killed outright (SIGKILL runs no exit
    hook to stop the pool): its parent changes when the server is gone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _hash_in_child(password: str) -> str:
    assert _child_hasher is not None
    return _child_hasher.hash(password)


def _verify_in_child(password: str, stored: str) -> bool:
    assert _child_hasher is not None
    try:
        return _child_hasher.verify(password, stored)
    except Exception:  # a corrupt stored hash is a failed login, not a 500
        return False


_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(concurrency: int) -> ProcessPoolExecutor:
    """One pool of hashing processes per server process and size, started on first use and
    ended with the process (the executor's own exit hook)."""
    with _pools_lock:
        pool = _pools.get(concurrency)
        if pool is None:
            pool = ProcessPoolExecutor(
                max_workers=concurrency,
                # Not fork: this process has threads (the store's), and a fork copies their locks.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
            )
            _pools[concurrency] = pool
        return pool


def _discard(pool: ProcessPoolExecutor) -> None:
    with _pools_lock:
        for size, known in list(_pools.items()):
            if known is pool:
                del _pools[size]
    pool.shutdown(wait=False, cancel_futures=True)


class PasswordHasher:
    """Hashing in processes of its own (``hash_concurrency`` of them): it never runs on the
    event loop and never holds this process's GIL. Measured on the bench's burst of logins:
    hashing threads at nice 19 inside the server made page views wait for the GIL whenever
    the scheduler paused a hashing thread that held it (a priority inversion)."""

    def __init__(self, *, concurrency: int) -> None:
        self._concurrency = concurrency
        self._dummy: str | None = None

    async def _in_child(self, function: Callable[..., T], *args: str) -> T:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            pool = _pool(self._concurrency)
            try:
                return await loop.run_in_executor(pool, function, *args)
            except BrokenProcessPool:
                # A hashing process died (killed, out of memory): start afresh, once.
                _discard(pool)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def hash(self, password: str) -> str:
        return await self._in_child(_hash_in_child, password)

    async def verify(self, password: str, stored: str | None) -> bool:
        """Verify against ``stored``; with no stored hash (unknown account) verify against a
        dummy so both cases cost the same time."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(24))
            stored = self._dummy
            password = password + "\x00never"
        return await self._in_child(_verify_in_child, password, stored)

    async def warm_up(self) -> None:
        """Start the hashing processes now rather than on the first login."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(24))

    def close(self) -> None:
        """Nothing to do: the hashing processes serve the whole process and end with it."""
