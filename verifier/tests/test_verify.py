"""Every check of a token, against keys served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import HMACAlgorithm

from kizuna_verifier import InvalidToken, Principal, Reason, Verifier
from tests.conftest import AUDIENCE, DROP, ISSUER, FakeKizuna, Issuer, MakeVerifier


async def refused(verifier: Verifier, token: str, reason: Reason) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    assert caught.value.reason is reason, caught.value
    return caught.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HEAD = b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}).encode())


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    parts = (json.dumps(header).encode(), json.dumps(claims).encode())
    return ".".join([*(b64(p) for p in parts), b64(signature)])


async def test_a_good_token_gives_its_principal(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier()
    token = issuer.token(sub="ada", sid="s-1", jti="j-1", roles=["editor", "viewer", "editor"])
    principal = await verifier.verify(token)
    assert isinstance(principal, Principal)
    assert (principal.user_id, principal.session_id, principal.token_id) == ("ada", "s-1", "j-1")
    assert principal.roles == ("editor", "viewer")
    assert principal.holds("editor") and principal.holds("editor", "viewer")
    assert not principal.holds("admin") and not principal.holds("editor", "admin")
    assert principal.expires_at - principal.issued_at == 300
    assert principal.claims["iss"] == ISSUER and principal.claims["aud"] == AUDIENCE
    with pytest.raises(TypeError):
        principal.claims["sub"] = "mallory"  # type: ignore[index]


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
async def test_each_algorithm_kizuna_signs_with(
    alg: str, issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    key = issuer.add(f"key-{alg}", alg)
    assert (await make_verifier().verify(issuer.token(key))).user_id == "user-1"


# -- the header ----------------------------------------------------------------------------


async def test_only_pinned_algorithms(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    rsa_key = issuer.add("rsa", "RS256")
    pinned = make_verifier(algorithms=["ES256"])
    await refused(pinned, issuer.token(rsa_key), Reason.wrong_alg)
    assert (await pinned.verify(issuer.token())).user_id == "user-1"


async def test_alg_none_is_refused(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    claims = issuer.claims()
    for alg in ("none", "None", "NONE"):
        token = unsigned({"alg": alg, "typ": "at+jwt", "kid": "k1"}, claims)
        await refused(verifier, token, Reason.wrong_alg)
    # And the library's own way of making one.
    token = jwt.encode(claims, "", algorithm="none", headers={"kid": "k1", "typ": "at+jwt"})
    await refused(verifier, token, Reason.wrong_alg)


async def test_hs256_with_the_public_key_as_secret_is_refused(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    """The classic confusion: an attacker MACs a token with the published public key."""
    verifier = make_verifier()
    public = issuer.default.private.public_key()
    for secret in (
        public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        json.dumps(issuer.default.jwk()).encode(),
    ):
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}
        signing_input = ".".join(b64(json.dumps(p).encode()) for p in (header, issuer.claims()))
        mac = HMACAlgorithm(HMACAlgorithm.SHA256).sign(signing_input.encode(), secret)
        await refused(verifier, signing_input + "." + b64(mac), Reason.wrong_alg)


@pytest.mark.parametrize(
    "algorithms", [["HS256"], ["none"], [], ["ES256", "HS512"], ["es256"], ["RS1"]]
)
def test_a_verifier_cannot_be_pinned_to_a_symmetric_or_unknown_algorithm(
    algorithms: list[str], kizuna: FakeKizuna
) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=kizuna.jwks_url, algorithms=algorithms)


def test_settings_are_checked(kizuna: FakeKizuna) -> None:
    ok: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": kizuna.jwks_url}
    with pytest.raises(TypeError):
        Verifier(**ok, algorithms="ES256")
    for bad in (
        {"issuer": ""},
        {"audience": ""},
        {"jwks_url": "file:///etc/jwks.json"},
        {"leeway": -1},
        {"leeway": 3600},
        {"cache_size": -1},
    ):
        with pytest.raises(ValueError):
            Verifier(**{**ok, **bad})


async def test_the_key_must_be_for_the_tokens_alg(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    """An ES256 header naming an RSA key's kid: refused before any signature is computed."""
    rsa_key = issuer.add("rsa", "RS256")
    verifier = make_verifier()
    forged = issuer.token(issuer.default, headers={"kid": rsa_key.kid})
    await refused(verifier, forged, Reason.wrong_alg)


@pytest.mark.parametrize("typ", [DROP, "JWT", "rt+jwt", "at+jwt+x", 1, None])
async def test_typ_must_be_at_jwt(typ: Any, issuer: Issuer, make_verifier: MakeVerifier) -> None:
    await refused(make_verifier(), issuer.token(headers={"typ": typ}), Reason.wrong_typ)


async def test_typ_may_be_the_media_type_form(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    for typ in ("application/at+jwt", "AT+JWT"):
        assert await make_verifier().verify(issuer.token(headers={"typ": typ}))


async def test_a_token_without_kid_is_refused(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    await refused(make_verifier(), issuer.token(headers={"kid": DROP}), Reason.unknown_key)


async def test_embedded_keys_and_key_urls_are_never_used(
    issuer: Issuer, make_verifier: MakeVerifier, kizuna: FakeKizuna
) -> None:
    """A token signed with the attacker's key, which it carries (jwk) or points to (jku,
    x5u): checked against the published key of its kid, so the signature is bad, and nothing
    is fetched from where it points."""
    verifier = make_verifier()
    attacker = issuer.add("k1", "ES256", publish=False)  # same kid as the real key
    issuer.keys["k1"] = issuer.default
    forged = issuer.token(
        attacker,
        headers={
            "jwk": attacker.jwk(),
            "jku": kizuna.base_url + "/attacker-jwks",
            "x5u": kizuna.base_url + "/attacker-cert",
        },
    )
    await refused(verifier, forged, Reason.bad_signature)
    assert kizuna.jwks_hits == 1


# -- the signature and the claims -----------------------------------------------------------


async def test_a_changed_payload_or_signature_is_refused(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier()
    token = issuer.token()
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    tampered = ".".join([head, b64(json.dumps(claims).encode()), signature])
    await refused(verifier, tampered, Reason.bad_signature)
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    await refused(verifier, ".".join([head, payload, flipped]), Reason.bad_signature)
    # Signed by another key under the published kid.
    other = issuer.add("k1", "ES256", publish=False)
    issuer.keys["k1"] = issuer.default
    await refused(verifier, issuer.token(other), Reason.bad_signature)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.test"}, Reason.wrong_issuer),
        ({"aud": "another-api"}, Reason.wrong_audience),
        ({"aud": ["another-api", "third"]}, Reason.wrong_audience),
        ({"exp": int(time.time()) - 60}, Reason.expired),
        ({"iat": int(time.time()) + 60}, Reason.not_yet_valid),
        ({"nbf": int(time.time()) + 60}, Reason.not_yet_valid),
        ({"sub": 42}, Reason.bad_claim),
        ({"sub": ""}, Reason.bad_claim),
        ({"sid": ["s"]}, Reason.bad_claim),
        ({"jti": None}, Reason.missing_claim),  # PyJWT: null is absent
        ({"roles": "admin"}, Reason.bad_claim),
        ({"roles": ["admin", 1]}, Reason.bad_claim),
        ({"exp": str(int(time.time()) + 60)}, Reason.bad_claim),
        ({"exp": True}, Reason.bad_claim),
    ],
)
async def test_claims_are_checked(
    claims: dict[str, Any], reason: Reason, issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    await refused(make_verifier(), issuer.token(**claims), reason)


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "sid", "jti", "roles"])
async def test_every_claim_is_required(
    claim: str, issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    await refused(make_verifier(), issuer.token(**{claim: DROP}), Reason.missing_claim)


async def test_an_audience_list_that_holds_ours_is_accepted(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    assert await make_verifier().verify(issuer.token(aud=["other", AUDIENCE]))


async def test_leeway_on_exp_and_iat(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    now = int(time.time())
    late = issuer.token(exp=now - 3)
    early = issuer.token(iat=now + 3)
    lenient = make_verifier(leeway=5, cache_size=0)
    assert await lenient.verify(late)
    assert await lenient.verify(early)
    strict = make_verifier(leeway=0, cache_size=0)
    await refused(strict, late, Reason.expired)
    await refused(strict, early, Reason.not_yet_valid)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "!!!.e30.sig",
        b64(b"[1,2]") + ".e30.c2ln",
        "x" * 9000,
        HEAD + ".é.c2ln",  # not ASCII
        HEAD + ".e30=.c2ln",  # padded
        HEAD + ".e30.c2ln=",
        HEAD + ".e30.c",  # not a whole byte
        "eyJ.e30.c2ln",
    ],
)
async def test_malformed_tokens_are_refused(token: str, make_verifier: MakeVerifier) -> None:
    await refused(make_verifier(), token, Reason.malformed)


# -- the cache ------------------------------------------------------------------------------


class CountingDecode:
    """Counts the verifications that get as far as the signature."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = Verifier._verify_signed

        async def counting(verifier: Verifier, token: str) -> Principal:
            self.calls += 1
            return await real(verifier, token)

        monkeypatch.setattr(Verifier, "_verify_signed", counting)


async def test_a_token_is_verified_once_until_it_expires(
    issuer: Issuer, make_verifier: MakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = CountingDecode(monkeypatch)
    verifier = make_verifier(leeway=0)
    token = issuer.token(exp=int(time.time()) + 2)
    first = await verifier.verify(token)
    for _ in range(5):
        assert await verifier.verify(token) is first
    assert decode.calls == 1
    # Past exp the remembered answer is an expiry, and the entry is gone.
    monkeypatch.setattr(time, "time", lambda: first.expires_at + 1.0)
    await refused(verifier, token, Reason.expired)
    assert token not in verifier._cache


async def test_the_cache_is_a_bounded_lru(
    issuer: Issuer, make_verifier: MakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = CountingDecode(monkeypatch)
    verifier = make_verifier(cache_size=2)
    a, b, c = (issuer.token() for _ in range(3))
    await verifier.verify(a)
    await verifier.verify(b)
    await verifier.verify(a)  # a is now the most recently used
    await verifier.verify(c)  # evicts b
    assert decode.calls == 3
    await verifier.verify(a)
    assert decode.calls == 3
    await verifier.verify(b)
    assert decode.calls == 4
    assert len(verifier._cache) == 2

    off = make_verifier(cache_size=0)
    await off.verify(a)
    await off.verify(a)
    assert decode.calls == 6 and len(off._cache) == 0


async def test_refusals_are_not_remembered_as_successes(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier()
    bad = issuer.token(iss="https://evil.test")
    for _ in range(2):
        await refused(verifier, bad, Reason.wrong_issuer)
    assert len(verifier._cache) == 0
