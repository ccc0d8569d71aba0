"""Access tokens (asymmetric JWTs the web tier can verify) and refresh tokens (MACed JWTs
only this server can verify). Each verifier pins its algorithms and its ``typ``, so one kind
can never pass as the other."""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import jwt
from jwt.algorithms import HMACAlgorithm

from kizuna.keys import ASYMMETRIC_ALGS, KeyRing, SigningKey

ACCESS_TYP = "at+jwt"
REFRESH_TYP = "rt+jwt"
REFRESH_ALG = "HS256"
_ACCESS_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "sid", "jti"]
_REFRESH_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "sid", "jti"]


class _VettedHMAC(HMACAlgorithm):
    """HS256 that vets each secret once, not on every token. PyJWT re-checks a raw HMAC
    secret on each encode and decode (is it a PEM, an SSH or a DER key? two failed DER parses
    among them): 6% of a refresh's event-loop time, measured, for the same few secrets. It is
    a pure function of the key, so remembering its answer changes nothing else."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._vetted: dict[bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        if isinstance(key, bytes):
            known = self._vetted.get(key)
            if known is not None:
                return known
        prepared = super().prepare_key(key)
        if isinstance(key, bytes) and len(self._vetted) < 64:  # a handful of MAC keys
            self._vetted[key] = prepared
        return prepared


def _refresh_jwt() -> jwt.PyJWT:
    """A PyJWT of the refresh-token verifier's own, whose HS256 is ``_VettedHMAC``. Each
    ``PyJWT`` has its own ``PyJWS`` and algorithm table (PyJWT 2.x), so the module-level
    ``jwt.encode``/``jwt.decode`` of the process, which a host app may use, are left alone."""
    instance = jwt.PyJWT()
    table = instance._jws  # the instance's own signer (see above)
    table.unregister_algorithm(REFRESH_ALG)
    table.register_algorithm(REFRESH_ALG, _VettedHMAC())
    return instance


class TokenError(Exception):
    """A token that must not be accepted; ``expired`` tells the refresh path's 401 apart."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


@dataclass(frozen=True, slots=True)
class AccessClaims:
    sub: str
    sid: str
    jti: str
    exp: int
    iat: int
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    sub: str
    sid: str
    jti: str
    exp: int
    iat: int
    kid: str


def _numeric_date(payload: dict[str, Any], claim: str) -> int:
    """A NumericDate claim (RFC 7519 §2: a JSON number) as whole seconds. PyJWT checks ``exp``
    only when it verifies expiry, and takes any ``int()``-able value (a numeric string)."""
    value = payload[claim]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"bad {claim}")
    if isinstance(value, float) and not math.isfinite(value):
        raise TokenError(f"bad {claim}")
    return int(value)


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, read without verifying anything: only to choose the key. PyJWT's own
    reader validates every segment character by character, and ``decode`` does that again."""
    head, dot, _ = token.partition(".")
    if not dot or len(head) > 1024:
        raise TokenError("malformed")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise TokenError("malformed") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed")
    return header


class AccessTokens:
    """Signs and verifies access tokens. Verified token bytes are remembered until they
    expire: an ES256 verification costs as much as a whole cheap request, and the same
    token arrives many times during its few minutes of life."""

    def __init__(
        self,
        keyring: KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl: int,
        leeway: int,
        logout_horizon: int = 2_592_000,
        cache_size: int = 50_000,
    ) -> None:
        self.keyring = keyring
        # How long after its key is retired a token can still be in a browser's access cookie
        # (the cookie lives as long as the refresh cookie): logout must still read its sid.
        self.logout_horizon = timedelta(seconds=logout_horizon)
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.leeway = leeway
        self._cache: OrderedDict[str, AccessClaims] = OrderedDict()
        self._cache_size = cache_size

    def issue(
        self, *, sub: str, sid: str, roles: list[str], now: int | None = None
    ) -> tuple[str, int]:
        key = self.keyring.signing_key
        iat = int(now if now is not None else time.time())
        exp = iat + self.ttl
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "sid": sid,
            "jti": secrets.token_urlsafe(16),
            "iat": iat,
            "exp": exp,
            "roles": list(roles),
        }
        token = jwt.encode(
            payload,
            key.private_key,  # type: ignore[arg-type]  # only ES256/RS256/EdDSA keys are made
            algorithm=key.alg,
            headers={"kid": key.kid, "typ": ACCESS_TYP},
        )
        return token, exp

    def verify(self, token: str, *, verify_exp: bool = True) -> AccessClaims:
        cached = self._cache.get(token)
        if cached is not None:
            if verify_exp and cached.exp + self.leeway < time.time():
                raise TokenError("expired", expired=True)
            return cached
        claims = self._verify_uncached(token, verify_exp=verify_exp)
        if verify_exp:
            self._cache[token] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return claims

    def session_of(self, token: str) -> str:
        """The session id of an access token presented at logout: signature, issuer and
        audience checked, expiry not, and its key may be retired and unpublished (a key
        rotation must not leave a session that nobody can end)."""
        return self._verify_uncached(
            token,
            verify_exp=False,
            key_of=lambda kid: self.keyring.key_retired_within(kid, self.logout_horizon),
        ).sid

    def _verify_uncached(
        self,
        token: str,
        *,
        verify_exp: bool,
        key_of: Callable[[str], SigningKey | None] | None = None,
    ) -> AccessClaims:
        header = _header(token)
        # Only kid, alg and typ are read from the header; jwk/jku/x5u/x5c are never trusted.
        if header.get("typ") != ACCESS_TYP:
            raise TokenError("wrong typ")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenError("no kid")
        key = (key_of or self.keyring.verification_key)(kid)
        if key is None:
            raise TokenError("unknown kid")
        if header.get("alg") != key.alg or key.alg not in ASYMMETRIC_ALGS:
            raise TokenError("alg mismatch")
        try:
            payload = jwt.decode(
                token,
                key.public_key,  # type: ignore[arg-type]
                algorithms=[key.alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _ACCESS_REQUIRED, "verify_exp": verify_exp},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("expired", expired=True) from exc
        except jwt.PyJWTError as exc:
            raise TokenError("invalid") from exc
        roles = payload.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenError("bad roles")
        for claim in ("sub", "sid", "jti"):
            if not isinstance(payload[claim], str):
                raise TokenError(f"bad {claim}")
        return AccessClaims(
            sub=payload["sub"],
            sid=payload["sid"],
            jti=payload["jti"],
            exp=_numeric_date(payload, "exp"),
            iat=_numeric_date(payload, "iat"),
            roles=tuple(roles),
        )


class RefreshRecord(Protocol):
    """What a refresh token is computed from: the store's record (``TokenRecord``)."""

    @property
    def id(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def issued_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def key_id(self) -> str: ...


class RefreshTokens:
    """Refresh tokens are HS256 JWTs whose every field comes from the store's record, so the
    same record always yields the same bytes: the grace window of rotation rule 4 hands the
    winner's token to racing requests without the database ever holding it."""

    def __init__(self, keyring: KeyRing, *, issuer: str, leeway: int) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = issuer + "#refresh"
        self.leeway = leeway
        self._jwt = _refresh_jwt()

    def encode(
        self,
        *,
        token_id: str,
        session_id: str,
        user_id: str,
        issued_at: datetime,
        expires_at: datetime,
        key_id: str,
    ) -> str:
        key = self.keyring.mac_key_by_id(key_id)
        if key is None:
            raise TokenError("mac key gone")
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "sid": session_id,
            "jti": token_id,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        return self._jwt.encode(
            payload, key.secret, algorithm=REFRESH_ALG, headers={"kid": key.kid, "typ": REFRESH_TYP}
        )

    def for_record(self, record: RefreshRecord) -> str:
        return self.encode(
            token_id=record.id,
            session_id=record.session_id,
            user_id=record.user_id,
            issued_at=record.issued_at,
            expires_at=record.expires_at,
            key_id=record.key_id,
        )

    def verify(self, token: str, *, verify_exp: bool = True) -> RefreshClaims:
        header = _header(token)
        if header.get("typ") != REFRESH_TYP or header.get("alg") != REFRESH_ALG:
            raise TokenError("wrong type")
        kid = header.get("kid")
        key = self.keyring.mac_key_by_id(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("unknown kid")
        try:
            payload = self._jwt.decode(
                token,
                key.secret,
                algorithms=[REFRESH_ALG],
                audience=self.audience,
                issuer=self.issuer,
                leeway=0,
                # `iat` is checked below, with the leeway: no leeway on `exp`.
                options={
                    "require": _REFRESH_REQUIRED,
                    "verify_exp": verify_exp,
                    "verify_iat": False,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("expired", expired=True) from exc
        except jwt.PyJWTError as exc:
            raise TokenError("invalid") from exc
        for claim in ("sub", "sid", "jti"):
            if not isinstance(payload[claim], str):
                raise TokenError(f"bad {claim}")
        # A token another replica issued a moment ago is dated by that replica's (or the
        # store's) clock, which may run ahead of ours by up to the leeway.
        if _numeric_date(payload, "iat") > time.time() + self.leeway:
            raise TokenError("issued in the future")
        return RefreshClaims(
            sub=payload["sub"],
            sid=payload["sid"],
            jti=payload["jti"],
            exp=_numeric_date(payload, "exp"),
            iat=_numeric_date(payload, "iat"),
            kid=key.kid,
        )
