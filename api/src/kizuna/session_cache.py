"""Is the session behind an access token still alive? Asked on every authenticated request.

Each process keeps the sessions it has seen in memory and, at most every ``session_cache_ttl``
(≤ 1 s) while requests come, asks the store one question: what has the change feed
(``store/changes.py``) added since the last entry seen? Those sessions and users are dropped
and read again on next use. A revocation anywhere bites everywhere within that interval, and
the cost does not grow with the number of sessions.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from kizuna.clock import utcnow
from kizuna.db import Database, Tx
from kizuna.store import changes
from kizuna.store import sessions as session_store


@dataclass(frozen=True, slots=True)
class SessionView:
    session_id: str
    device_id: str
    created_at: datetime
    expires_at: datetime
    revoked: bool
    user_id: str
    email: str
    name: str
    roles: tuple[str, ...]
    disabled: bool

    def usable_by(self, user_id: str) -> bool:
        return (
            not self.revoked
            and not self.disabled
            and self.user_id == user_id
            and self.expires_at > utcnow()
        )


def _load_view(tx: Tx, session_id: str) -> SessionView | None:
    row = session_store.get_with_user(tx, session_id=session_id)
    if row is None:
        return None
    session, user = row
    return SessionView(
        session_id=session.id,
        device_id=session.device_id,
        created_at=session.created_at,
        expires_at=session.expires_at,
        revoked=session.revoked_at is not None,
        user_id=user.id,
        email=user.email,
        name=user.name,
        roles=tuple(user.roles),
        disabled=user.disabled,
    )


_FEED_PAGE = 1000


class SessionCache:
    def __init__(self, db: Database, *, ttl: float, max_entries: int = 100_000) -> None:
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, SessionView | None] = {}
        # Never polled: the first request waits for the first poll, which finds where the
        # change feed stands before anything is cached.
        self._polled_at = -math.inf
        self._after: int | None = None
        self._poll: asyncio.Task[None] | None = None
        self._epoch = 0

    async def get(self, session_id: str) -> SessionView | None:
        age = time.monotonic() - self._polled_at
        if age >= self.ttl:
            # Poll in the background and answer from the cache meanwhile; only a cache that
            # is getting too old to honour the revocation bound makes requests wait.
            poll = self._start_poll()
            if age >= self.ttl * 1.5:
                await asyncio.shield(poll)
        try:
            return self._cache[session_id]
        except KeyError:
            pass
        epoch = self._epoch
        view = await self.db.read(lambda tx: _load_view(tx, session_id))
        # Something was invalidated while we read: our answer may predate it, so use it for
        # this request but do not remember it.
        if epoch == self._epoch:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[session_id] = view
        return view

    def _start_poll(self) -> asyncio.Task[None]:
        """One poll at a time."""
        if self._poll is None or self._poll.done():
            self._poll = asyncio.ensure_future(self._run_poll())
            # A failed poll is retried by the next request; whoever waits on it sees the error.
            self._poll.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self._poll

    async def _run_poll(self) -> None:
        started = time.monotonic()
        after = self._after
        if after is None:
            self._after = await self.db.read(changes.latest)
            self._epoch += 1
            self._cache.clear()
            self._polled_at = started
            return
        while True:
            entries = await self.db.read(partial(changes.after, seq=after, limit=_FEED_PAGE))
            if entries:
                self._epoch += 1
            for entry in entries:
                if entry.kind == "session":
                    self.forget(entry.key)
                else:
                    self.forget_user(entry.key)
            if entries:
                after = entries[-1].seq
                self._after = after
            if len(entries) < _FEED_PAGE:
                break
        self._polled_at = started

    def forget(self, *session_ids: str) -> None:
        """Local changes are seen at once in this process; others catch up within ttl."""
        if session_ids:
            self._epoch += 1
        for session_id in session_ids:
            self._cache.pop(session_id, None)

    def forget_user(self, user_id: str) -> None:
        stale = [sid for sid, view in self._cache.items() if view and view.user_id == user_id]
        self.forget(*stale)
