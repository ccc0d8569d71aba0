"""Token attacks against ``GET /api/userinfo`` (docs/protocol.md §3, §4; issue 2).

Every forgery here is built from a token the server would accept: the same header and claims,
signed with the server's own private key, with exactly one thing changed, the thing under
test. The control cases prove the forger's unchanged token is accepted, so each 401 below is
caused by the change and not by a slip in the forger.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from kizuna import migrate
from kizuna.keys import SigningKey, public_jwk
from kizuna.settings import Settings
from tests.conftest import Harness, _harness, kizuna_serve, store_url

pytestmark = pytest.mark.asyncio(loop_scope="module")

INVALID = 'Bearer error="invalid_token"'
DROP = object()  # a header or claim value that means "leave this member out"

Signer = Callable[[bytes], bytes]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def hs256(secret: bytes) -> Signer:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def with_changes(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes.items():
        if value is DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@dataclass
class Forger:
    """Makes compact JWS tokens for one live session, signed with the server's key."""

    key: SigningKey
    header_template: dict[str, Any]
    claims_template: dict[str, Any]

    def header(self, **changes: Any) -> dict[str, Any]:
        return with_changes(self.header_template, changes)

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        fresh = {
            **self.claims_template,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 300,
        }
        return with_changes(fresh, changes)

    def sign(self, data: bytes) -> bytes:
        algorithm = jwt.get_algorithm_by_name(self.key.alg)
        return algorithm.sign(data, self.key.private_key)  # type: ignore[arg-type]

    def token(
        self,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        *,
        signer: Signer | None = None,
    ) -> str:
        signing_input = f"{segment(header or self.header())}.{segment(claims or self.claims())}"
        signature = (signer or self.sign)(signing_input.encode())
        return f"{signing_input}.{b64url(signature)}"


@dataclass
class Arena:
    harness: Harness
    user_id: str
    session_id: str
    access_token: str
    forger: Forger
    other_user_session: str
    # Set when the attacks go over TCP to ``kizuna serve`` (uvicorn) on the same store and
    # keys; else they go to the app in this process.
    base_url: str | None = None

    def bare(self) -> httpx.AsyncClient:
        if self.base_url is not None:
            return httpx.AsyncClient(base_url=self.base_url, timeout=10)
        return self.harness.client()


def forger_for(harness: Harness, access_token: str) -> Forger:
    """A forger whose template is the real token the server just issued."""
    key = harness.services.keyring.signing_key
    header = jwt.get_unverified_header(access_token)
    claims = jwt.decode(access_token, options={"verify_signature": False})
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    assert set(claims) == {"iss", "aud", "sub", "sid", "jti", "iat", "exp", "roles"}
    return Forger(key=key, header_template=header, claims_template=claims)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["in-process", "served"])
async def arena(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Arena]:
    """One app for the whole module (the attacks only read): a user logged in once. Every
    attack runs twice: against the app in this process, and black-box, over TCP against a
    running ``kizuna serve`` on the same store and keys."""
    data_dir = tmp_path_factory.mktemp("attacks") / "data"
    settings = Settings(data_dir=data_dir, database_url=store_url(data_dir), log_json=True)
    migrate.upgrade(settings)
    async for harness in _harness(settings):
        user_id = await harness.user()
        await harness.user("bob@example.com")
        async with harness.client() as client:
            login = await harness.login(client)
            access = client.cookies.get("access_token")
            assert access
        async with harness.client() as bob:
            bob_login = await harness.login(bob, "bob@example.com")
        arena = Arena(
            harness=harness,
            user_id=user_id,
            session_id=login.json()["session_id"],
            access_token=access,
            forger=forger_for(harness, access),
            other_user_session=bob_login.json()["session_id"],
        )
        if request.param == "in-process":
            yield arena
            continue
        with kizuna_serve(settings.data_dir) as base_url:
            arena.base_url = base_url
            yield arena


async def userinfo(arena: Arena, token: str, via: str = "bearer") -> httpx.Response:
    headers = (
        {"Authorization": f"Bearer {token}"}
        if via == "bearer"
        else {"Cookie": f"access_token={token}"}
    )
    async with arena.bare() as client:
        started = time.monotonic()
        response = await client.get("/api/userinfo", headers=headers)
    # Not a speed claim (bench/ measures speed): a guard against a forgery that makes the
    # server work hard (a huge key, a slow path) before it says no.
    assert time.monotonic() - started < 1.0, "a forged token took the server over a second"
    return response


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_token"
    assert response.headers["www-authenticate"] == INVALID


# -- the attacks ---------------------------------------------------------------------------

Attack = Callable[[Forger, Arena], str]


def alg_none(alg: str, *, signed: bool) -> Attack:
    def build(f: Forger, _a: Arena) -> str:
        header = f.header(alg=alg)
        return f.token(header, signer=f.sign if signed else (lambda _data: b""))

    return build


def stripped(*, trailing_dot: bool) -> Attack:
    def build(f: Forger, _a: Arena) -> str:
        head, body, _sig = f.token().split(".")
        return f"{head}.{body}." if trailing_dot else f"{head}.{body}"

    return build


def flipped_bit(index: int) -> Attack:
    """Alter the signature bytes (not its base64 text, whose last character has spare bits)."""

    def build(f: Forger, _a: Arena) -> str:
        head, body, sig = f.token().split(".")
        raw = bytearray(unb64url(sig))
        raw[index] ^= 0x01
        return f"{head}.{body}.{b64url(bytes(raw))}"

    return build


def payload_swapped(**changes: Any) -> Attack:
    """A good token whose payload is replaced; the original signature is kept."""

    def build(f: Forger, a: Arena) -> str:
        head, _body, sig = f.token().split(".")
        resolved = {k: (v(a) if callable(v) else v) for k, v in changes.items()}
        return f"{head}.{segment(f.claims(**resolved))}.{sig}"

    return build


def public_key_bytes(f: Forger, form: str) -> bytes:
    public = f.key.public_key
    if form == "pem":
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if form == "der":
        return public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    jwk = public_jwk(f.key)
    if form == "jwk-json":
        return json.dumps(jwk).encode()
    if form == "jwk-x-y":
        return unb64url(jwk["x"]) + unb64url(jwk["y"])
    if form == "point":
        return public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    raise AssertionError(form)


def hmac_with_public_key(form: str, alg: str = "HS256") -> Attack:
    def build(f: Forger, _a: Arena) -> str:
        return f.token(f.header(alg=alg), signer=hs256(public_key_bytes(f, form)))

    return build


def hmac_with_refresh_key(f: Forger, a: Arena) -> str:
    """Even the server's own HMAC secret cannot make an access token: HMAC is never allowed."""
    mac = a.harness.services.keyring.mac_key
    return f.token(f.header(alg="HS256", kid=mac.kid), signer=hs256(mac.secret))


def psychic(signature: bytes) -> Attack:
    return lambda f, _a: f.token(signer=lambda _data: signature)


def attacker_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def attacker_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    return jwk


def es256(key: ec.EllipticCurvePrivateKey) -> Signer:
    return lambda data: jwt.get_algorithm_by_name("ES256").sign(data, key)


def embedded_jwk(*, kid: str | None) -> Attack:
    def build(f: Forger, _a: Arena) -> str:
        mine = attacker_key()
        header = f.header(jwk=attacker_jwk(mine, "attacker"))
        if kid is not None:
            header["kid"] = kid
        return f.token(header, signer=es256(mine))

    return build


def self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kizuna")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def embedded_x5c(f: Forger, _a: Arena) -> str:
    mine = attacker_key()
    der = self_signed(mine).public_bytes(serialization.Encoding.DER)
    return f.token(f.header(x5c=[base64.b64encode(der).decode()]), signer=es256(mine))


def with_header(**changes: Any) -> Attack:
    """Signed with the real key; only the header differs."""
    return lambda f, _a: f.token(f.header(**changes))


def with_claims(**changes: Any) -> Attack:
    """Signed with the real key; only the claims differ. Callables are resolved per arena."""

    def build(f: Forger, a: Arena) -> str:
        resolved = {k: (v(a) if callable(v) else v) for k, v in changes.items()}
        return f.token(claims=f.claims(**resolved))

    return build


def literal(text: str) -> Attack:
    return lambda _f, _a: text


def expired(seconds_ago: int) -> Attack:
    def build(f: Forger, _a: Arena) -> str:
        now = int(time.time())
        return f.token(claims=f.claims(iat=now - 300 - seconds_ago, exp=now - seconds_ago))

    return build


def not_before(offset: int) -> Attack:
    return lambda f, _a: f.token(claims=f.claims(nbf=int(time.time()) + offset))


ATTACKS: list[Any] = [
    *[
        pytest.param(alg_none(alg, signed=signed), id=f"alg-{alg}-{'sig' if signed else 'nosig'}")
        for alg in ("none", "None", "NONE", "nOnE")
        for signed in (False, True)
    ],
    pytest.param(stripped(trailing_dot=True), id="signature-stripped"),
    pytest.param(stripped(trailing_dot=False), id="signature-segment-missing"),
    pytest.param(flipped_bit(0), id="signature-altered-first-byte"),
    pytest.param(flipped_bit(-1), id="signature-altered-last-byte"),
    pytest.param(payload_swapped(roles=["admin"]), id="payload-altered-roles"),
    pytest.param(payload_swapped(sub="someone-else"), id="payload-altered-sub"),
    pytest.param(
        payload_swapped(exp=lambda _a: int(time.time()) + 86400), id="payload-altered-exp"
    ),
    pytest.param(hmac_with_public_key("pem"), id="hs256-public-key-pem"),
    pytest.param(hmac_with_public_key("der"), id="hs256-public-key-der"),
    pytest.param(hmac_with_public_key("point"), id="hs256-public-key-raw-point"),
    pytest.param(hmac_with_public_key("jwk-json"), id="hs256-public-jwk-json"),
    pytest.param(hmac_with_public_key("jwk-x-y"), id="hs256-public-jwk-raw-x-y"),
    pytest.param(hmac_with_public_key("pem", "HS512"), id="hs512-public-key-pem"),
    pytest.param(hmac_with_refresh_key, id="hs256-server-refresh-secret"),
    pytest.param(psychic(b"\x00" * 64), id="psychic-signature-raw-r0-s0"),
    pytest.param(psychic(b"\x30\x06\x02\x01\x00\x02\x01\x00"), id="psychic-signature-der-r0-s0"),
    pytest.param(embedded_jwk(kid=None), id="embedded-jwk-real-kid"),
    pytest.param(embedded_jwk(kid="attacker"), id="embedded-jwk-own-kid"),
    pytest.param(embedded_x5c, id="embedded-x5c-self-signed"),
    pytest.param(with_header(kid="../../etc/passwd"), id="kid-path-traversal"),
    pytest.param(with_header(kid="/dev/null"), id="kid-dev-null"),
    pytest.param(
        lambda f, _a: f.token(f.header(alg="HS256", kid="/dev/null"), signer=hs256(b"")),
        id="kid-dev-null-hs256-empty-key",
    ),
    pytest.param(with_header(kid="' OR '1'='1"), id="kid-sql-injection"),
    pytest.param(with_header(kid="x' UNION SELECT 'k"), id="kid-sql-union"),
    pytest.param(with_header(kid="20990101-000000000000"), id="kid-unknown"),
    pytest.param(with_header(kid=DROP), id="kid-missing"),
    pytest.param(with_header(kid=0), id="kid-not-a-string"),
    pytest.param(with_header(typ="JWT"), id="typ-JWT"),
    pytest.param(with_header(typ=DROP), id="typ-missing"),
    pytest.param(with_header(typ="rt+jwt"), id="typ-refresh"),
    pytest.param(with_header(crit=["x-kizuna-unknown"], **{"x-kizuna-unknown": 1}), id="crit"),
    pytest.param(with_claims(iss="https://evil.example"), id="iss-wrong"),
    pytest.param(with_claims(aud="someone-else"), id="aud-wrong"),
    pytest.param(with_claims(aud=["someone-else"]), id="aud-list-without-ours"),
    pytest.param(
        with_claims(aud=lambda a: a.harness.services.refresh_tokens.audience), id="aud-refresh"
    ),
    *[
        pytest.param(with_claims(**{claim: DROP}), id=f"claim-missing-{claim}")
        for claim in ("sub", "sid", "exp", "iss", "aud", "jti", "iat")
    ],
    pytest.param(with_claims(sub=123), id="sub-not-a-string"),
    pytest.param(with_claims(roles="admin"), id="roles-not-a-list"),
    pytest.param(with_claims(sid="no-such-session"), id="sid-unknown"),
    pytest.param(with_claims(sid=lambda a: a.other_user_session), id="sid-of-another-user"),
    pytest.param(expired(10), id="expired-beyond-leeway"),
    pytest.param(not_before(60), id="nbf-in-future"),
    pytest.param(literal("not-a-jwt"), id="garbage"),
    pytest.param(literal("a.b.c"), id="garbage-three-parts"),
]

ACCEPTED: list[Any] = [
    pytest.param(lambda f, _a: f.token(), id="control-unchanged-forgery"),
    pytest.param(expired(2), id="expired-within-leeway"),
    pytest.param(not_before(-60), id="nbf-in-past"),
]


@pytest.mark.parametrize("via", ["bearer", "cookie"])
@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_token_is_invalid_token(arena: Arena, attack: Attack, via: str) -> None:
    assert_invalid_token(await userinfo(arena, attack(arena.forger, arena), via))


@pytest.mark.parametrize("via", ["bearer", "cookie"])
@pytest.mark.parametrize("good", ACCEPTED)
async def test_forger_controls_are_accepted(arena: Arena, good: Attack, via: str) -> None:
    """The forger's unchanged output, and the legitimate edge cases, do get in."""
    response = await userinfo(arena, good(arena.forger, arena), via)
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == arena.user_id
    assert response.json()["session"]["id"] == arena.session_id


async def test_real_token_accepted(arena: Arena) -> None:
    response = await userinfo(arena, arena.access_token)
    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


async def test_no_token_is_unauthenticated(arena: Arena) -> None:
    async with arena.bare() as client:
        for headers in ({}, {"Cookie": "access_token="}):
            response = await client.get("/api/userinfo", headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "unauthenticated"
            assert response.headers["www-authenticate"] == "Bearer"


# -- header keys that point somewhere: the server must not fetch anything -----------------


class _Recorder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: RecordingServer = self.server  # type: ignore[assignment]
        server.hits.append(self.path)
        body = server.body_for(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RecordingServer(ThreadingHTTPServer):
    """An attacker's web server on 127.0.0.1 serving their JWKS and certificate."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.hits: list[str] = []
        self.key = attacker_key()
        self.jwks = json.dumps({"keys": [attacker_jwk(self.key, "attacker")]}).encode()
        self.cert = self_signed(self.key).public_bytes(serialization.Encoding.PEM)

    def body_for(self, path: str) -> bytes:
        return self.cert if path.endswith(".pem") else self.jwks

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def attacker_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


async def test_attacker_server_records_hits(attacker_server: RecordingServer) -> None:
    """The recorder works, so an empty hit list below means the API fetched nothing."""
    async with httpx.AsyncClient() as client:
        response = await client.get(attacker_server.url + "/jwks.json")
    assert response.json()["keys"][0]["kid"] == "attacker"
    assert attacker_server.hits == ["/jwks.json"]


@pytest.mark.parametrize("member", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["attacker", "real"])
async def test_remote_key_urls_are_never_fetched(
    arena: Arena, attacker_server: RecordingServer, member: str, kid: str
) -> None:
    f = arena.forger
    path = "/jwks.json" if member == "jku" else "/cert.pem"
    header = f.header(**{member: attacker_server.url + path})
    if kid == "attacker":
        header["kid"] = "attacker"
    token = f.token(header, signer=es256(attacker_server.key))
    for via in ("bearer", "cookie"):
        assert_invalid_token(await userinfo(arena, token, via))
    assert attacker_server.hits == []


# -- one kind of token where the other is expected -----------------------------------------


async def test_refresh_token_is_not_an_access_token(arena: Arena) -> None:
    async with arena.harness.client() as client:
        await arena.harness.login(client)
        refresh = client.cookies.get("refresh_token", path="/auth/refresh")
        assert refresh
    assert_invalid_token(await userinfo(arena, refresh, "bearer"))
    assert_invalid_token(await userinfo(arena, refresh, "cookie"))


async def test_access_token_is_not_a_refresh_token(arena: Arena) -> None:
    harness = arena.harness
    async with harness.client() as client:
        await harness.login(client)
        access = client.cookies.get("access_token")
        refresh = client.cookies.get("refresh_token", path="/auth/refresh")
    async with harness.client() as bare:
        refused = await bare.post("/auth/refresh", headers={"Cookie": f"refresh_token={access}"})
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "refresh_token_invalid"
        deleted = " ".join(refused.headers.get_list("set-cookie"))
        assert "refresh_token=" in deleted
        assert "Max-Age=0" in deleted
        # An access-key-signed token dressed up as a refresh token gets nowhere either.
        f = arena.forger
        dressed = f.token(f.header(typ="rt+jwt"))
        refused = await bare.post("/auth/refresh", headers={"Cookie": f"refresh_token={dressed}"})
        assert refused.json()["code"] == "refresh_token_invalid"
        # The session was not harmed by the attempt: its real refresh token still rotates.
        ok = await bare.post("/auth/refresh", headers={"Cookie": f"refresh_token={refresh}"})
        assert ok.status_code == 200, ok.text


# -- revocation ---------------------------------------------------------------------------


async def test_valid_token_of_revoked_session(arena: Arena) -> None:
    harness = arena.harness
    async with harness.client() as laptop, harness.client() as phone:
        await harness.login(laptop)
        phone_login = await harness.login(phone)
        token = phone.cookies.get("access_token")
        assert token
        assert (await userinfo(arena, token)).status_code == 200  # verified and cached
        revoked = await laptop.delete(f"/api/sessions/{phone_login.json()['session_id']}")
        assert revoked.status_code == 204
    deadline = time.monotonic() + 1.0
    while True:
        response = await userinfo(arena, token)
        if response.status_code == 401 or time.monotonic() > deadline:
            break
    assert_invalid_token(response)
    assert_invalid_token(await userinfo(arena, token, "cookie"))


# -- other signing algorithms -------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
async def test_configured_algorithm_signs_and_verifies(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
    alg: str,
) -> None:
    async for harness in make_harness(make_settings(signing_alg=alg)):
        user_id = await harness.user()
        async with harness.client() as client:
            await harness.login(client)
            token = client.cookies.get("access_token")
            assert token
            jwks = (await client.get("/.well-known/jwks.json")).json()
            info = await client.get("/api/userinfo")
        header = jwt.get_unverified_header(token)
        assert header["alg"] == alg
        assert header["typ"] == "at+jwt"
        published = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        assert published["alg"] == alg
        # A verifier that only has the JWKS (the web tier) accepts it.
        public = jwt.PyJWK(published).key
        claims = jwt.decode(token, public, algorithms=[alg], audience="kizuna-web", issuer="kizuna")
        assert claims["sub"] == user_id
        assert info.status_code == 200
        assert info.json()["sub"] == user_id

        # Only the one configured algorithm: the same key under a sibling algorithm is refused.
        forger = forger_for(harness, token)
        if alg == "RS256":
            private = forger.key.private_key
            assert isinstance(private, rsa.RSAPrivateKey)

            def pss(data: bytes, private: rsa.RSAPrivateKey = private) -> bytes:
                return private.sign(
                    data,
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                    hashes.SHA256(),
                )

            sibling = forger.token(forger.header(alg="PS256"), signer=pss)
        else:
            sibling = forger.token(forger.header(alg="Ed25519"))
        async with harness.client() as bare:
            refused = await bare.get(
                "/api/userinfo", headers={"Authorization": f"Bearer {sibling}"}
            )
        assert_invalid_token(refused)
        # ... and the forger itself is sound for this algorithm.
        async with harness.client() as bare:
            control = await bare.get(
                "/api/userinfo", headers={"Authorization": f"Bearer {forger.token()}"}
            )
        assert control.status_code == 200
