"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from functools import cache
from importlib import resources
from typing import Any

from kizuna.hashing_process import HashingProcess, HashingProcessDied, Slots

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


class PasswordHasher:
    """Hashing in processes of its own (``concurrency`` of them per server process, at most
    ``slots.count`` hashing at once on the machine; see ``kizuna.hashing_process``): it never
    runs on the event loop and never holds this process's GIL. Measured on the bench's burst
    of logins: hashing threads at nice 19 inside the server made page views wait for the GIL
    whenever the scheduler paused a hashing thread that held it (a priority inversion)."""

    def __init__(self, *, concurrency: int, slots: Slots) -> None:
        self._concurrency = concurrency
        self._slots = slots
        self._processes: list[HashingProcess] = []
        self._starting = asyncio.Lock()
        self._dummy: str | None = None

    async def _process(self) -> HashingProcess:
        """The least busy hashing process; dead ones are replaced, missing ones started."""
        live = [p for p in self._processes if not p.dead]
        if len(live) < self._concurrency and (not live or min(p.waiting for p in live) > 0):
            async with self._starting:
                live = [p for p in self._processes if not p.dead]
                if len(live) < self._concurrency:
                    for gone in (p for p in self._processes if p.dead):
                        await gone.close()
                    live.append(await HashingProcess.start(self._slots))
                    self._processes = live
        return min(live, key=lambda p: p.waiting)

    async def _call(self, request: dict[str, str]) -> Any:
        for attempt in (1, 2):
            try:
                return await (await self._process()).call(request)
            except HashingProcessDied:
                # Killed, out of memory: a new process takes over, once.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def hash(self, password: str) -> str:
        value = await self._call({"op": "hash", "password": password})
        assert isinstance(value, str)
        return value

    async def verify(self, password: str, stored: str | None) -> bool:
        """Verify against ``stored``; with no stored hash (unknown account) verify against a
        dummy so both cases cost the same time."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(24))
            stored = self._dummy
            password = password + "\x00never"
        return await self._call({"op": "verify", "password": password, "stored": stored}) is True

    async def warm_up(self) -> None:
        """Start the hashing processes now rather than on the first login."""
        async with self._starting:
            while len(self._processes) < self._concurrency:
                self._processes.append(await HashingProcess.start(self._slots))
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(24))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if not p.dead]

    async def close(self) -> None:
        processes, self._processes = self._processes, []
        await asyncio.gather(*(p.close() for p in processes))
