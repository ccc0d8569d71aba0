"""The issuer's public keys (its JWKS), fetched over HTTP and kept in memory.

Keys are fetched once, again in the background when they are older than ``max_age``, and again
when a token names a ``kid`` that is not known (a key rotation). That last refetch is rate
limited: at most one every ``refetch_interval`` seconds (one a second after a failure), and
concurrent callers share one fetch in flight. A ``kid`` still unknown after a refetch is a
refusal, not another fetch: a stream of forged tokens with made-up ``kid``s cannot turn the
verifier into a load generator against the issuer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from kizuna_verifier._errors import InvalidToken, Reason, Unavailable

log = logging.getLogger("kizuna_verifier")

_EC_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})
# Members that only a private or symmetric key has: such a JWK has no place in a public set.
_SECRET_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_BYTES = 512 * 1024
_RETRY_AFTER_FAILURE = 1.0


def usable_algorithms(jwk: dict[str, Any], allowed: frozenset[str]) -> list[str]:
    """The pinned algorithms this JWK may verify: those its key type and curve allow, and
    only its declared ``alg`` when it has one."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "EC" and isinstance(crv, str) and crv in _EC_CURVES:
        fits = {_EC_CURVES[crv]}
    elif kty == "OKP" and crv in _OKP_CURVES:
        fits = {"EdDSA"}
    elif kty == "RSA":
        fits = set(_RSA_ALGS)
    else:
        return []
    declared = jwk.get("alg")
    if declared is not None:
        fits &= {declared}
    return sorted(fits & allowed)


def parse_jwks(document: Any, allowed: frozenset[str]) -> dict[str, dict[str, Any]]:
    """``{kid: {alg: public key}}`` from a JWK set; keys it cannot use are left out."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: dict[str, dict[str, Any]] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
            continue
        if _SECRET_MEMBERS & jwk.keys():
            continue
        for alg in usable_algorithms(jwk, allowed):
            try:
                keys.setdefault(kid, {})[alg] = jwt.PyJWK(jwk, algorithm=alg).key
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue
    return keys


class KeySet:
    def __init__(
        self,
        *,
        url: str,
        algorithms: frozenset[str],
        client: Callable[[], httpx.AsyncClient],
        refetch_interval: float,
        max_age: float,
        timeout: float,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self._client = client
        self.refetch_interval = refetch_interval
        self.max_age = max_age
        self.timeout = timeout
        self._keys: dict[str, dict[str, Any]] = {}
        self._attempted_at = -math.inf  # monotonic start of the last fetch
        self._fetched_at = -math.inf  # monotonic start of the last fetch that succeeded
        self._failed = False
        self._error = ""
        self._inflight: asyncio.Task[None] | None = None
        self.fetches = 0  # attempts so far (tests, metrics)

    def known(self, kid: str, alg: str) -> Any | None:
        """The key, when it is known and fresh enough: the fast path, nothing to await."""
        by_alg = self._keys.get(kid)
        if by_alg is None:
            return None
        if time.monotonic() - self._fetched_at > self.max_age:
            self.refresh_soon()  # use it now; newer keys arrive in the background
        key = by_alg.get(alg)
        if key is None:
            raise InvalidToken(Reason.wrong_alg, f"key {kid} is not for {alg}")
        return key

    async def key(self, kid: str, alg: str) -> Any:
        """The key named ``kid`` for ``alg``, fetching the set when ``kid`` is not known (at
        most once per interval). Raises ``InvalidToken`` (``unknown_key``, ``wrong_alg``) or
        ``Unavailable`` when the set cannot be fetched."""
        found = self.known(kid, alg)
        if found is not None:
            return found
        if self._may_fetch():
            await asyncio.shield(self._fetch_shared())
            found = self.known(kid, alg)
            if found is not None:
                return found
        if self._failed:
            raise Unavailable("keys", self._error)
        raise InvalidToken(Reason.unknown_key, kid)

    def _may_fetch(self) -> bool:
        if self._inflight is not None and not self._inflight.done():
            return True  # join it
        interval = self.refetch_interval
        if self._failed:
            interval = min(interval, _RETRY_AFTER_FAILURE)
        return time.monotonic() - self._attempted_at >= interval

    def refresh_soon(self) -> None:
        """Fetch in the background, within the same rate limit."""
        if self._may_fetch():
            self._fetch_shared()

    def _fetch_shared(self) -> asyncio.Task[None]:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._fetch())
        return self._inflight

    async def _fetch(self) -> None:
        started = self._attempted_at = time.monotonic()
        self.fetches += 1
        try:
            keys = parse_jwks(await self._download(), self.algorithms)
        except (httpx.HTTPError, ValueError) as exc:
            if not self._failed:
                log.warning("kizuna_verifier: cannot fetch the JWKS from %s: %s", self.url, exc)
            self._failed, self._error = True, f"cannot fetch the JWKS: {exc}"
            return
        if self._failed:
            log.warning("kizuna_verifier: the JWKS at %s is reachable again", self.url)
        self._keys, self._fetched_at, self._failed, self._error = keys, started, False, ""

    async def _download(self) -> Any:
        async with self._client().stream(
            "GET", self.url, headers={"Accept": "application/json"}, timeout=self.timeout
        ) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_BYTES:
                    raise ValueError("the JWKS is too large")
        return json.loads(body)

    async def close(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._inflight
        self._inflight = None
