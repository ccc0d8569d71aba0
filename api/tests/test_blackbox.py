"""The requirements of docs/SECURITY.md, checked black-box: HTTP over TCP against a running
``kizuna serve`` (uvicorn), as a client or an attacker on the network sees it. The test process
touches the data directory only to make users and to forge tokens with the server's own keys
(an attacker who stole one)."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.utils import base64url_encode

from kizuna import migrate
from kizuna.settings import Settings
from tests.conftest import PASSWORD, Harness, _harness, kizuna_serve, store_url
from tests.contract import LEAKS, assert_problem, assert_revoked_within, bearer, set_cookies

pytestmark = pytest.mark.asyncio(loop_scope="module")

EMAIL = "ada@example.com"
JSON = {"content-type": "application/json"}


@dataclass
class Served:
    base_url: str
    harness: Harness  # the same store and keys, in this process

    def client(self, *, source: str | None = None) -> httpx.AsyncClient:
        """``source``: the loopback address to connect from (a client of its own to throttle)."""
        transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
        return httpx.AsyncClient(base_url=self.base_url, timeout=20, transport=transport)

    async def login(self, client: httpx.AsyncClient, email: str = EMAIL) -> httpx.Response:
        response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return response


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    data_dir = tmp_path_factory.mktemp("blackbox") / "data"
    settings = Settings(data_dir=data_dir, database_url=store_url(data_dir), log_json=True)
    migrate.upgrade(settings)
    async for harness in _harness(settings):
        await harness.user(EMAIL)
        server = kizuna_serve(
            settings.data_dir,
            # This test connects from 127.0.0.1: a peer whose X-Forwarded-For is not believed.
            KIZUNA_TRUSTED_PROXIES="192.0.2.1/32",
            KIZUNA_LOGIN_FAIL_PER_IP="30",
            KIZUNA_MAX_BODY_BYTES="4096",
            KIZUNA_REFRESH_GRACE="2",
        )
        with server as base_url:
            yield Served(base_url=base_url, harness=harness)


def assert_no_leak(response: httpx.Response) -> None:
    for leak in LEAKS:
        assert leak not in response.text, leak


# -- cookies --------------------------------------------------------------------------------


async def test_session_cookies_are_httponly_secure_samesite_host_only(served: Served) -> None:
    async with served.client() as client:
        login = await served.login(client)
    cookies = set_cookies(login)
    access, refresh, device = (cookies[n] for n in ("access_token", "refresh_token", "device_id"))
    for cookie in (access, refresh, device):
        assert cookie.attr("httponly") == "" and cookie.attr("secure") == ""
        assert cookie.attr("domain") is None
    assert (access.attr("samesite") or "").lower() == "lax" and access.attr("path") == "/"
    assert (refresh.attr("samesite") or "").lower() == "strict"
    assert refresh.attr("path") == "/auth/refresh"
    assert (device.attr("samesite") or "").lower() == "lax"
    assert login.headers["cache-control"] == "no-store"
    assert access.value not in login.text and refresh.value not in login.text


# -- tokens ---------------------------------------------------------------------------------


async def test_the_jwks_publishes_public_signing_keys_only(served: Served) -> None:
    async with served.client() as client:
        response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200 and response.json()["keys"]
    for key in response.json()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private material"
        assert key["use"] == "sig" and key["alg"] in ("ES256", "RS256", "EdDSA")
        assert key["kty"] != "oct"


async def test_tokens_of_one_kind_are_refused_as_the_other(served: Served) -> None:
    async with served.client() as client:
        cookies = set_cookies(await served.login(client))
    access, refresh = cookies["access_token"].value, cookies["refresh_token"].value
    async with served.client() as probe:
        as_access = await probe.get("/api/userinfo", headers=bearer(refresh))
        assert_problem(as_access, 401, "invalid_token")
        as_refresh = await probe.post(
            "/auth/refresh", headers={"Cookie": f"refresh_token={access}"}
        )
        assert_problem(as_refresh, 401, "refresh_token_invalid")


async def refresh_with(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", headers={"Cookie": f"refresh_token={token}"})


def forged_refresh_tokens(served: Served, genuine: str) -> dict[str, str]:
    keyring = served.harness.services.keyring
    claims = jwt.decode(genuine, options={"verify_signature": False})
    header = jwt.get_unverified_header(genuine)
    mac = keyring.mac_key_by_id(header["kid"])
    assert mac is not None
    public_pem = keyring.signing_key.public_key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    head, body, _ = genuine.split(".")

    def hs256(payload: dict[str, object], secret: bytes) -> str:
        return jwt.encode(payload, secret, algorithm="HS256", headers=header)

    return {
        "alg-none": f"{head.split('.')[0]}.{body}.".replace(
            head,
            jwt.utils.base64url_encode(
                b'{"alg":"none","kid":"%s","typ":"rt+jwt"}' % header["kid"].encode()
            ).decode(),
        ),
        "wrong-secret": hs256(claims, b"x" * 32),
        # PyJWT itself refuses to HMAC with a public key; an attacker does it by hand.
        "hs256-with-the-public-key": f"{head}.{body}."
        + base64url_encode(
            hmac.new(public_pem, f"{head}.{body}".encode(), "sha256").digest()
        ).decode(),
        "claims-altered": ".".join(
            (head, hs256({**claims, "sid": "x"}, mac.secret).split(".")[1], genuine.split(".")[2])
        ),
        "signature-stripped": f"{head}.{body}.",
        "expired": hs256({**claims, "exp": int(time.time()) - 10}, mac.secret),
        "unknown-kid": jwt.encode(
            claims, mac.secret, algorithm="HS256", headers={**header, "kid": "r0"}
        ),
        "garbage": "not-a-token",
    }


async def test_forged_refresh_tokens_are_401_and_delete_the_cookies(served: Served) -> None:
    async with served.client() as client:
        genuine = set_cookies(await served.login(client))["refresh_token"].value
    async with served.client() as probe:
        for name, forged in forged_refresh_tokens(served, genuine).items():
            started = time.monotonic()
            response = await probe.post(
                "/auth/refresh", headers={"Cookie": f"refresh_token={forged}"}
            )
            assert time.monotonic() - started < 1.0, name  # a guard, not a speed claim
            want = "refresh_token_expired" if name == "expired" else "refresh_token_invalid"
            assert_problem(response, 401, want)
            deleted = set_cookies(response)
            assert deleted["refresh_token"].max_age == 0, name
            assert deleted["access_token"].max_age == 0, name
        # None of that touched the genuine token's session.
        real = await probe.post("/auth/refresh", headers={"Cookie": f"refresh_token={genuine}"})
        assert real.status_code == 200


# -- rotation, reuse, revocation over the wire ------------------------------------------------


async def test_reuse_after_the_grace_window_ends_the_family_for_thief_and_victim(
    served: Served,
) -> None:
    async with served.client() as client:
        first = set_cookies(await served.login(client))["refresh_token"].value
    async with served.client() as probe:
        rotated = await probe.post("/auth/refresh", headers={"Cookie": f"refresh_token={first}"})
        second = set_cookies(rotated)["refresh_token"].value
        access = set_cookies(rotated)["access_token"].value
        await asyncio.sleep(2.5)  # past the grace window (2 s here)
        theft = await probe.post("/auth/refresh", headers={"Cookie": f"refresh_token={first}"})
        assert_problem(theft, 401, "refresh_token_reused")
        victim = await probe.post("/auth/refresh", headers={"Cookie": f"refresh_token={second}"})
        assert_problem(victim, 401, "refresh_token_revoked")
        await assert_revoked_within(probe, access)


async def test_logout_ends_the_session_at_once_everywhere(served: Served) -> None:
    async with served.client() as client:
        cookies = set_cookies(await served.login(client))
    access = cookies["access_token"].value
    async with served.client() as probe:
        assert (await probe.get("/api/userinfo", headers=bearer(access))).status_code == 200
        out = await probe.post("/auth/logout", headers={"Cookie": f"access_token={access}"})
        assert out.status_code == 204
        await assert_revoked_within(probe, access)


# -- brute force and the client address -------------------------------------------------------


async def test_an_untrusted_peer_cannot_spread_its_failures_over_made_up_addresses(
    served: Served,
) -> None:
    async with served.client(source="127.0.0.9") as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/auth/login",
                    json={"email": f"spray{i}@example.com", "password": "x" * 12},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                )
                for i in range(45)
            )
        )
    counted = Counter(r.status_code for r in responses)
    assert counted[401] <= 30 and counted[429] >= 15, counted


# -- errors ---------------------------------------------------------------------------------

MALFORMED: list[tuple[str, str, dict[str, str], bytes, int, str]] = [
    ("POST", "/auth/login", {"content-type": "application/json"}, b"{", 422, "validation_error"),
    ("POST", "/auth/login", {"content-type": "application/json"}, b"[]", 422, "validation_error"),
    ("POST", "/auth/login", {"content-type": "text/plain"}, b"email=a", 422, "validation_error"),
    (
        "POST",
        "/auth/login",
        {"content-type": "application/json"},
        b"\xff\xfe",
        422,
        "validation_error",
    ),
    (
        "POST",
        "/auth/login",
        {"content-type": "application/json"},
        b"{" + b" " * 5000 + b"}",
        413,
        "payload_too_large",
    ),
    (
        "POST",
        "/auth/register",
        {"content-type": "application/json"},
        b'{"email": 1}',
        422,
        "validation_error",
    ),
    ("GET", "/auth/login", {}, b"", 405, "method_not_allowed"),
    ("DELETE", "/api/userinfo", {}, b"", 405, "method_not_allowed"),
    ("GET", "/nowhere", {}, b"", 404, "not_found"),
    ("GET", "/openapi.json", {}, b"", 404, "not_found"),
    ("GET", "/api/userinfo", {"authorization": "Bearer " + "A" * 6000}, b"", 401, "invalid_token"),
    ("GET", "/api/userinfo", {"authorization": "Basic YTpi"}, b"", 401, "invalid_token"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), MALFORMED)
async def test_bad_input_gets_a_clear_problem_never_a_500_or_an_internal_detail(
    served: Served,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    async with served.client() as client:
        response = await client.request(method, path, headers=headers, content=body)
    assert_problem(response, status, code)
    assert_no_leak(response)


async def test_no_cross_origin_access_is_granted(served: Served) -> None:
    origin = {"Origin": "https://evil.example"}
    async with served.client() as client:
        login = await client.post(
            "/auth/login", json={"email": EMAIL, "password": "wrong password"}, headers=origin
        )
        preflight = await client.options(
            "/auth/login", headers={**origin, "Access-Control-Request-Method": "POST"}
        )
    for response in (login, preflight):
        assert not any(h.startswith("access-control-") for h in response.headers), response.headers
    assert preflight.status_code == 405


# -- passwords and accounts -------------------------------------------------------------------


async def test_the_password_policy_over_the_wire(served: Served) -> None:
    async with served.client() as client:
        for weak in ("short", "password123", "x" * 129):
            body = {"email": "weak@example.com", "password": weak}
            assert_problem(await client.post("/auth/register", json=body), 422, "weak_password")
        surrogate = b'{"email": "odd@example.com", "password": "abcdefgh\\ud800ij"}'
        odd = await client.post("/auth/register", content=surrogate, headers=JSON)
        assert_problem(odd, 422, "weak_password")
        long_one = {"email": "long@example.com", "password": "é" * 64 + " long enough"}
        assert (await client.post("/auth/register", json=long_one)).status_code == 201


async def test_any_unicode_spelling_of_a_password_signs_in(served: Served) -> None:
    composed, decomposed = "caf\u00e9 au lait 42", "cafe\u0301 au lait 42"
    async with served.client() as client:
        body = {"email": "nfkc@example.com", "password": composed}
        assert (await client.post("/auth/register", json=body)).status_code == 201
        again = {"email": "nfkc@example.com", "password": decomposed}
        assert (await client.post("/auth/login", json=again)).status_code == 200


async def test_unknown_account_and_wrong_password_get_the_same_answer(served: Served) -> None:
    async with served.client() as client:
        wrong = await client.post("/auth/login", json={"email": EMAIL, "password": "not it at all"})
        unknown = await client.post(
            "/auth/login", json={"email": "nobody@example.com", "password": "not it at all"}
        )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers


async def test_a_password_change_ends_every_other_session(served: Served) -> None:
    email, password = "changer@example.com", "the first long secret"
    async with served.client() as here, served.client() as there:
        body = {"email": email, "password": password}
        assert (await here.post("/auth/register", json=body)).status_code == 201
        other = set_cookies(await there.post("/auth/login", json=body))["access_token"].value
        mine = set_cookies(await here.post("/auth/login", json=body))["access_token"].value
        change = await here.post(
            "/auth/password",
            json={"current_password": password, "new_password": "the second long secret"},
            headers=bearer(mine),
        )
        assert change.status_code == 204
        await assert_revoked_within(there, other)
        assert (await here.get("/api/userinfo", headers=bearer(mine))).status_code == 200


async def test_a_user_ends_one_of_their_devices_and_only_their_own(served: Served) -> None:
    async with served.client() as phone, served.client() as laptop, served.client() as bob:
        phone_access = set_cookies(await served.login(phone))["access_token"].value
        laptop_login = await served.login(laptop)
        laptop_access = set_cookies(laptop_login)["access_token"].value
        body = {"email": "bob@example.com", "password": PASSWORD}
        bob_access = set_cookies(await bob.post("/auth/register", json=body))["access_token"].value
        devices = (await phone.get("/api/sessions", headers=bearer(phone_access))).json()
        assert laptop_login.json()["session_id"] in {d["id"] for d in devices}
        not_mine = await bob.delete(
            f"/api/sessions/{laptop_login.json()['session_id']}", headers=bearer(bob_access)
        )
        assert_problem(not_mine, 404, "not_found")
        ended = await phone.delete(
            f"/api/sessions/{laptop_login.json()['session_id']}", headers=bearer(phone_access)
        )
        assert ended.status_code == 204
        await assert_revoked_within(laptop, laptop_access)


async def test_disabling_an_account_ends_its_sessions_and_its_logins(served: Served) -> None:
    await served.harness.user("root@example.com", roles=("admin",))
    async with served.client() as admin, served.client() as victim:
        admin_access = set_cookies(await served.login(admin, "root@example.com"))["access_token"]
        body = {"email": "gone@example.com", "password": PASSWORD}
        registered = await victim.post("/auth/register", json=body)
        victim_id = registered.json()["user"]["id"]
        victim_access = set_cookies(registered)["access_token"].value
        patch = await admin.patch(
            f"/api/admin/users/{victim_id}",
            json={"disabled": True},
            headers=bearer(admin_access.value),
        )
        assert patch.status_code == 200
        await assert_revoked_within(victim, victim_access)
        refused = await victim.post("/auth/login", json=body)
        assert_problem(refused, 401, "invalid_credentials")
        as_user = await victim.get("/api/admin/users", headers=bearer(victim_access))
        assert as_user.status_code == 401
