"""Every problem the API answers, in one table: its stable ``code``, HTTP status and the
sentence a client may show. ``problems.py`` turns an entry into a response; the web tier's
words for each code are typed against this list (through the OpenAPI document)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.StrEnum):
    # auto(): each value is its name, lower-case (StrEnum).
    bad_request = enum.auto()
    unauthenticated = enum.auto()
    invalid_token = enum.auto()
    invalid_credentials = enum.auto()
    service_credential_invalid = enum.auto()
    refresh_token_missing = enum.auto()
    refresh_token_invalid = enum.auto()
    refresh_token_expired = enum.auto()
    refresh_token_revoked = enum.auto()
    refresh_token_reused = enum.auto()
    session_expired = enum.auto()
    forbidden = enum.auto()
    signup_closed = enum.auto()
    not_found = enum.auto()
    method_not_allowed = enum.auto()
    email_taken = enum.auto()
    payload_too_large = enum.auto()
    unsupported_media_type = enum.auto()
    validation_error = enum.auto()
    weak_password = enum.auto()
    too_many_attempts = enum.auto()
    internal_error = enum.auto()
    store_unavailable = enum.auto()
    server_busy = enum.auto()


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    detail: str
    headers: tuple[tuple[str, str], ...] = ()


BEARER = "Bearer"
BEARER_INVALID = 'Bearer error="invalid_token"'
_RETRY_SOON = (("Retry-After", "1"),)

CATALOGUE: dict[Code, Entry] = {
    Code.bad_request: Entry(400, "The request cannot be read."),
    Code.unauthenticated: Entry(401, "Sign in first.", (("WWW-Authenticate", BEARER),)),
    Code.invalid_token: Entry(
        401,
        "The access token is invalid, expired or revoked.",
        (("WWW-Authenticate", BEARER_INVALID),),
    ),
    Code.invalid_credentials: Entry(401, "The email or password is wrong."),
    # The revocation feed's caller: a resource server, not a user.
    Code.service_credential_invalid: Entry(
        401,
        "The service credential is missing, unknown or revoked.",
        (("WWW-Authenticate", BEARER_INVALID),),
    ),
    Code.refresh_token_missing: Entry(401, "No refresh token was sent."),
    Code.refresh_token_invalid: Entry(401, "The refresh token is not valid."),
    Code.refresh_token_expired: Entry(401, "The refresh token has expired; sign in again."),
    Code.refresh_token_revoked: Entry(401, "The session has ended; sign in again."),
    Code.refresh_token_reused: Entry(
        401, "This refresh token was used before; the session is ended for safety."
    ),
    Code.session_expired: Entry(401, "The session reached its maximum age; sign in again."),
    Code.forbidden: Entry(403, "This needs the admin role."),
    Code.signup_closed: Entry(403, "Sign-up is switched off on this server."),
    Code.not_found: Entry(404, "No such resource."),
    Code.method_not_allowed: Entry(405, "This method is not allowed here."),
    Code.email_taken: Entry(409, "An account with this email exists already."),
    Code.payload_too_large: Entry(413, "The request body is too large."),
    Code.unsupported_media_type: Entry(415, "This content type is not accepted here."),
    Code.validation_error: Entry(422, "The request is malformed."),
    Code.weak_password: Entry(422, "This password is too weak."),
    # Retry-After is the number of seconds of each case; the raiser supplies it.
    Code.too_many_attempts: Entry(429, "Too many failed attempts; wait before trying again."),
    Code.internal_error: Entry(500, "Something went wrong on our side."),
    Code.store_unavailable: Entry(
        503, "The session store is not answering; try again shortly.", _RETRY_SOON
    ),
    Code.server_busy: Entry(
        503, "Too many sign-ins are being checked right now; try again in a moment.", _RETRY_SOON
    ),
}

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
