"""Store hygiene: deleting what no rule needs any more, so that the store holds the sessions
that live and not every session that ever was (``kizuna purge``, and a periodic task in each
server process: ``KIZUNA_PURGE_INTERVAL``).

What goes, with ``R`` = ``KIZUNA_PURGE_RETENTION`` (7 days):

- a refresh-token record whose token expired, or was revoked, more than ``R`` ago. Reuse
  detection (rotation rules 4 and 5) needs a rotated record only while its token can still be
  presented: past its expiry the token is refused on its own signed ``exp`` (rule 1) before
  the store is asked, and a record never outlives its session (rule 6). So a rotated token of
  a session that lives is always recognised as reuse.
- a session revoked, or past its absolute lifetime, more than ``R`` ago, and a session none of
  whose records survives the rule above (idle expiry: it can no longer be refreshed).
- a change-feed entry older than ``R``, and never one younger than an access-token lifetime
  and a margin (``revocation_feed.retain_seconds``): a reader starting out reads that far back,
  and older entries cannot matter to any live token. The newest entry always stays.
- a throttling attempt older than the throttling window; a security event older than
  ``KIZUNA_SECURITY_EVENT_RETENTION`` (90 days).

Every batch is its own short transaction of at most ``KIZUNA_PURGE_BATCH`` rows (1,000), the
oldest first by an index (migration 0006), so it holds row locks on rows nobody uses for
milliseconds and never makes a rotation wait for the whole purge. One process purges at a time
(``exclusive``): a PostgreSQL advisory lock, or a lock file in the data dir on SQLite.
"""

from __future__ import annotations

import asyncio
import fcntl
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import IO

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from kizuna.clock import utcnow
from kizuna.db import Tx
from kizuna.revocation_feed import MARGIN
from kizuna.services import Services
from kizuna.settings import Settings
from kizuna.store import changes, throttle_hits
from kizuna.store import refresh_tokens as token_store
from kizuna.store import sessions as session_store

log = structlog.get_logger("kizuna.purge")

KINDS = ("refresh_tokens", "sessions", "changes", "throttle_hits", "security_events")

# A session's newest token is issued at most this long after its recorded last use
# (``rotation._TOUCH_EVERY``), so it expires at most the refresh-token lifetime after that.
_TOUCH_SLACK = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What was last needed before these moments goes."""

    ended: datetime  # sessions and refresh-token records
    idle: datetime  # sessions last used before this may have no record left
    feed: datetime
    throttle: datetime
    events: datetime


def cutoffs(settings: Settings, now: datetime) -> Cutoffs:
    ended = now - timedelta(seconds=settings.purge_retention)
    feed_keep = max(settings.purge_retention, settings.access_token_ttl + MARGIN)
    return Cutoffs(
        ended=ended,
        idle=ended - timedelta(seconds=settings.refresh_token_ttl) - _TOUCH_SLACK,
        feed=now - timedelta(seconds=feed_keep),
        throttle=now - timedelta(seconds=settings.login_fail_window),
        events=now - timedelta(seconds=settings.security_event_retention),
    )


Batch = Callable[[Tx, Cutoffs, int], int]

# In this order: the records before the sessions, so that a session's cascade finds few left.
STEPS: tuple[tuple[str, Batch], ...] = (
    ("refresh_tokens", lambda tx, c, n: token_store.purge_expired(tx, before=c.ended, limit=n)),
    ("refresh_tokens", lambda tx, c, n: token_store.purge_revoked(tx, before=c.ended, limit=n)),
    ("sessions", lambda tx, c, n: session_store.purge_revoked(tx, before=c.ended, limit=n)),
    ("sessions", lambda tx, c, n: session_store.purge_expired(tx, before=c.ended, limit=n)),
    (
        "sessions",
        lambda tx, c, n: session_store.purge_idle(tx, before=c.ended, idle_before=c.idle, limit=n),
    ),
    ("changes", lambda tx, c, n: changes.purge(tx, before=c.feed, limit=n)),
    ("throttle_hits", lambda tx, c, n: throttle_hits.purge_some(tx, before=c.throttle, limit=n)),
    ("security_events", lambda tx, c, n: session_store.purge_events(tx, before=c.events, limit=n)),
)


def _batch(step: Batch, cut: Cutoffs, limit: int, tx: Tx) -> int:
    return step(tx, cut, limit)


async def purge(services: Services, *, now: datetime | None = None) -> dict[str, int]:
    """One pass over every kind; returns how many rows of each were deleted. Each batch is a
    unit of work of its own (on SQLite the writer thread runs rotations between two)."""
    cut = cutoffs(services.settings, now or utcnow())
    limit = services.settings.purge_batch
    counts = dict.fromkeys(KINDS, 0)
    for kind, step in STEPS:
        while True:
            deleted = await services.db.write(partial(_batch, step, cut, limit))
            counts[kind] += deleted
            if deleted < limit:
                break
    return counts


def _purgeable(cut: Cutoffs, tx: Tx) -> dict[str, int]:
    return {
        "refresh_tokens": token_store.purgeable(tx, before=cut.ended),
        "sessions": session_store.purgeable(tx, before=cut.ended, idle_before=cut.idle),
        "changes": changes.purgeable(tx, before=cut.feed),
        "throttle_hits": throttle_hits.purgeable(tx, before=cut.throttle),
        "security_events": session_store.purgeable_events(tx, before=cut.events),
    }


async def purgeable(services: Services, *, now: datetime | None = None) -> dict[str, int]:
    """What ``purge`` would delete now (``kizuna purge --dry-run``), read in one snapshot."""
    cut = cutoffs(services.settings, now or utcnow())
    return await services.db.read(partial(_purgeable, cut))


class PurgeBusy(Exception):
    """Another process is purging the store."""


_TRY_LOCK = text("SELECT pg_try_advisory_lock(hashtextextended('kizuna.purge', 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended('kizuna.purge', 0))")


def _lock_file(path: str) -> IO[str]:
    handle = open(path, "a")  # noqa: SIM115 - held until ``exclusive`` ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise PurgeBusy from None
    return handle


def _unlock_file(handle: IO[str]) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


@asynccontextmanager
async def exclusive(services: Services) -> AsyncIterator[None]:
    """Hold the purge lock, or raise ``PurgeBusy`` at once. PostgreSQL: a session-level
    advisory lock on a connection of its own (released if the process dies: the connection
    closes); SQLite: a file lock in the data dir, shared by every worker."""
    settings = services.settings
    if settings.is_sqlite:
        handle = await asyncio.to_thread(_lock_file, str(settings.data_dir / "purge.lock"))
        try:
            yield
        finally:
            await asyncio.to_thread(_unlock_file, handle)
        return
    engine = create_async_engine(settings.db_url, poolclass=NullPool, hide_parameters=True)
    try:
        # Autocommit: no transaction stays open while the purge runs.
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if not (await connection.execute(_TRY_LOCK)).scalar():
                raise PurgeBusy
            try:
                yield
            finally:
                await connection.execute(_UNLOCK)
    finally:
        await engine.dispose()


async def purge_exclusive(services: Services) -> dict[str, int]:
    """``purge`` under the lock; raises ``PurgeBusy`` when another process holds it."""
    async with exclusive(services):
        started = time.monotonic()
        counts = await purge(services)
    log.info("purge", seconds=round(time.monotonic() - started, 3), **counts)
    return counts


class PeriodicPurge:
    """The purge every ``KIZUNA_PURGE_INTERVAL`` seconds in a server process, jittered so that
    processes started together spread out. A pass that fails is logged and tried again next
    time; the process never ends because of it."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.services.settings.purge_interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        interval = self.services.settings.purge_interval
        # The first pass comes anywhere in the first interval, so that a process restarted
        # more often than the interval still purges now and then.
        delay = interval * random.uniform(0.1, 1.0)  # noqa: S311 - not a secret
        while True:
            await asyncio.sleep(delay)
            try:
                await purge_exclusive(self.services)
            except PurgeBusy:
                log.info("purge_skipped", reason="another process is purging")
            except Exception:
                log.exception("purge_failed")
            delay = interval * random.uniform(0.9, 1.1)  # noqa: S311 - not a secret
