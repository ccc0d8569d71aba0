"""The key set: fetched from a real HTTP server, refetched on an unknown kid at most once per
interval, one fetch in flight shared by every caller, and an unreachable JWKS answered
``Unavailable`` (never an accepted token)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from jwt.algorithms import ECAlgorithm

from kizuna_verifier import InvalidToken, Reason, Unavailable, Verifier
from kizuna_verifier._jwks import parse_jwks
from tests.conftest import AUDIENCE, ISSUER, FakeKizuna, Issuer, MakeVerifier
from tests.test_verify import b64

ALL = frozenset({"ES256", "RS256", "EdDSA", "PS256"})


async def test_keys_are_fetched_once(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(cache_size=0)
    for _ in range(10):
        await verifier.verify(issuer.token())
    assert kizuna.jwks_hits == 1


async def test_start_fetches_the_keys_ahead_of_the_first_token(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier()
    await verifier.start()
    for _ in range(100):
        if kizuna.jwks_hits:
            break
        await asyncio.sleep(0.01)
    await verifier.verify(issuer.token())
    assert kizuna.jwks_hits == 1


async def test_a_new_kid_is_fetched_after_a_key_rotation(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(jwks_refetch_interval=0.0)
    await verifier.verify(issuer.token())
    rotated = issuer.add("k2", "RS256")
    assert (await verifier.verify(issuer.token(rotated))).user_id == "user-1"
    assert kizuna.jwks_hits == 2
    # The old key is still published and still known: no fetch for it.
    await verifier.verify(issuer.token())
    assert kizuna.jwks_hits == 2


async def test_an_unknown_kid_after_a_refetch_is_refused_without_another_fetch(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(jwks_refetch_interval=0.3)
    await verifier.verify(issuer.token())  # fetch 1
    stray = issuer.add("stray", "ES256", publish=False)
    await asyncio.sleep(0.35)
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(issuer.token(stray))  # fetch 2 (the interval has passed)
    assert caught.value.reason is Reason.unknown_key
    # Within the interval: refused at once, nothing fetched, whatever the kid.
    for kid in ("stray", "another", "a third"):
        with pytest.raises(InvalidToken) as caught:
            await verifier.verify(issuer.token(stray, headers={"kid": kid}))
        assert caught.value.reason is Reason.unknown_key
    assert kizuna.jwks_hits == 2
    # After the interval, one more fetch is allowed: a key published meanwhile is found.
    await asyncio.sleep(0.35)
    issuer.published.append("stray")
    assert await verifier.verify(issuer.token(stray))
    assert kizuna.jwks_hits == 3


async def test_concurrent_callers_share_one_fetch(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    kizuna.jwks_delay = 0.3
    verifier = make_verifier(cache_size=0)
    tokens = [issuer.token() for _ in range(20)]
    principals = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert len(principals) == 20 and kizuna.jwks_hits == 1
    # And again for a rotation: many tokens of a new key, one refetch.
    verifier.keys.refetch_interval = 0.0
    rotated = issuer.add("k2", "ES256")
    tokens = [issuer.token(rotated) for _ in range(20)]
    await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert kizuna.jwks_hits == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_fetch(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    kizuna.jwks_delay = 0.3
    verifier = make_verifier()
    impatient = asyncio.ensure_future(verifier.verify(issuer.token()))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert await verifier.verify(issuer.token())
    assert kizuna.jwks_hits == 1


async def test_an_unreachable_jwks_is_unavailable_never_accepted(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    kizuna.jwks_status = 503
    verifier = make_verifier()
    token = issuer.token()
    with pytest.raises(Unavailable) as caught:
        await verifier.verify(token)
    assert caught.value.reason == "keys" and caught.value.retry_after == 1
    # Retried at most once a second after a failure: meanwhile the same answer, no fetch.
    with pytest.raises(Unavailable):
        await verifier.verify(token)
    assert kizuna.jwks_hits == 1
    kizuna.jwks_status = 200
    await asyncio.sleep(1.05)
    assert await verifier.verify(token)
    assert kizuna.jwks_hits == 2


async def test_a_closed_port_is_unavailable(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    gone = FakeKizuna(issuer)
    url = gone.jwks_url
    gone.close()
    verifier = make_verifier(jwks_url=url)
    with pytest.raises(Unavailable):
        await verifier.verify(issuer.token())


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"keys": "no"}', b"{}", b'{"keys": [' + b"1," * 300_000 + b"1]}"]
)
async def test_a_jwks_that_is_not_one_is_unavailable(
    body: bytes, issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    kizuna.jwks_body = body
    with pytest.raises(Unavailable):
        await make_verifier().verify(issuer.token())


async def test_known_keys_stay_in_use_while_the_jwks_is_down(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(cache_size=0, jwks_max_age=0.0, jwks_refetch_interval=0.0)
    await verifier.verify(issuer.token())
    kizuna.jwks_status = 500
    for _ in range(3):
        assert await verifier.verify(issuer.token())
        await asyncio.sleep(0.02)
    # A key nobody has seen cannot be checked: no answer rather than a guess.
    stray = issuer.add("stray", "ES256")
    with pytest.raises(Unavailable):
        await verifier.verify(issuer.token(stray))


async def test_keys_are_refreshed_in_the_background_after_max_age(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(cache_size=0, jwks_max_age=0.1, jwks_refetch_interval=0.0)
    await verifier.verify(issuer.token())
    # The key is withdrawn (e.g. it leaked): once the keys are older than max_age, the next
    # token is still answered with what is known while the refresh runs...
    issuer.published.clear()
    issuer.add("k2", "ES256")
    await asyncio.sleep(0.15)
    assert await verifier.verify(issuer.token())
    for _ in range(100):
        if kizuna.jwks_hits == 2 and "k1" not in verifier.keys._keys:
            break
        await asyncio.sleep(0.01)
    # ...and afterwards the withdrawn key is gone.
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(issuer.token())
    assert caught.value.reason is Reason.unknown_key


async def test_redirects_are_not_followed(issuer: Issuer) -> None:
    """Only the HTTP layer is under test here: an httpx mock transport stands in for the
    server and answers the JWKS URL with a redirect to somewhere else."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://evil.test/jwks.json"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        verifier = Verifier(
            issuer=ISSUER,
            audience=AUDIENCE,
            jwks_url="https://auth.test/.well-known/jwks.json",
            http_client=client,
        )
        with pytest.raises(Unavailable):
            await verifier.verify(issuer.token())
        await verifier.close()
        assert not client.is_closed  # a client given to the verifier is the caller's to close
    assert seen == ["https://auth.test/.well-known/jwks.json"]


def test_unusable_keys_are_left_out_of_the_set(issuer: Issuer) -> None:
    good = issuer.default.jwk()
    rsa = issuer.add("r", "RS256").jwk()
    ed = issuer.add("e", "EdDSA").jwk()
    no_alg = {k: v for k, v in good.items() if k != "alg"} | {"kid": "no-alg"}
    rsa_no_alg = {k: v for k, v in rsa.items() if k != "alg"} | {"kid": "rsa-no-alg"}
    document: dict[str, Any] = {
        "keys": [
            good,
            rsa,
            ed,
            no_alg,  # EC P-256 without alg: ES256
            rsa_no_alg,  # RSA without alg: any pinned RSA algorithm
            good | {"kid": "private", "d": "c2VjcmV0"},  # private material: never
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            good | {"kid": "for-encryption", "use": "enc"},
            good | {"kid": "lying", "alg": "RS256"},  # an EC key that claims RSA
            good | {"kid": ""},
            {k: v for k, v in good.items() if k != "kid"},
            {"kty": "EC", "crv": "P-256", "kid": "broken", "x": "AA", "y": "AA"},
            "not an object",
        ]
    }
    keys = parse_jwks(document, ALL)
    assert {kid: sorted(by_alg) for kid, by_alg in keys.items()} == {
        "k1": ["ES256"],
        "r": ["RS256"],
        "e": ["EdDSA"],
        "no-alg": ["ES256"],
        "rsa-no-alg": ["PS256", "RS256"],
    }
    assert set(parse_jwks(document, frozenset({"ES256"}))) == {"k1", "no-alg"}


async def test_an_es256_key_is_not_used_for_another_curve(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    """ES384 in the header, signed with SHA-384 by the P-256 key that the JWKS publishes for
    ES256: the key is not for that algorithm."""
    verifier = make_verifier(algorithms=["ES256", "ES384"])
    header = {"alg": "ES384", "typ": "at+jwt", "kid": issuer.default.kid}
    signing_input = ".".join(b64(json.dumps(p).encode()) for p in (header, issuer.claims()))
    signature = ECAlgorithm(ECAlgorithm.SHA384).sign(
        signing_input.encode(),
        issuer.default.private,  # type: ignore[arg-type]
    )
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(signing_input + "." + b64(signature))
    assert caught.value.reason is Reason.wrong_alg
