"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from kizuna.errors import Code

# Passwords presented to be checked are bounded here only against abuse. A NEW password is
# not bounded here at all (the body limit bounds it): its length is the policy's to judge, so
# too short (even empty) and too long answer 422 weak_password, as docs/protocol.md §4 says.
_Password = Field(min_length=1, max_length=1024)
Role = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")


def _printable(value: str) -> str:
    # An address or a name never holds a control character, and PostgreSQL refuses a NUL in
    # text outright: refused here, as the client's error, before it reaches the store.
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError("must not contain control characters")
    return value


Printable = AfterValidator(_printable)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class LoginBody(_Body):
    email: Annotated[str, Printable] = Field(min_length=3, max_length=320)
    password: str = _Password


class RegisterBody(_Body):
    email: Annotated[EmailStr, Printable] = Field(max_length=320)
    password: str
    name: Annotated[str, Printable] | None = Field(default=None, max_length=200)


class PasswordBody(_Body):
    current_password: str = _Password
    new_password: str


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    roles: list[str]


class LoginOut(BaseModel):
    user: UserOut
    session_id: str
    access_token_expires_at: str
    refresh_token_expires_at: str


class RefreshOut(BaseModel):
    access_token_expires_at: str
    refresh_token_expires_at: str


class SessionBrief(BaseModel):
    id: str
    device_id: str
    created_at: str
    expires_at: str


class UserInfo(BaseModel):
    sub: str
    email: str
    name: str
    roles: list[str]
    session: SessionBrief


class SessionOut(BaseModel):
    id: str
    device_id: str
    user_agent: str
    ip: str
    created_at: str
    last_used_at: str
    current: bool


class AdminUserOut(UserOut):
    disabled: bool
    created_at: str


class AdminUserPage(BaseModel):
    """A page of users in email order. ``next_cursor`` / ``prev_cursor``: pass one as
    ``cursor`` (with the same ``q``) for the page after / before this one; null at either end."""

    users: list[AdminUserOut]
    next_cursor: str | None
    prev_cursor: str | None


class AdminSessionOut(BaseModel):
    id: str
    device_id: str
    user_agent: str
    ip: str
    created_at: str
    last_used_at: str
    expires_at: str
    # live: usable now; revoked: ended (see revoke_reason); expired: past its lifetime or idle
    state: Literal["live", "revoked", "expired"]
    revoked_at: str | None
    revoke_reason: str | None


class AdminUserDetail(BaseModel):
    """A user and their sessions, newest first (at most 50: ``more_sessions`` says there are
    older ones)."""

    user: AdminUserOut
    sessions: list[AdminSessionOut]
    more_sessions: bool


class SecurityEventOut(BaseModel):
    id: int
    at: str
    # refresh_token_reused, login_throttled, password_changed, …
    kind: str
    session_id: str | None
    ip: str
    user_agent: str
    detail: dict[str, str]


class SecurityEventPage(BaseModel):
    """A page of a user's security events, newest first; ``next_cursor`` for older ones."""

    events: list[SecurityEventOut]
    next_cursor: str | None


class AdminUserPatch(_Body):
    roles: list[str] | None = Field(default=None, max_length=16)
    disabled: bool | None = None

    def validated_roles(self) -> list[str] | None:
        if self.roles is None:
            return None
        return sorted(set(self.roles))


class SessionRevoked(BaseModel):
    """A session has ended: refuse every token whose ``sid`` is ``session_id``."""

    seq: int
    kind: Literal["session"]
    session_id: str


class UserChanged(BaseModel):
    """A user changed; this is the user now. Refuse their tokens while ``disabled``, and grant
    only the token's roles that are also in ``roles``."""

    seq: int
    kind: Literal["user"]
    user_id: str
    disabled: bool
    roles: list[str]


class RevocationFeedOut(BaseModel):
    """A page of the revocation feed: ask ``after=seq`` next (at once while ``more``). An
    entry matters for ``retain_seconds`` after it is read; then every token it concerns has
    expired."""

    seq: int
    more: bool
    retain_seconds: int
    entries: list[Annotated[SessionRevoked | UserChanged, Field(discriminator="kind")]]


class FieldError(BaseModel):
    loc: list[str]
    msg: str


class ProblemDetails(BaseModel):
    """Every error: RFC 9457 problem details (``application/problem+json``) with a stable
    ``code``. ``errors`` comes with ``validation_error`` only; a problem may carry other
    members (RFC 9457 §3.2)."""

    type: str
    title: str
    status: int
    detail: str
    code: Code
    errors: list[FieldError] | None = None
