"""Where throttling counts attempts: in the store, or in Redis when ``KIZUNA_REDIS_URL`` is set.

Both do the same thing (``kizuna.throttle`` says why): check every bucket of an attempt and
count it in all of them or in none, atomically for every process that shares the counters, and
answer how long until the fullest bucket frees a place (from its oldest hit in the window).

- ``StoreCounters``: one transaction per attempt that locks its buckets (``store/throttle_hits``).
- ``RedisCounters``: one Lua script per attempt over a sorted set per bucket (member: a unique
  id per attempt, score: Redis's own clock in ms), each set expiring after its window. A login
  attempt costs no database write.

When Redis does not answer (refused, or no reply within ``KIZUNA_REDIS_TIMEOUT``),
``RedisCounters`` counts in the store instead and asks Redis again after
``KIZUNA_REDIS_RECHECK`` seconds; one request asks meanwhile, the others go to the store, so an
outage costs no request a timeout after the first. Each switch is logged once, at warning
level (``redis_unavailable``, ``redis_recovered``). The two sets of counts do not add up: a
bucket may take up to its limit in each, so an outage lets at most one more limit's worth of
attempts through per bucket and window (README, "When Redis is down").
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from kizuna.clock import utcnow
from kizuna.db import Database, Tx
from kizuna.store import throttle_hits

log = structlog.get_logger("kizuna.throttle")


@dataclass(frozen=True, slots=True)
class Limit:
    """One bucket an attempt counts in: at most ``limit`` hits in ``window`` seconds."""

    bucket: str
    limit: int
    window: int


class Hits(Protocol):
    """An attempt on record in every bucket it was counted in."""

    def give_back_in(self, tx: Tx) -> None:
        """Take it back from inside a unit of work (the one that records the success)."""

    async def give_back(self) -> None: ...


class Counters(Protocol):
    async def count(self, limits: Sequence[Limit]) -> Hits | int:
        """The attempt's hits, or (none counted) the seconds until a place frees up, ≥ 1."""
        ...

    async def close(self) -> None: ...


def _retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


# -- in the store ---------------------------------------------------------------------------

# One purge of long-forgotten buckets per this many attempts, on average.
_PURGE_EVERY = 500


@dataclass(frozen=True, slots=True)
class StoreHits:
    counters: StoreCounters
    hit_ids: tuple[int, ...]

    def give_back_in(self, tx: Tx) -> None:
        throttle_hits.remove(tx, hit_ids=self.hit_ids)

    async def give_back(self) -> None:
        await self.counters.db.write(self.give_back_in)


class StoreCounters:
    def __init__(self, db: Database, *, longest_window: int) -> None:
        self.db = db
        self._longest = max(longest_window, 1)

    async def count(self, limits: Sequence[Limit]) -> Hits | int:
        now = utcnow()
        ordered = sorted({limit.bucket: limit for limit in limits}.values(), key=_by_bucket)
        purge = random.randrange(_PURGE_EVERY) == 0  # noqa: S311 - not a secret

        def work(tx: Tx) -> tuple[int, ...] | int:
            for limit in ordered:  # in one order everywhere: no deadlock between two
                throttle_hits.lock(tx, bucket=limit.bucket)
            waits = [wait for limit in ordered if (wait := _full_for(tx, limit, now)) is not None]
            if waits:
                return _retry_after(max(waits))
            if purge:
                throttle_hits.purge(tx, before=now - timedelta(seconds=self._longest))
            return tuple(throttle_hits.add(tx, bucket=limit.bucket, at=now) for limit in ordered)

        outcome = await self.db.write(work)
        if isinstance(outcome, int):
            return outcome
        return StoreHits(self, outcome)

    async def close(self) -> None:
        """The store is closed with the other services."""


def _by_bucket(limit: Limit) -> str:
    return limit.bucket


def _full_for(tx: Tx, limit: Limit, now: datetime) -> float | None:
    """Seconds until the bucket has a free place, or None when it has one now."""
    since = now - timedelta(seconds=limit.window)
    count, oldest = throttle_hits.in_window(tx, bucket=limit.bucket, since=since)
    if count < limit.limit:
        return None
    frees_at = (oldest or now) + timedelta(seconds=limit.window)
    return (frees_at - now).total_seconds()


# -- in Redis -------------------------------------------------------------------------------

# KEYS: one sorted set per bucket. ARGV: the attempt's member id, then limit and window (ms)
# for each key. Answers -1 when the attempt was counted in every set, else the milliseconds
# until the fullest set frees a place (nothing counted). Redis's clock, so replicas whose clocks
# differ still agree; scripts replicate their effects (Redis ≥ 5), so TIME is allowed.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = -1
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local frees = tonumber(oldest[2]) + window - now
    if frees > wait then wait = frees end
  end
end
if wait >= 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return -1
"""

_KEY_PREFIX = "kizuna:throttle:"
# Each command takes microseconds; a request that waits this long for a connection meets a
# Redis that does not answer, and counts in the store instead.
_POOL_SIZE = 32
_POOL_WAIT = 1.0


def redis_client(url: str, *, timeout: float) -> Redis:
    """A client with its own pool; no retries, so an outage costs one ``timeout``."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=_POOL_SIZE,
        timeout=_POOL_WAIT,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return Redis(connection_pool=pool)


@dataclass(frozen=True, slots=True)
class RedisHits:
    counters: RedisCounters
    keys: tuple[str, ...]
    member: str
    loop: asyncio.AbstractEventLoop

    def give_back_in(self, tx: Tx) -> None:
        # A unit of work runs in a store thread (SQLite) or inside the loop (PostgreSQL) and
        # must not wait on Redis: the refund goes to the loop. It happens even if the unit of
        # work then fails; it is only ever given for a right password, and giving it twice
        # (SQLite may run a unit of work again alone) removes nothing more.
        self.loop.call_soon_threadsafe(self.counters.give_back_soon, self)

    async def give_back(self) -> None:
        await self.counters.give_back(self)


class RedisCounters:
    def __init__(self, client: Redis, fallback: StoreCounters, *, recheck: float) -> None:
        self.client = client
        self.fallback = fallback
        self.recheck = recheck
        self._script = client.register_script(_COUNT)
        self._down_until: float | None = None  # monotonic; None while Redis answers
        self._refunds: set[asyncio.Task[None]] = set()

    async def count(self, limits: Sequence[Limit]) -> Hits | int:
        if self._down_until is not None:
            now = time.monotonic()
            if now < self._down_until:
                return await self.fallback.count(limits)
            # This request asks Redis again; the others keep to the store meanwhile.
            self._down_until = now + self.recheck
        unique = {limit.bucket: limit for limit in limits}.values()
        keys = tuple(_KEY_PREFIX + limit.bucket for limit in unique)
        member = secrets.token_hex(12)
        args: list[str | int] = [member]
        for limit in unique:
            args += [limit.limit, limit.window * 1000]
        try:
            answer = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return await self.fallback.count(limits)
        self._came_back()
        if int(answer) >= 0:
            return _retry_after(int(answer) / 1000)
        return RedisHits(self, keys, member, asyncio.get_running_loop())

    def _went_down(self, exc: BaseException) -> None:
        first = self._down_until is None
        self._down_until = time.monotonic() + self.recheck
        if first:
            log.warning("redis_unavailable", error=type(exc).__name__, counting_in="store")

    def _came_back(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.warning("redis_recovered", counting_in="redis")

    async def give_back(self, hits: RedisHits) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in hits.keys:
                    pipe.zrem(key, hits.member)
                await pipe.execute()
        except (RedisError, OSError):
            # The hit stays counted until its window ends: stricter, never looser.
            log.info("throttle_refund_lost", reason="redis_unavailable")

    def give_back_soon(self, hits: RedisHits) -> None:
        task = asyncio.ensure_future(self.give_back(hits))
        self._refunds.add(task)
        task.add_done_callback(self._refunds.discard)

    async def close(self) -> None:
        if self._refunds:
            await asyncio.gather(*self._refunds, return_exceptions=True)
        await self.client.aclose(close_connection_pool=True)
