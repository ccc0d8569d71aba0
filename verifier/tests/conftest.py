"""An issuer of test tokens with locally generated keys, and a small real HTTP server on
127.0.0.1 that plays Kizuna's JWKS and revocation feed (stdlib ``http.server`` in a thread, so
the verifier's HTTP client does real requests over a socket)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from kizuna_verifier import RevocationFeed, Verifier

ISSUER = "https://auth.test"
AUDIENCE = "notes-api"
CREDENTIAL = "kzs_" + "A" * 43


def private_key(alg: str) -> PrivateKeyTypes:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


@dataclass
class Key:
    kid: str
    alg: str
    private: PrivateKeyTypes

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public = self.private.public_key()
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(public))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk


class Issuer:
    """Mints tokens as Kizuna does (``api/src/kizuna/tokens.py``), with every part
    overridable to forge the bad ones."""

    def __init__(self) -> None:
        self.keys: dict[str, Key] = {}
        self.published: list[str] = []
        self.default = self.add("k1", "ES256")

    def add(self, kid: str, alg: str, *, publish: bool = True) -> Key:
        key = Key(kid, alg, private_key(alg))
        self.keys[kid] = key
        if publish:
            self.published.append(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.keys[kid].jwk() for kid in self.published]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "sid": "session-1",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 300,
            "roles": ["editor"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not DROP}

    def token(
        self,
        key: Key | None = None,
        *,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = key or self.default
        header: dict[str, Any] = {"kid": key.kid, "typ": "at+jwt"}
        header.update(headers or {})
        header = {k: v for k, v in header.items() if v is not DROP}
        return jwt.encode(
            self.claims(**claims),
            key.private,  # type: ignore[arg-type]
            algorithm=key.alg,
            headers=header,
        )


DROP: Any = object()  # a claim or header member to leave out


@dataclass
class FeedState:
    """What the fake revocation feed holds and how it answers."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    retain_seconds: int = 360
    page: int = 1000
    status: int = 200
    body: Any = None  # answer this instead, when set
    polls: int = 0

    def add(self, kind: str, **entry: Any) -> int:
        seq = len(self.entries) + 1
        self.entries.append({"seq": seq, "kind": kind, **entry})
        return seq

    def answer(self, after: int | None) -> dict[str, Any]:
        newer = [e for e in self.entries if after is None or e["seq"] > after]
        page = newer[: self.page]
        more = len(newer) > self.page
        latest = self.entries[-1]["seq"] if self.entries else 0
        seq = page[-1]["seq"] if more else latest
        return {"seq": seq, "more": more, "retain_seconds": self.retain_seconds, "entries": page}


class FakeKizuna:
    """``/.well-known/jwks.json`` and ``/api/revocations`` on a real socket."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.feed = FeedState()
        self.jwks_hits = 0
        self.jwks_delay = 0.0
        self.jwks_status = 200
        self.jwks_body: bytes | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/jwks.json":
                    fake._jwks(self)
                elif url.path == "/api/revocations":
                    fake._feed(self, parse_qs(url.query))
                else:
                    self._send(404, b"{}")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.handler = Handler
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/.well-known/jwks.json"

    @property
    def feed_url(self) -> str:
        return self.base_url + "/api/revocations"

    def _jwks(self, request: Any) -> None:
        with self.lock:
            self.jwks_hits += 1
        if self.jwks_delay:
            time.sleep(self.jwks_delay)
        body = self.jwks_body or json.dumps(self.issuer.jwks()).encode()
        request._send(self.jwks_status, body)

    def _feed(self, request: Any, query: dict[str, list[str]]) -> None:
        feed = self.feed
        with self.lock:
            feed.polls += 1
        if request.headers.get("Authorization") != f"Bearer {CREDENTIAL}":
            request._send(401, b'{"code": "service_credential_invalid"}')
            return
        if feed.status != 200:
            request._send(feed.status, b"{}")
            return
        if feed.body is not None:
            request._send(200, json.dumps(feed.body).encode())
            return
        after = int(query["after"][0]) if "after" in query else None
        request._send(200, json.dumps(feed.answer(after)).encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def kizuna(issuer: Issuer) -> Iterator[FakeKizuna]:
    server = FakeKizuna(issuer)
    try:
        yield server
    finally:
        server.close()


MakeVerifier = Callable[..., Verifier]


@pytest.fixture
async def make_verifier(kizuna: FakeKizuna) -> AsyncIterator[MakeVerifier]:
    """Verifiers against the fake Kizuna, started, and closed at the end of the test.
    ``feed=True`` adds the revocation feed (fast polling); other keywords go to Verifier."""
    made: list[Verifier] = []

    def make(*, feed: bool | dict[str, Any] = False, **options: Any) -> Verifier:
        options.setdefault("issuer", ISSUER)
        options.setdefault("audience", AUDIENCE)
        options.setdefault("jwks_url", kizuna.jwks_url)
        if feed:
            settings = {
                "poll_interval": 0.05,
                "max_staleness": 0.5,
                **(feed if isinstance(feed, dict) else {}),
            }
            options["revocation"] = RevocationFeed(
                url=kizuna.feed_url, credential=CREDENTIAL, **settings
            )
        verifier = Verifier(**options)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.close()
