"""The password policy (NIST SP 800-63B), and the one form a password takes before it is hashed."""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

MIN_LENGTH = 8
MAX_LENGTH = 128  # NIST 800-63B: allow at least 64; a bound keeps hashing cost bounded


class WeakPassword(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_text(password: str) -> bool:
    """False for a string that is not Unicode text (a lone surrogate): it has no UTF-8 form,
    so nothing could ever have been hashed from it."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalized(password: str) -> str:
    """NFKC (NIST SP 800-63B 5.1.1.2): the same password typed on keyboards that compose
    characters differently is the same password."""
    return unicodedata.normalize("NFKC", password)


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("kizuna").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def check_policy(password: str, *, email: str | None = None) -> None:
    """NIST 800-63B / ASVS 6.2: length and a blocklist, no composition rules."""
    if not is_text(password):
        raise WeakPassword("The password contains characters that are not text.")
    form = normalized(password)
    if len(form) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.")
    if len(form) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    lowered = form.lower()
    if lowered in common_passwords():
        raise WeakPassword("This password is too common; choose another.")
    if email and lowered in {email.lower(), email.split("@", 1)[0].lower()}:
        raise WeakPassword("The password must not be your email address.")
