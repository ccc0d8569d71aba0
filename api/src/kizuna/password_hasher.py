"""Password hashing with argon2id, in processes of their own (``kizuna.hashing_process``)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from kizuna.hashing_process import HashingProcess, HashingProcessDied, Slots
from kizuna.password_policy import is_text, normalized


class HashingBusy(RuntimeError):
    """More password hashes are queued than this process takes on: answer 503 at once."""


class PasswordHasher:
    """Hashing in processes of its own (``concurrency`` of them per server process, at most
    ``slots.count`` hashing at once on the machine; see ``kizuna.hashing_process``): it never
    runs on the event loop and never holds this process's GIL. Measured on the bench's burst
    of logins: hashing threads at nice 19 inside the server made page views wait for the GIL
    whenever the scheduler paused a hashing thread that held it (a priority inversion)."""

    def __init__(self, *, concurrency: int, slots: Slots, max_queue: int = 64) -> None:
        self._concurrency = concurrency
        self._max_queue = max_queue
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
        if sum(p.waiting for p in self._processes if not p.dead) >= self._max_queue:
            raise HashingBusy()
        for attempt in (1, 2):
            try:
                return await (await self._process()).call(request)
            except HashingProcessDied:
                # Killed, out of memory: a new process takes over, once.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def hash(self, password: str) -> str:
        """The hash of the password's NFKC form (the policy has refused non-text already)."""
        value = await self._call({"op": "hash", "password": normalized(password)})
        assert isinstance(value, str)
        return value

    async def verify(self, password: str, stored: str | None) -> bool:
        """Verify against ``stored``; with no stored hash (unknown account) verify against a
        dummy, the same number of times, so both cases cost the same time. The NFKC form is
        tried first, then the password as typed: hashes made before passwords were
        normalised still verify."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(24))
        known = stored is not None and is_text(password)
        target = stored if stored is not None and known else self._dummy
        form = normalized(password)
        candidates = [form] if form == password else [form, password]
        for candidate in candidates:
            if not is_text(candidate):
                candidate = "\x00never"
            elif not known:
                candidate += "\x00never"
            request = {"op": "verify", "password": candidate, "stored": target}
            if await self._call(request) is True and known:
                return True
        return False

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
