"""The revocation feed for resource servers that verify access tokens themselves, and the
service credentials that let them read it (``GET /api/revocations``, ``kizuna services``).

A verifier polls the feed by number, as the API's own session caches do (``session_cache.py``):
``after=<seq>`` answers the entries numbered above ``seq``, in commit order. Without ``after``
it answers where a new reader starts: the newest number, and the entries written within the
last access-token lifetime plus a margin, since a token issued before one of them may still be
live. Older entries cannot matter: every token they could affect has expired.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from kizuna.clock import utcnow
from kizuna.db import Tx
from kizuna.services import Services
from kizuna.store import changes, revocations
from kizuna.store import service_credentials as credential_store
from kizuna.store.revocations import RevocationEntry
from kizuna.store.service_credentials import ServiceCredentialRecord

PREFIX = "kzs_"
# 256 random bits, URL-safe base64 without padding: 43 characters.
_SECRET = re.compile(r"kzs_[A-Za-z0-9_-]{43}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PAGE = 1000
# Beyond the access-token lifetime: the verifier's leeway, clocks that disagree, and a
# transaction that commits a little after it stamped its entry.
MARGIN = 60


def new_secret() -> str:
    """A credential as printed to the operator: self-describing (``kzs_`` says what it is,
    for secret scanners and for a reader of a config file), then 256 random bits."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256, hex. A fast hash is right for a 256-bit random secret (nothing to guess), and
    makes the lookup a single indexed read."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def well_formed(secret: str) -> bool:
    """Cheap first filter: a user's access token, or anything else, is never looked up."""
    return _SECRET.fullmatch(secret) is not None


async def create_credential(
    services: Services, *, name: str
) -> tuple[str, ServiceCredentialRecord]:
    """Raises ``NameTaken``, or ``ValueError`` for a bad name; returns the secret (never
    stored) and the record."""
    if not NAME.fullmatch(name):
        raise ValueError(
            "a name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    secret = new_secret()
    now = utcnow()
    record = await services.db.write(
        lambda tx: credential_store.create(tx, name=name, secret_hash=hash_secret(secret), now=now)
    )
    return secret, record


def retain_seconds(services: Services) -> int:
    """How long an entry can matter: an access token issued just before it lives this long."""
    return services.settings.access_token_ttl + MARGIN


@dataclass(frozen=True, slots=True)
class FeedPage:
    seq: int  # ask ``after=seq`` next
    entries: list[RevocationEntry]
    more: bool  # another page is waiting: ask again at once


async def read_feed(services: Services, *, secret: str, after: int | None) -> FeedPage | None:
    """One page of the feed, or None when ``secret`` is not a live credential. The credential
    is checked in the same read as the feed, so a revoked credential reads nothing more."""
    if not well_formed(secret):
        return None
    secret_hash = hash_secret(secret)
    since = utcnow() - timedelta(seconds=retain_seconds(services))

    def work(tx: Tx) -> FeedPage | None:
        if credential_store.live_by_hash(tx, secret_hash=secret_hash) is None:
            return None
        # The newest number first, then the entries: numbers become visible in order
        # (store/changes.py), so every entry up to ``latest`` is visible to the second read,
        # and answering ``latest`` can skip nothing.
        latest = changes.latest(tx)
        if after is None:
            found = revocations.since(tx, at=since, limit=PAGE + 1)
        else:
            found = revocations.after(tx, seq=after, limit=PAGE + 1)
        if len(found) > PAGE:
            return FeedPage(seq=found[PAGE - 1].seq, entries=found[:PAGE], more=True)
        # A reader ahead of the store (restored from a backup) is brought back to its end.
        newest = max(latest, found[-1].seq) if found else latest
        return FeedPage(seq=newest, entries=found, more=False)

    return await services.db.read(work)
