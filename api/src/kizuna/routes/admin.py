"""``/api/admin/*``: user management for role ``admin``: users a page at a time (searched by
email prefix), one user with their sessions, their security events, and changes to roles and
the disabled flag."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query

from kizuna import accounts
from kizuna.clock import iso, utcnow
from kizuna.db import Tx
from kizuna.deps import AdminDep, ServicesDep
from kizuna.errors import Code
from kizuna.page_cursors import MAX_LENGTH, BadCursor, PageCursors
from kizuna.problems import Problem, problem_responses
from kizuna.routing import KizunaRoute
from kizuna.schemas import (
    AdminSessionOut,
    AdminUserDetail,
    AdminUserOut,
    AdminUserPage,
    AdminUserPatch,
    SecurityEventOut,
    SecurityEventPage,
)
from kizuna.store import NotFound
from kizuna.store import security_events as event_store
from kizuna.store import sessions as session_store
from kizuna.store import users as user_store
from kizuna.store.security_events import EventRecord
from kizuna.store.sessions import SessionOfUser
from kizuna.store.users import UserRecord

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=KizunaRoute)
log = structlog.get_logger("kizuna.admin")
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SESSIONS_SHOWN = 50

Limit = Annotated[int, Query(ge=1, le=200, description="How many per page (1 to 200).")]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_LENGTH, description="A next_cursor or prev_cursor from an answer."),
]


def _out(user: UserRecord) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=list(user.roles),
        disabled=user.disabled,
        created_at=iso(user.created_at),
    )


def _refused(name: str, message: str) -> Problem:
    # Answered as FastAPI answers a query parameter it cannot read: 422 with the location.
    return Problem(
        Code.validation_error,
        extra={"errors": [{"loc": ["query", name], "msg": message}]},
    )


def _opened(cursors: PageCursors, list_name: str, cursor: str) -> dict[str, Any]:
    try:
        return cursors.open(list_name, cursor)
    except BadCursor:
        raise _refused(
            "cursor", "Not a cursor this server gave out for this list; start again."
        ) from None


@router.get("/users", response_model=AdminUserPage, responses=problem_responses(422))
async def list_users(
    _admin: AdminDep,
    services: ServicesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    q: Annotated[
        str,
        Query(max_length=320, description="Only users whose email starts with this (any case)."),
    ] = "",
) -> AdminUserPage:
    """Users in email order, a page at a time, however many there are."""
    prefix = user_store.normalize_email(q)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in prefix):
        raise _refused("q", "An email has no control characters.")
    cursors = PageCursors(services.keyring)
    after = before = None
    if cursor is not None:
        position = _opened(cursors, "users", cursor)
        email, direction = position.get("e"), position.get("d")
        if position.get("q") != prefix:
            raise _refused("cursor", "This cursor belongs to another search; start again.")
        if not isinstance(email, str) or direction not in ("after", "before"):
            raise _refused("cursor", "Not a cursor this server gave out for this list.")
        after, before = (email, None) if direction == "after" else (None, email)

    # One more than the page, to know whether there is another page in that direction.
    rows = await services.db.read(
        lambda tx: user_store.page(tx, limit=limit + 1, prefix=prefix, after=after, before=before)
    )
    more = len(rows) > limit
    if before is not None:
        users = rows[1:] if more else rows
        earlier, later = more, True
    else:
        users = rows[:limit]
        earlier, later = cursor is not None, more

    def sealed(direction: str, user: UserRecord) -> str:
        return cursors.seal("users", {"d": direction, "e": user.email, "q": prefix})

    return AdminUserPage(
        users=[_out(user) for user in users],
        next_cursor=sealed("after", users[-1]) if users and later else None,
        prev_cursor=sealed("before", users[0]) if users and earlier else None,
    )


def _session_out(found: SessionOfUser, now: datetime) -> AdminSessionOut:
    session = found.session
    if session.revoked_at is not None:
        state = "revoked"
    elif (
        session.expires_at <= now or found.token_expires_at is None or found.token_expires_at <= now
    ):
        state = "expired"
    else:
        state = "live"
    return AdminSessionOut(
        id=session.id,
        device_id=session.device_id,
        user_agent=session.user_agent,
        ip=session.ip,
        created_at=iso(session.created_at),
        last_used_at=iso(session.last_used_at),
        expires_at=iso(session.expires_at),
        state=state,
        revoked_at=None if session.revoked_at is None else iso(session.revoked_at),
        revoke_reason=session.revoke_reason,
    )


@router.get("/users/{user_id}", response_model=AdminUserDetail, responses=problem_responses(404))
async def get_user(user_id: str, _admin: AdminDep, services: ServicesDep) -> AdminUserDetail:
    """A user and their sessions (live, revoked and expired), newest first."""

    def work(tx: Tx) -> tuple[UserRecord | None, list[SessionOfUser]]:
        user = user_store.get(tx, user_id=user_id)
        if user is None:
            return None, []
        return user, session_store.of_user(tx, user_id=user_id, limit=_SESSIONS_SHOWN + 1)

    user, sessions = await services.db.read(work)
    if user is None:
        raise Problem(Code.not_found, detail="No such user.")
    now = utcnow()
    return AdminUserDetail(
        user=_out(user),
        sessions=[_session_out(found, now) for found in sessions[:_SESSIONS_SHOWN]],
        more_sessions=len(sessions) > _SESSIONS_SHOWN,
    )


def _event_out(event: EventRecord) -> SecurityEventOut:
    return SecurityEventOut(
        id=event.id,
        at=iso(event.at),
        kind=event.kind,
        session_id=event.session_id,
        ip=event.ip,
        user_agent=event.user_agent,
        detail={str(key): str(value) for key, value in event.detail.items()},
    )


@router.get(
    "/users/{user_id}/events",
    response_model=SecurityEventPage,
    responses=problem_responses(404, 422),
)
async def list_user_events(
    user_id: str,
    _admin: AdminDep,
    services: ServicesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SecurityEventPage:
    """The user's security events, newest first, a page at a time."""
    cursors = PageCursors(services.keyring)
    older_than = None
    if cursor is not None:
        position = _opened(cursors, "events", cursor)
        if position.get("u") != user_id:
            raise _refused("cursor", "This cursor belongs to another user's events.")
        try:
            older_than = (datetime.fromisoformat(position["at"]), int(position["id"]))
        except (KeyError, TypeError, ValueError):
            raise _refused("cursor", "Not a cursor this server gave out for this list.") from None

    def work(tx: Tx) -> list[EventRecord] | None:
        if user_store.get(tx, user_id=user_id) is None:
            return None
        return event_store.page_of_user(tx, user_id=user_id, limit=limit + 1, older_than=older_than)

    events = await services.db.read(work)
    if events is None:
        raise Problem(Code.not_found, detail="No such user.")
    shown = events[:limit]
    next_cursor = None
    if len(events) > limit:
        last = shown[-1]
        # The exact stamp (microseconds), so the next page starts right after this event.
        next_cursor = cursors.seal(
            "events", {"u": user_id, "at": last.at.isoformat(), "id": last.id}
        )
    return SecurityEventPage(events=[_event_out(event) for event in shown], next_cursor=next_cursor)


@router.patch(
    "/users/{user_id}", response_model=AdminUserOut, responses=problem_responses(404, 422)
)
async def update_user(
    user_id: str, body: AdminUserPatch, admin: AdminDep, services: ServicesDep
) -> AdminUserOut:
    roles = body.validated_roles()
    if roles is not None and not all(_ROLE.fullmatch(role) for role in roles):
        raise Problem(Code.validation_error, detail="Roles are lower-case words.")

    now = utcnow()
    try:
        user = await services.db.write(
            lambda tx: user_store.update(
                tx, user_id=user_id, now=now, roles=roles, disabled=body.disabled
            )
        )
    except NotFound:
        raise Problem(Code.not_found, detail="No such user.") from None
    out = _out(user)
    if body.disabled:
        await accounts.revoke_user(services, user_id=user_id, reason="user_disabled")
    services.session_cache.forget_user(user_id)
    log.info(
        "user_updated",
        user_id=user_id,
        by=admin.user_id,
        roles=roles,
        disabled=body.disabled,
    )
    return out
