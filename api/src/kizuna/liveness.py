"""Is the session behind an access token still alive? Asked on every authenticated request,
so each process remembers the answer for ``session_cache_ttl`` (≤ 1 s): a revocation anywhere
bites everywhere within that time, at one small read per session per interval."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from kizuna.clock import utcnow
from kizuna.db import Database
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


def _load_view(db: Session, session_id: str) -> SessionView | None:
    row = session_store.get_with_user(db, session_id=session_id)
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


class SessionDirectory:
    def __init__(self, db: Database, *, ttl: float, max_entries: int = 100_000) -> None:
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, SessionView | None]] = {}

    async def get(self, session_id: str) -> SessionView | None:
        now = time.monotonic()
        hit = self._cache.get(session_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        view = await self.db.read(lambda db: _load_view(db, session_id))
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[session_id] = (now, view)
        return view

    def forget(self, *session_ids: str) -> None:
        """Local changes are seen at once in this process; others catch up within ttl."""
        for session_id in session_ids:
            self._cache.pop(session_id, None)

    def forget_user(self, user_id: str) -> None:
        stale = [sid for sid, (_, view) in self._cache.items() if view and view.user_id == user_id]
        self.forget(*stale)
