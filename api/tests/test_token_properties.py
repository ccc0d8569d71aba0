"""Property tests of the token parser (``kizuna.tokens``; issue 8, "Fuzzing").

Whatever a client sends where a token belongs, ``AccessTokens.verify``, ``RefreshTokens.verify``
and the header reader behind both end in one of two ways: the claims of a token exactly as the
server issued it, or ``TokenError``. Never another exception (a 500), never a near miss let in,
and never one kind of token for the other. The forgeries start from real tokens: bits flipped
in each segment, characters changed, headers swapped (alg none, HS256 keyed with the public
key or the refresh MAC key, typ and kid swaps, an attacker's key), payloads that are not
objects, huge inputs. Over HTTP, each of them is a 401 problem, answered fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from kizuna import migrate
from kizuna.clock import utcnow
from kizuna.keys import KeyRing, public_jwk
from kizuna.settings import Settings
from kizuna.tokens import AccessTokens, RefreshTokens, TokenError, _header
from tests.conftest import _harness, store_url
from tests.fuzzing import scaled

PROPERTY = settings(
    max_examples=scaled(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
HTTP = settings(
    max_examples=scaled(60), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Ring:
    """A key ring with its two verifiers, one valid token of each kind, and the keys a forger
    might try: the public key in every form, the refresh MAC key, a key of his own."""

    keyring: KeyRing
    access: AccessTokens
    refresh: RefreshTokens
    access_token: str
    refresh_token: str
    attacker: ec.EllipticCurvePrivateKey

    def hmac_keys(self) -> list[bytes]:
        public = self.keyring.signing_key.public_key
        return [
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            json.dumps(public_jwk(self.keyring.signing_key)).encode(),
            self.keyring.mac_key.secret,
            b"",
        ]


def make_ring(directory: Path) -> Ring:
    keyring = KeyRing(directory, alg="ES256", access_ttl=300, leeway=5)
    keyring.ensure()
    access = AccessTokens(keyring, issuer="kizuna", audience="kizuna-web", ttl=300, leeway=5)
    refresh = RefreshTokens(keyring, issuer="kizuna", leeway=5)
    now = utcnow().replace(microsecond=0)
    access_token, _ = access.issue(sub="user-1", sid="session-1", roles=["admin"])
    refresh_token = refresh.encode(
        token_id="token-1",
        session_id="session-1",
        user_id="user-1",
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        key_id=keyring.mac_key.kid,
    )
    return Ring(
        keyring=keyring,
        access=access,
        refresh=refresh,
        access_token=access_token,
        refresh_token=refresh_token,
        attacker=ec.generate_private_key(ec.SECP256R1()),
    )


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> Ring:
    return make_ring(tmp_path_factory.mktemp("ring") / "keys")


# -- the forger ------------------------------------------------------------------------------------


Forgery = Callable[[Ring, str], str]

ALGS = ["none", "None", "NONE", "HS256", "HS384", "HS512", "RS256", "ES256", "ES384", "EdDSA", ""]
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def flip_bit(which: int, bit: int) -> Forgery:
    """One bit flipped in the decoded bytes of segment ``which``, re-encoded."""

    def forge(_ring: Ring, token: str) -> str:
        parts = token.split(".")
        raw = bytearray(unb64url(parts[which]))
        if not raw:
            return token + "A"
        index = bit % (len(raw) * 8)
        raw[index // 8] ^= 1 << (index % 8)
        parts[which] = b64url(bytes(raw))
        return ".".join(parts)

    return forge


def change_char(position: int, char: str) -> Forgery:
    def forge(_ring: Ring, token: str) -> str:
        index = position % len(token)
        return token[:index] + char + token[index + 1 :]

    return forge


def insert_text(position: int, text: str) -> Forgery:
    def forge(_ring: Ring, token: str) -> str:
        index = position % (len(token) + 1)
        return token[:index] + text + token[index:]

    return forge


def delete_span(position: int, length: int) -> Forgery:
    def forge(_ring: Ring, token: str) -> str:
        index = position % len(token)
        return token[:index] + token[index + length :]

    return forge


def header_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(unb64url(token.split(".")[0]))
    return decoded


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(unb64url(token.split(".")[1]))
    return decoded


def resign(header: dict[str, Any], payload: str, how: str, key_index: int) -> Forgery:
    """The token's payload under ``header``, with a signature made ``how``."""

    def forge(ring: Ring, token: str) -> str:
        original = token.split(".")
        body = original[1] if payload == "same" else segment(claims_of(token) | {"x": payload})
        changed = header_of(token) | header
        keys = ring.hmac_keys()
        key = keys[key_index % len(keys)]
        if how == "hmac" and key == ring.keyring.mac_key.secret:
            # The refresh MAC key signing a token dressed up as an access token (key
            # confusion); as an rt+jwt it would simply be the server's own refresh signature.
            changed["typ"] = "at+jwt"
        signing_input = f"{segment(changed)}.{body}"
        if how == "kept":
            signature = original[2]
        elif how == "empty":
            signature = ""
        elif how == "hmac":
            digest = hashlib.sha256 if header.get("alg", "HS256") == "HS256" else hashlib.sha512
            signature = b64url(hmac.new(key, signing_input.encode(), digest).digest())
        else:  # the attacker's own EC key
            algorithm = jwt.get_algorithm_by_name("ES256")
            signature = b64url(algorithm.sign(signing_input.encode(), ring.attacker))
        return f"{signing_input}.{signature}"

    return forge


def drop_header_member(name: str) -> Forgery:
    def forge(_ring: Ring, token: str) -> str:
        parts = token.split(".")
        header = header_of(token)
        header.pop(name, None)
        parts[0] = segment(header)
        return ".".join(parts)

    return forge


def replace_segment(which: int, value: Any) -> Forgery:
    """A segment replaced by ``value`` as JSON (any JSON, objects or not)."""

    def forge(_ring: Ring, token: str) -> str:
        parts = token.split(".")
        parts[which] = segment(value)
        return ".".join(parts)

    return forge


def splice(which: int) -> Forgery:
    """Segment ``which`` taken from the token of the other kind."""

    def forge(ring: Ring, token: str) -> str:
        other = ring.refresh_token if token == ring.access_token else ring.access_token
        parts = token.split(".")
        parts[which] = other.split(".")[which]
        return ".".join(parts)

    return forge


def huge(times: int, where: int) -> Forgery:
    def forge(_ring: Ring, token: str) -> str:
        parts = token.split(".")
        parts[where] = parts[where] * times
        return ".".join(parts)

    return forge


def nested(depth: int) -> Forgery:
    """A header or payload of ``depth`` nested arrays: deep enough to trouble a recursive
    parser, still within the header reader's size limit at the low end."""

    def forge(_ring: Ring, token: str) -> str:
        parts = token.split(".")
        parts[depth % 2] = b64url(b"[" * depth + b"]" * depth)
        return ".".join(parts)

    return forge


HEADER_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(ALGS) | JSON_SCALARS,
        "typ": st.sampled_from(["at+jwt", "rt+jwt", "JWT", "jwt", "AT+JWT", ""]) | JSON_SCALARS,
        "kid": st.sampled_from(["", "unknown", "../keyring.json"]) | JSON,
        "jku": st.just("https://attacker.example/jwks.json"),
        "crit": st.just(["exp"]),
    },
)

FORGERIES: st.SearchStrategy[Forgery] = st.one_of(
    st.builds(flip_bit, st.integers(0, 2), st.integers(0, 4096)),
    st.builds(change_char, st.integers(0, 2000), st.sampled_from(B64URL + ".=+/ \x00é")),
    st.builds(insert_text, st.integers(0, 2000), st.text(min_size=1, max_size=8)),
    st.builds(insert_text, st.integers(0, 2000), st.sampled_from(["=", "==", "\n", " ", "."])),
    st.builds(delete_span, st.integers(0, 2000), st.integers(1, 8)),
    st.builds(
        resign,
        HEADER_CHANGES,
        st.sampled_from(["same", "tampered"]),
        st.sampled_from(["kept", "empty", "hmac", "attacker"]),
        st.integers(0, 4),
    ),
    st.builds(drop_header_member, st.sampled_from(["alg", "typ", "kid"])),
    st.builds(replace_segment, st.integers(0, 1), JSON),
    st.builds(splice, st.integers(0, 2)),
    st.builds(huge, st.integers(2, 2000), st.integers(0, 2)),
    st.builds(nested, st.integers(1, 5000)),
)

GARBAGE = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),  # as header bytes arrive
    st.lists(st.text(alphabet=B64URL + "=", max_size=60), min_size=1, max_size=5).map(".".join),
    st.tuples(JSON, JSON, st.text(alphabet=B64URL, max_size=90)).map(
        lambda t: f"{segment(t[0])}.{segment(t[1])}.{t[2]}"
    ),
)


def outcome(verify: Callable[[str], object], token: str) -> object | TokenError:
    """The claims, or the TokenError; any other exception fails the test where it happens."""
    try:
        return verify(token)
    except TokenError as exc:
        return exc


def assert_only_the_issued_token_passes(ring: Ring, forged: str) -> None:
    for verify, issued in (
        (ring.access.verify, ring.access_token),
        (ring.refresh.verify, ring.refresh_token),
        (lambda t: ring.refresh.verify(t, verify_exp=False), ring.refresh_token),
        (lambda t: ring.access.verify(t, verify_exp=False), ring.access_token),
    ):
        result = outcome(verify, forged)
        if not isinstance(result, TokenError):
            assert forged == issued, f"accepted a token the server never issued: {forged!r}"


# -- the header reader -----------------------------------------------------------------------------


@PROPERTY
@given(text=GARBAGE)
@example(text=".")
@example(text=b64url(b"[" * 767 + b"]" * 767) + ".")
@example(text=b64url(b'"not an object"') + ".x.y")
def test_the_header_reader_returns_an_object_or_raises_token_error(text: str) -> None:
    result = outcome(_header, text)
    assert isinstance(result, TokenError | dict)


# -- garbage and forgeries against the verifiers ---------------------------------------------------


@PROPERTY
@given(garbage=GARBAGE)
@example(garbage="")
@example(garbage="a.b.c")
@example(garbage="eyJhbGciOiJub25lIn0.e30.")
def test_garbage_is_never_accepted_and_only_raises_token_error(ring: Ring, garbage: str) -> None:
    assert_only_the_issued_token_passes(ring, garbage)


@PROPERTY
@given(forge=FORGERIES, kind=st.sampled_from(["access", "refresh"]))
@example(forge=resign({}, "tampered", "hmac", 3), kind="refresh")  # the refresh MAC key
@example(forge=resign({"alg": "HS256"}, "same", "hmac", 0), kind="access")  # the public key
@example(forge=resign({"alg": "none"}, "same", "empty", 0), kind="access")
def test_a_mutated_token_is_accepted_only_if_it_is_the_issued_token_exactly(
    ring: Ring, forge: Forgery, kind: str
) -> None:
    issued = ring.access_token if kind == "access" else ring.refresh_token
    assert_only_the_issued_token_passes(ring, forge(ring, issued))


@settings(PROPERTY, max_examples=scaled(150))
@given(position=st.integers(0, 10_000), kind=st.sampled_from(["access", "refresh"]))
def test_every_character_of_the_signature_matters(ring: Ring, position: int, kind: str) -> None:
    """Base64url has spare bits in a segment's last character: a decoder that ignores them
    would take a token with that character changed for the same token. Only the issued
    spelling passes."""
    issued = ring.access_token if kind == "access" else ring.refresh_token
    head, _, signature = issued.rpartition(".")
    index = position % len(signature)
    for char in B64URL:
        forged = f"{head}.{signature[:index]}{char}{signature[index + 1 :]}"
        assert_only_the_issued_token_passes(ring, forged)


def test_issued_tokens_verify_as_their_own_kind_only(ring: Ring) -> None:
    """The control for the properties above: the forger's starting points are good tokens."""
    assert ring.access.verify(ring.access_token).sid == "session-1"
    assert ring.refresh.verify(ring.refresh_token).jti == "token-1"
    with pytest.raises(TokenError):
        ring.refresh.verify(ring.access_token)
    with pytest.raises(TokenError):
        ring.access.verify(ring.refresh_token)
    with pytest.raises(TokenError):
        ring.refresh.verify(ring.access_token, verify_exp=False)
    with pytest.raises(TokenError):
        ring.access.verify(ring.refresh_token, verify_exp=False)


# -- our own key, hostile claims -------------------------------------------------------------------

CLAIM_VALUES = JSON | st.sampled_from([float("inf"), float("nan"), 10**400, -(10**400), 1e308])


@PROPERTY
@given(
    changes=st.dictionaries(
        st.sampled_from(["iss", "aud", "sub", "sid", "jti", "iat", "exp", "nbf", "roles"]),
        CLAIM_VALUES,
        max_size=4,
    ),
    dropped=st.sets(st.sampled_from(["iss", "aud", "sub", "sid", "jti", "iat", "exp"]), max_size=2),
    kind=st.sampled_from(["access", "refresh"]),
    verify_exp=st.booleans(),
)
def test_claims_of_any_shape_under_the_servers_own_key_only_raise_token_error(
    ring: Ring, changes: dict[str, Any], dropped: set[str], kind: str, verify_exp: bool
) -> None:
    """Defence in depth: even a token carrying the server's own valid signature (a bug
    elsewhere, a leaked key) cannot make the parser fail with anything but TokenError, and
    what it accepts has claims of the right types."""
    issued = ring.access_token if kind == "access" else ring.refresh_token
    claims = {k: v for k, v in (claims_of(issued) | changes).items() if k not in dropped}
    header = header_of(issued)
    signing_input = f"{segment(header)}.{b64url(json.dumps(claims).encode())}"
    if kind == "access":
        algorithm = jwt.get_algorithm_by_name("ES256")
        key: Any = ring.keyring.signing_key.private_key
        verify: Callable[[str], Any] = lambda t: ring.access.verify(t, verify_exp=verify_exp)  # noqa: E731
    else:
        algorithm = jwt.get_algorithm_by_name("HS256")
        key = ring.keyring.mac_key.secret
        verify = lambda t: ring.refresh.verify(t, verify_exp=verify_exp)  # noqa: E731
    token = f"{signing_input}.{b64url(algorithm.sign(signing_input.encode(), key))}"
    result = outcome(verify, token)
    if not isinstance(result, TokenError):
        assert all(isinstance(getattr(result, c), str) for c in ("sub", "sid", "jti"))
        assert isinstance(result.exp, int) and isinstance(result.iat, int)


# -- over HTTP: every forgery is a 401 problem, fast -----------------------------------------------


@dataclass
class Live:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    ring: Ring

    def send(self, request: Callable[[httpx.AsyncClient], Any]) -> tuple[httpx.Response, float]:
        async def timed() -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            response = await request(self.client)
            return response, time.perf_counter() - started

        result: tuple[httpx.Response, float] = self.portal.call(timed)
        return result


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The real app on a real store, running in its own thread's event loop for the whole
    module, with a signed-in user whose tokens are the forger's starting points."""
    data_dir = tmp_path_factory.mktemp("live") / "data"
    settings = Settings(data_dir=data_dir, database_url=store_url(data_dir), log_level="critical")
    migrate.upgrade(settings)
    with anyio.from_thread.start_blocking_portal() as portal:
        harnesses = _harness(settings)
        harness = portal.call(harnesses.__anext__)
        signed_in = harness.client()
        bare = harness.client()  # sends only what each test puts in its headers
        portal.call(signed_in.__aenter__)
        portal.call(bare.__aenter__)
        try:
            portal.call(harness.user)
            portal.call(harness.login, signed_in)
            services = harness.services
            ring = Ring(
                keyring=services.keyring,
                access=services.access_tokens,
                refresh=services.refresh_tokens,
                access_token=str(signed_in.cookies.get("access_token")),
                refresh_token=str(signed_in.cookies.get("refresh_token", path="/auth/refresh")),
                attacker=ec.generate_private_key(ec.SECP256R1()),
            )
            yield Live(portal=portal, client=bare, ring=ring)
        finally:
            portal.call(bare.__aexit__)
            portal.call(signed_in.__aexit__)
            with pytest.raises(StopAsyncIteration):
                portal.call(harnesses.__anext__)


FAST = 0.5  # seconds; a forged token must cost no key fetch, no hashing, no waiting


def assert_refused_fast(response: httpx.Response, elapsed: float, codes: set[str]) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in codes
    assert elapsed < FAST, f"took {elapsed:.3f} s"


def header_safe(token: str) -> str:
    """What an HTTP client can put in a header at all (no CR, LF, NUL; latin-1)."""
    return (
        token.encode("utf-8", "surrogatepass")
        .decode("latin-1")
        .translate({0: None, 10: None, 13: None})
    )


@HTTP
@given(
    forge=FORGERIES | GARBAGE.map(lambda g: lambda _r, _t: g),
    via=st.sampled_from(["bearer", "cookie"]),
)
def test_every_forged_access_token_is_a_fast_401_over_http(
    live: Live, forge: Forgery, via: str
) -> None:
    token = header_safe(forge(live.ring, live.ring.access_token)).strip()
    assume(token != live.ring.access_token and token)
    headers = (
        {"Authorization": f"Bearer {token}".encode("latin-1")}
        if via == "bearer"
        else {"Cookie": f"access_token={token}".encode("latin-1")}
    )
    response, elapsed = live.send(lambda c: c.get("/api/userinfo", headers=headers))
    assert_refused_fast(response, elapsed, {"invalid_token", "unauthenticated"})


@HTTP
@given(forge=FORGERIES | GARBAGE.map(lambda g: lambda _r, _t: g))
def test_every_forged_refresh_token_is_a_fast_401_over_http(live: Live, forge: Forgery) -> None:
    token = header_safe(forge(live.ring, live.ring.refresh_token)).strip()
    assume(token != live.ring.refresh_token and token)
    headers = {"Cookie": f"refresh_token={token}".encode("latin-1")}
    response, elapsed = live.send(lambda c: c.post("/auth/refresh", headers=headers))
    assert_refused_fast(
        response,
        elapsed,
        {"refresh_token_invalid", "refresh_token_expired", "refresh_token_missing"},
    )


def test_the_issued_tokens_are_accepted_over_http(live: Live) -> None:
    """The control for the two above: the forger's starting points do get in, so each 401
    there is the forgery's doing. (Runs last: the refresh spends the issued refresh token.)"""
    ring = live.ring
    for headers in (
        {"Authorization": f"Bearer {ring.access_token}"},
        {"Cookie": f"access_token={ring.access_token}"},
    ):
        response, _ = live.send(lambda c, h=headers: c.get("/api/userinfo", headers=h))
        assert response.status_code == 200, response.text
    cookie = {"Cookie": f"refresh_token={ring.refresh_token}"}
    response, _ = live.send(lambda c: c.post("/auth/refresh", headers=cookie))
    assert response.status_code == 200, response.text
