"""The key ring: asymmetric keys that sign access tokens, and MAC keys for refresh tokens.

Layout under ``<data dir>/keys``: ``keyring.json`` (the manifest) plus one file per key,
all readable by the owner only. The newest signing key signs; a retired key stays published
(and accepted) until every access token it signed has expired, so a rotation logs nobody out.
Refresh MAC keys never leave this directory: a copy of the database alone cannot mint or use a
refresh token.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from kizuna.clock import iso, utcnow

MANIFEST = "keyring.json"
ASYMMETRIC_ALGS = ("ES256", "RS256", "EdDSA")
_RELOAD_EVERY = 2.0  # seconds between manifest mtime checks


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKeyTypes
    public_key: PublicKeyTypes
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True)
class MacKey:
    kid: str
    secret: bytes
    created_at: datetime


def _generate_private_key(alg: str) -> PrivateKeyTypes:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by the owner only; never overwrite an existing key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _new_kid() -> str:
    return utcnow().strftime("%Y%m%d") + "-" + secrets.token_hex(6)


def public_jwk(key: SigningKey) -> dict[str, Any]:
    algo = jwt.get_algorithm_by_name(key.alg)
    jwk: dict[str, Any] = dict(algo.to_jwk(key.public_key, as_dict=True))
    jwk.update({"kid": key.kid, "alg": key.alg, "use": "sig"})
    return jwk


class KeyRing:
    def __init__(self, directory: Path, *, alg: str, access_ttl: int, leeway: int) -> None:
        self.directory = directory
        self.alg = alg
        # How long a retired key stays published: the life of the last token it signed. A
        # server that has not yet re-read the manifest after a rotation by another process
        # signs with the old key for up to _RELOAD_EVERY seconds more.
        self.overlap = timedelta(seconds=access_ttl + leeway + _RELOAD_EVERY)
        self._signing: list[SigningKey] = []
        self._mac: list[MacKey] = []
        self._mtime_ns = -1
        self._checked_at = 0.0
        self._jwks_cache: tuple[float, dict[str, Any]] | None = None

    # -- loading ---------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def ensure(self) -> None:
        """Create the directory and a first key pair if none exists (first start)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.manifest_path.exists():
            self._write_manifest({"signing": [], "refresh": []})
            self._add_signing_key(self.alg, retire_current=False)
            self._add_mac_key()
        self.load()
        if not self._mac:
            self._add_mac_key()
            self.load()
        if not any(k.retired_at is None for k in self._signing):
            self._add_signing_key(self.alg, retire_current=False)
            self.load()

    def load(self) -> None:
        stat = self.manifest_path.stat()
        manifest = json.loads(self.manifest_path.read_text())
        signing: list[SigningKey] = []
        for entry in manifest["signing"]:
            pem = (self.directory / f"signing-{entry['kid']}.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=None)
            retired = entry.get("retired_at")
            signing.append(
                SigningKey(
                    kid=entry["kid"],
                    alg=entry["alg"],
                    private_key=private,
                    public_key=private.public_key(),
                    created_at=datetime.fromisoformat(entry["created_at"]),
                    retired_at=datetime.fromisoformat(retired) if retired else None,
                )
            )
        mac: list[MacKey] = []
        for entry in manifest["refresh"]:
            secret = base64.b64decode((self.directory / f"refresh-{entry['kid']}.key").read_bytes())
            mac.append(
                MacKey(
                    kid=entry["kid"],
                    secret=secret,
                    created_at=datetime.fromisoformat(entry["created_at"]),
                )
            )
        self._signing, self._mac = signing, mac
        self._mtime_ns = stat.st_mtime_ns
        self._checked_at = time.monotonic()
        self._jwks_cache = None

    def maybe_reload(self) -> None:
        """Pick up a rotation done by ``kizuna keys rotate`` in another process."""
        now = time.monotonic()
        if now - self._checked_at < _RELOAD_EVERY:
            return
        self._checked_at = now
        try:
            mtime = self.manifest_path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._mtime_ns:
            self.load()

    # -- rotation --------------------------------------------------------------------------

    def rotate(self, alg: str | None = None) -> SigningKey:
        """New signing key (and refresh MAC key); the old signing key is retired, not deleted."""
        self.load()
        key = self._add_signing_key(alg or self.alg, retire_current=True)
        self._add_mac_key()
        self.load()
        return key

    def _add_signing_key(self, alg: str, *, retire_current: bool) -> SigningKey:
        # Make the key first (an RSA key takes a while): the retirement time must be the
        # moment the manifest announces it, or the overlap would start before anyone knows.
        private = _generate_private_key(alg)
        kid = _new_kid()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.directory / f"signing-{kid}.pem", pem)
        manifest = json.loads(self.manifest_path.read_text())
        now = utcnow()
        if retire_current:
            for entry in manifest["signing"]:
                if not entry.get("retired_at"):
                    entry["retired_at"] = now.isoformat()
        manifest["signing"].append({"kid": kid, "alg": alg, "created_at": now.isoformat()})
        self._write_manifest(manifest)
        return SigningKey(kid, alg, private, private.public_key(), now, None)

    def _add_mac_key(self) -> None:
        manifest = json.loads(self.manifest_path.read_text())
        kid = "r" + _new_kid()
        _write_private(
            self.directory / f"refresh-{kid}.key", base64.b64encode(secrets.token_bytes(32))
        )
        manifest["refresh"].append({"kid": kid, "created_at": utcnow().isoformat()})
        self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.directory / f".{MANIFEST}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(manifest, handle, indent=2)
        os.replace(tmp, self.manifest_path)

    # -- use -------------------------------------------------------------------------------

    @property
    def signing_key(self) -> SigningKey:
        self.maybe_reload()
        live = [k for k in self._signing if k.retired_at is None]
        return live[-1]

    def published(self) -> list[SigningKey]:
        """Every key that may still verify a live access token."""
        self.maybe_reload()
        now = utcnow()
        return [
            k for k in self._signing if k.retired_at is None or k.retired_at + self.overlap > now
        ]

    def verification_key(self, kid: str) -> SigningKey | None:
        for key in self.published():
            if key.kid == kid:
                return key
        return None

    def key_retired_within(self, kid: str, horizon: timedelta) -> SigningKey | None:
        """The signing key ``kid`` if it signs, or retired less than ``horizon`` ago; kept on
        disk (never published again) so a token it signed can still be read where only its
        session id matters (logout)."""
        self.maybe_reload()
        now = utcnow()
        for key in self._signing:
            if key.kid == kid and (key.retired_at is None or key.retired_at + horizon > now):
                return key
        return None

    @property
    def mac_key(self) -> MacKey:
        self.maybe_reload()
        return self._mac[-1]

    def mac_key_by_id(self, kid: str) -> MacKey | None:
        self.maybe_reload()
        for key in self._mac:
            if key.kid == kid:
                return key
        return None

    def jwks(self) -> dict[str, Any]:
        self.maybe_reload()
        now = time.monotonic()
        if self._jwks_cache is None or now - self._jwks_cache[0] > 1.0:
            self._jwks_cache = (now, {"keys": [public_jwk(k) for k in self.published()]})
        return self._jwks_cache[1]

    def describe(self) -> list[dict[str, str]]:
        published = {k.kid for k in self.published()}
        return [
            {
                "kid": k.kid,
                "alg": k.alg,
                "created_at": iso(k.created_at),
                "state": "signing"
                if k.retired_at is None
                else ("published" if k.kid in published else "expired"),
            }
            for k in self._signing
        ]
