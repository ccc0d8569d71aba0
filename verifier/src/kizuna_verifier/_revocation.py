"""Following Kizuna's revocation feed (``GET /api/revocations``), opt-in.

A background task polls the feed by sequence number every ``poll_interval`` seconds and keeps
what it says: the sessions that have ended, and the current state (disabled, roles) of users
that changed. Each entry is kept only as long as a token issued before it can live (the feed
says how long: ``retain_seconds``); after that every token it concerns has expired anyway.

Fail closed: a token is accepted only while the last successful poll started at most
``max_staleness`` seconds ago. Whatever was revoked before that poll started is known, so a
revoked session or a disabled user is refused within ``max_staleness`` (1 s by default) of the
revocation. When the feed cannot be read for longer, verification raises ``Unavailable`` (503)
rather than accept tokens it can no longer vouch for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from kizuna_verifier._errors import InvalidToken, Reason, Unavailable

log = logging.getLogger("kizuna_verifier")


@dataclass(frozen=True, slots=True)
class UserState:
    disabled: bool
    roles: frozenset[str]
    keep_until: float  # monotonic


@dataclass(frozen=True, slots=True)
class _Page:
    seq: int
    more: bool
    retain_seconds: int
    entries: list[dict[str, Any]]


def _page(body: Any) -> _Page:
    """The answer, checked member by member: a feed that says something unexpected is a
    failed poll, never a partial reading."""
    if not isinstance(body, dict):
        raise ValueError("the feed's answer is not an object")
    seq, more, retain, entries = (body.get(k) for k in ("seq", "more", "retain_seconds", "entries"))
    if not (_count(seq) and _count(retain) and isinstance(more, bool)):
        raise ValueError("the feed's answer lacks seq, more or retain_seconds")
    assert isinstance(seq, int) and isinstance(retain, int)  # what _count checked
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("the feed's entries are not a list of objects")
    for entry in entries:
        kind = entry.get("kind")
        if kind == "session" and not isinstance(entry.get("session_id"), str):
            raise ValueError("a session entry without session_id")
        if kind == "user" and not (
            isinstance(entry.get("user_id"), str)
            and isinstance(entry.get("disabled"), bool)
            and isinstance(entry.get("roles"), list)
            and all(isinstance(r, str) for r in entry["roles"])
        ):
            raise ValueError("a user entry without user_id, disabled or roles")
    return _Page(seq, more, retain, entries)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class RevocationFeed:
    """``RevocationFeed(url="https://auth.internal/api/revocations", credential="kzs_…")``,
    given to ``Verifier(revocation=…)``. The credential comes from ``kizuna services create``.

    - ``poll_interval``: seconds between polls (0.25).
    - ``max_staleness``: tokens are refused (``Unavailable``) once the last successful poll
      started longer ago than this (1.0): the bound on how late a revocation can bite.
    - ``wait``: how long a request may wait for a poll under way when the feed is stale but not
      failing (at start-up, or after the event loop stalled), before ``Unavailable``.
    - ``timeout``: seconds for one HTTP request to the feed.
    """

    def __init__(
        self,
        *,
        url: str,
        credential: str,
        poll_interval: float = 0.25,
        max_staleness: float = 1.0,
        wait: float = 0.5,
        timeout: float = 2.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL of Kizuna's /api/revocations")
        if not credential or any(c.isspace() for c in credential):
            raise ValueError("credential must be the kzs_… string `kizuna services create` printed")
        if not 0 < poll_interval < max_staleness:
            raise ValueError("poll_interval must be positive and shorter than max_staleness")
        if wait < 0 or timeout <= 0:
            raise ValueError("wait must be >= 0 and timeout > 0")
        self.url = url
        self._authorization = f"Bearer {credential}"
        self.poll_interval = poll_interval
        self.max_staleness = max_staleness
        self.wait = wait
        self.timeout = timeout
        self._leeway = 0.0
        self._client: Callable[[], httpx.AsyncClient] | None = None
        self._task: asyncio.Task[None] | None = None
        self._after: int | None = None
        self._revoked: dict[str, float] = {}  # session id -> keep until (monotonic)
        self._users: dict[str, UserState] = {}
        self._expiry: deque[tuple[float, str, str]] = deque()  # (keep until, kind, key)
        self._heard_at = -math.inf  # monotonic start of the last successful poll
        self._failing = False
        self.last_error = ""
        self._heard = asyncio.Event()

    # -- lifecycle (driven by Verifier.start / close) -----------------------------------------

    def start(self, client: Callable[[], httpx.AsyncClient], *, leeway: float) -> None:
        if self._task is not None:
            return
        self._client = client
        self._leeway = leeway
        self._heard = asyncio.Event()  # bound to the running loop from here on
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        self._heard_at = -math.inf  # closed: nothing is vouched for any more
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the questions asked for every token ------------------------------------------------

    def fresh(self) -> bool:
        return time.monotonic() - self._heard_at <= self.max_staleness

    async def until_fresh(self) -> None:
        """Returns once the feed is fresh; raises ``Unavailable`` when it is not and will not
        be soon. A stale feed that is not failing (start-up, a stalled loop) is waited for, at
        most ``wait`` seconds; a failing one is refused at once."""
        if self.fresh():
            return
        if self._task is None or self._task.done():
            raise Unavailable("revocation_feed", "the revocation feed is not running")
        deadline = time.monotonic() + self.wait
        while not self.fresh():
            remaining = deadline - time.monotonic()
            if self._failing or remaining <= 0:
                age = time.monotonic() - self._heard_at
                heard = "never" if math.isinf(age) else f"{age:.1f} s ago"
                raise Unavailable(
                    "revocation_feed", f"last heard {heard}; {self.last_error}".rstrip("; ")
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._heard.wait(), remaining)

    def check(self, session_id: str, user_id: str) -> UserState | None:
        """Raises ``InvalidToken`` for an ended session or a disabled user; the user's current
        state when the feed has said something about them lately, else None."""
        if session_id in self._revoked:
            raise InvalidToken(Reason.revoked, "the session has ended")
        state = self._users.get(user_id)
        if state is not None and state.disabled:
            raise InvalidToken(Reason.user_disabled, "the user is disabled")
        return state

    # -- polling ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self._poll()
            except Exception as exc:  # any failure is a poll that did not happen: fail closed
                if not self._failing:
                    expected = isinstance(exc, httpx.HTTPError | ValueError)
                    log.warning(
                        "kizuna_verifier: revocation feed %s failed: %s",
                        self.url,
                        exc,
                        exc_info=None if expected else exc,
                    )
                self._failing, self.last_error = True, str(exc) or type(exc).__name__
            else:
                if self._failing:
                    log.warning("kizuna_verifier: revocation feed %s is back", self.url)
                self._heard_at, self._failing, self.last_error = started, False, ""
                heard, self._heard = self._heard, asyncio.Event()
                heard.set()
            await asyncio.sleep(self.poll_interval)

    async def _poll(self) -> None:
        """Reads pages until the feed says there is no more: only then is everything that was
        committed before this poll started known."""
        assert self._client is not None
        while True:
            params = {} if self._after is None else {"after": str(self._after)}
            response = await self._client().get(
                self.url,
                params=params,
                headers={"Authorization": self._authorization, "Accept": "application/json"},
                timeout=self.timeout,
            )
            if response.status_code == 401:
                raise ValueError("the service credential was refused (401)")
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            page = _page(response.json())
            self._keep(page)
            self._after = page.seq
            if not page.more:
                break
        self._forget_expired()

    def _keep(self, page: _Page) -> None:
        # Kept for as long as a token issued just before the entry can live, plus the leeway
        # this verifier allows on ``exp``.
        until = time.monotonic() + page.retain_seconds + self._leeway
        for entry in page.entries:
            kind = entry.get("kind")
            if kind == "session":
                key = entry["session_id"]
                self._revoked[key] = until
            elif kind == "user":
                key = entry["user_id"]
                self._users[key] = UserState(entry["disabled"], frozenset(entry["roles"]), until)
            else:
                # A kind this version does not know: newer than us. Logged, not fatal.
                log.warning("kizuna_verifier: unknown revocation feed entry kind %r", kind)
                continue
            self._expiry.append((until, kind, key))

    def _forget_expired(self) -> None:
        now = time.monotonic()
        while self._expiry and self._expiry[0][0] <= now:
            until, kind, key = self._expiry.popleft()
            # A newer entry for the same key has its own, later, time: leave it.
            if kind == "session" and self._revoked.get(key) == until:
                del self._revoked[key]
            elif kind == "user":
                state = self._users.get(key)
                if state is not None and state.keep_until == until:
                    del self._users[key]

    @property
    def seq(self) -> int | None:
        """The number of the newest entry read (None before the first poll)."""
        return self._after

    @property
    def sizes(self) -> tuple[int, int]:
        """How many ended sessions and changed users are held now."""
        return len(self._revoked), len(self._users)
