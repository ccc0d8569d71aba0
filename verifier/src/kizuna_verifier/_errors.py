"""What a verification can end with besides a principal: a refused token, or no answer."""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Why a token was refused (``InvalidToken.reason``); stable strings, safe to log."""

    malformed = "malformed"
    wrong_typ = "wrong_typ"
    wrong_alg = "wrong_alg"  # not on the pinned list, or not the key's algorithm
    unknown_key = "unknown_key"
    bad_signature = "bad_signature"
    wrong_issuer = "wrong_issuer"
    wrong_audience = "wrong_audience"
    expired = "expired"
    not_yet_valid = "not_yet_valid"
    missing_claim = "missing_claim"
    bad_claim = "bad_claim"
    revoked = "revoked"  # its session has ended (revocation feed)
    user_disabled = "user_disabled"  # its user is disabled (revocation feed)


class VerificationError(Exception):
    """Base of both outcomes that are not a principal."""


class InvalidToken(VerificationError):
    """The token must not be accepted (HTTP 401). ``reason`` says which check refused it."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


class Unavailable(VerificationError):
    """The verifier cannot decide (HTTP 503): the keys cannot be fetched, or the revocation
    feed has not been heard from recently enough. Never an accepted token. ``reason`` is
    ``"keys"`` or ``"revocation_feed"``."""

    def __init__(self, reason: str, detail: str = "", *, retry_after: int = 1) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retry_after = retry_after
