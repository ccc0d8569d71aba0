"""Failed-login throttling per account and per client address, with ``limits``.
In-memory by default; shared through Redis when ``KIZUNA_REDIS_URL`` is set."""

from __future__ import annotations

import hashlib
import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from kizuna.settings import Settings


class LoginThrottle:
    def __init__(self, settings: Settings) -> None:
        storage: Storage
        if settings.redis_url:
            storage = RedisStorage("async+" + settings.redis_url, implementation="redispy")
        else:
            storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        window = settings.login_fail_window
        self._per_account = RateLimitItemPerSecond(settings.login_fail_per_account, window)
        self._per_ip = RateLimitItemPerSecond(settings.login_fail_per_ip, window)

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed so the limiter's storage never holds the addresses people typed.
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()

    async def retry_after(self, *, email: str, ip: str) -> int | None:
        """Seconds until another attempt is allowed, or None when not throttled."""
        waits: list[float] = []
        for item, key in ((self._per_account, self._account_key(email)), (self._per_ip, ip)):
            if not await self._limiter.test(item, "login-fail", key):
                stats = await self._limiter.get_window_stats(item, "login-fail", key)
                waits.append(stats.reset_time - time.time())
        if not waits:
            return None
        return max(1, math.ceil(max(waits)))

    async def record_failure(self, *, email: str, ip: str) -> None:
        await self._limiter.hit(self._per_account, "login-fail", self._account_key(email))
        await self._limiter.hit(self._per_ip, "login-fail", ip)
