"""docs/protocol.md §4, ``/api/*``: userinfo, sessions (devices) and admin. One test (or case)
per row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import PASSWORD, Harness
from tests.contract import (
    access_cookie,
    assert_iso_utc,
    assert_problem,
    assert_revoked_within,
    bearer,
)

EMAIL = "ada@example.com"
SESSION_MAX_AGE = 7_776_000
BEARER_INVALID = 'Bearer error="invalid_token"'


async def login(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD
) -> httpx.Response:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response


def assert_invalid_token(response: httpx.Response) -> None:
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == BEARER_INVALID


def assert_unauthenticated(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthenticated")
    # RFC 6750 §3.1: no error attribute when no credentials were sent at all.
    assert response.headers["www-authenticate"] == "Bearer"


# -- GET /api/userinfo ------------------------------------------------------------------------


async def test_userinfo_with_bearer(harness: Harness) -> None:
    user_id = await harness.user(EMAIL, roles=("editor",), name="Ada L.")
    async with harness.client() as browser, harness.client() as server:
        body = (await login(browser)).json()
        device_id = browser.cookies.get("device_id")
        # The web tier's SSR: a cookie-less call with only the Bearer token.
        response = await server.get("/api/userinfo", headers=bearer(access_cookie(browser)))
    assert response.status_code == 200, response.text
    info = response.json()
    assert set(info) == {"sub", "email", "name", "roles", "session"}
    assert info["sub"] == user_id
    assert info["email"] == EMAIL
    assert info["name"] == "Ada L."
    assert info["roles"] == ["editor"]
    session = info["session"]
    assert set(session) == {"id", "device_id", "created_at", "expires_at"}
    assert session["id"] == body["session_id"]
    assert session["device_id"] == device_id
    now = datetime.now(UTC)
    created = assert_iso_utc(session["created_at"])
    expires = assert_iso_utc(session["expires_at"])
    assert abs(created - now) < timedelta(seconds=5)
    assert abs((expires - created) - timedelta(seconds=SESSION_MAX_AGE)) < timedelta(seconds=2)


async def test_userinfo_with_the_access_cookie(harness: Harness) -> None:
    user_id = await harness.user()
    async with harness.client() as browser:
        await login(browser)
        response = await browser.get("/api/userinfo")  # only the cookie jar, no header
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == user_id


async def test_userinfo_bearer_scheme_is_case_insensitive(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as browser, harness.client() as server:
        await login(browser)
        token = access_cookie(browser)
        response = await server.get("/api/userinfo", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200, response.text


async def test_userinfo_without_any_token(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.get("/api/userinfo")
    assert_unauthenticated(response)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic YWRhOmNvcnJlY3QgaG9yc2U=", id="basic"),
        pytest.param("Bearer", id="bearer-nothing"),
        pytest.param("Bearer    ", id="bearer-blank"),
        pytest.param("Token abc.def.ghi", id="other-scheme"),
        pytest.param("Bearer not-a-jwt", id="bearer-garbage"),
        pytest.param("Bearer a.b.c", id="bearer-jwt-shaped"),
    ],
)
async def test_userinfo_with_a_malformed_authorization(
    harness: Harness, authorization: str
) -> None:
    async with harness.client() as client:
        response = await client.get("/api/userinfo", headers={"Authorization": authorization})
    assert_invalid_token(response)


async def test_userinfo_with_a_garbage_access_cookie(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.get("/api/userinfo", headers={"Cookie": "access_token=garbage"})
    assert_invalid_token(response)


# -- GET /api/sessions ------------------------------------------------------------------------

SESSION_FIELDS = {"id", "device_id", "user_agent", "ip", "created_at", "last_used_at", "current"}


async def test_sessions_lists_the_users_devices(harness: Harness) -> None:
    await harness.user()
    await harness.user("bob@example.com")
    laptop_headers = {"User-Agent": "Laptop/1.0", "X-Forwarded-For": "203.0.113.7"}
    phone_headers = {"User-Agent": "Phone/2.0", "X-Forwarded-For": "2001:db8::42"}
    async with (
        harness.client(headers=laptop_headers) as laptop,
        harness.client(headers=phone_headers) as phone,
        harness.client() as bob,
    ):
        laptop_sid = (await login(laptop)).json()["session_id"]
        phone_sid = (await login(phone)).json()["session_id"]
        await login(bob, "bob@example.com")
        response = await laptop.get("/api/sessions")
        assert response.status_code == 200, response.text
        sessions = {s["id"]: s for s in response.json()}
        assert set(sessions) == {laptop_sid, phone_sid}  # not bob's
        for s in sessions.values():
            assert set(s) == SESSION_FIELDS
            assert_iso_utc(s["created_at"])
            assert_iso_utc(s["last_used_at"])
        assert sessions[laptop_sid]["current"] is True
        assert sessions[phone_sid]["current"] is False
        assert sessions[laptop_sid]["device_id"] == laptop.cookies.get("device_id")
        assert sessions[phone_sid]["device_id"] == phone.cookies.get("device_id")
        assert sessions[laptop_sid]["user_agent"] == "Laptop/1.0"
        assert sessions[phone_sid]["user_agent"] == "Phone/2.0"
        # The address is the forwarded client's, not the proxy's.
        assert sessions[laptop_sid]["ip"] == "203.0.113.7"
        assert sessions[phone_sid]["ip"] == "2001:db8::42"

        # From the phone's point of view, the phone is current.
        mine = {s["id"]: s["current"] for s in (await phone.get("/api/sessions")).json()}
        assert mine == {laptop_sid: False, phone_sid: True}


async def test_sessions_ip_from_an_untrusted_peer_is_the_peer(harness: Harness) -> None:
    await harness.user()
    async with harness.client(
        peer="198.51.100.9", headers={"X-Forwarded-For": "203.0.113.66"}
    ) as direct:
        await login(direct)
        sessions = (await direct.get("/api/sessions")).json()
    assert [s["ip"] for s in sessions] == ["198.51.100.9"]


async def test_sessions_ip_ignores_what_the_client_itself_forged(harness: Harness) -> None:
    """The browser sent its own X-Forwarded-For; the web tier appended the real address.
    Only the hop the trusted proxy vouches for counts."""
    await harness.user()
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.8"}
    async with harness.client(headers=headers) as client:
        await login(client)
        sessions = (await client.get("/api/sessions")).json()
    assert [s["ip"] for s in sessions] == ["203.0.113.8"]


async def test_sessions_needs_a_signed_in_user(harness: Harness) -> None:
    async with harness.client() as client:
        assert_unauthenticated(await client.get("/api/sessions"))
        assert_invalid_token(await client.get("/api/sessions", headers=bearer("nope")))


# -- DELETE /api/sessions/{id} ----------------------------------------------------------------


async def test_revoke_one_of_my_sessions(harness: Harness) -> None:
    await harness.user()
    async with (
        harness.client() as laptop,
        harness.client() as phone,
        harness.client() as probe,
    ):
        laptop_sid = (await login(laptop)).json()["session_id"]
        phone_sid = (await login(phone)).json()["session_id"]
        phone_access = access_cookie(phone)
        phone_refresh = phone.cookies.get("refresh_token", path="/auth/refresh")

        response = await laptop.delete(f"/api/sessions/{phone_sid}")
        assert response.status_code == 204, response.text
        assert response.content == b""
        await assert_revoked_within(probe, phone_access)
        refused = await probe.post(
            "/auth/refresh", headers={"Cookie": f"refresh_token={phone_refresh}"}
        )
        assert refused.status_code == 401
        # The caller's own session goes on; the list no longer shows the phone.
        listed = await laptop.get("/api/sessions")
        assert [s["id"] for s in listed.json()] == [laptop_sid]
        # A revoked session is no longer the caller's to revoke.
        assert_problem(await laptop.delete(f"/api/sessions/{phone_sid}"), 404, "not_found")


async def test_revoke_my_current_session(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as laptop, harness.client() as probe:
        sid = (await login(laptop)).json()["session_id"]
        token = access_cookie(laptop)
        assert (await laptop.delete(f"/api/sessions/{sid}")).status_code == 204
        await assert_revoked_within(probe, token)


async def test_revoke_someone_elses_or_an_unknown_session(harness: Harness) -> None:
    await harness.user()
    await harness.user("bob@example.com")
    async with harness.client() as ada, harness.client() as bob:
        await login(ada)
        bob_sid = (await login(bob, "bob@example.com")).json()["session_id"]
        theirs = await ada.delete(f"/api/sessions/{bob_sid}")
        unknown = await ada.delete(f"/api/sessions/{uuid.uuid4()}")
        weird = await ada.delete("/api/sessions/' OR 1=1 --")
        for response in (theirs, unknown, weird):
            assert_problem(response, 404, "not_found")
        # Someone else's and an unknown id are indistinguishable.
        assert theirs.content == unknown.content
        # Bob is untouched.
        assert (await bob.get("/api/userinfo")).status_code == 200


async def test_revoke_session_needs_a_signed_in_user(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as ada, harness.client() as stranger:
        sid = (await login(ada)).json()["session_id"]
        assert_unauthenticated(await stranger.delete(f"/api/sessions/{sid}"))
        assert (await ada.get("/api/userinfo")).status_code == 200


# -- /api/admin -------------------------------------------------------------------------------

ADMIN = "root@example.com"


@pytest.fixture
async def admin(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a user with role admin."""
    await harness.user(ADMIN, roles=("admin",), name="Root")
    async with harness.client() as client:
        await login(client, ADMIN)
        yield client


async def test_admin_needs_the_admin_role(harness: Harness) -> None:
    target = await harness.user(roles=("editor",))
    async with harness.client() as client, harness.client() as anonymous:
        await login(client)
        for response in (
            await client.get("/api/admin/users"),
            await client.patch(f"/api/admin/users/{target}", json={"roles": ["admin"]}),
        ):
            assert_problem(response, 403, "forbidden")
        # Nobody promoted themselves.
        assert (await client.get("/api/userinfo")).json()["roles"] == ["editor"]
        assert_unauthenticated(await anonymous.get("/api/admin/users"))
        assert_unauthenticated(
            await anonymous.patch(f"/api/admin/users/{target}", json={"disabled": True})
        )


async def test_admin_lists_users(harness: Harness, admin: httpx.AsyncClient) -> None:
    ada = await harness.user(roles=("editor",))
    response = await admin.get("/api/admin/users")
    assert response.status_code == 200, response.text
    users = {u["email"]: u for u in response.json()["users"]}
    assert set(users) == {EMAIL, ADMIN}
    for user in users.values():
        assert set(user) == {"id", "email", "name", "roles", "disabled", "created_at"}
        assert_iso_utc(user["created_at"])
    assert users[EMAIL]["id"] == ada
    assert users[EMAIL]["roles"] == ["editor"]
    assert users[EMAIL]["disabled"] is False
    assert users[ADMIN]["roles"] == ["admin"]
    assert "argon2" not in response.text and "password" not in response.text


async def test_admin_role_change_shows_in_userinfo_and_the_next_access_token(
    harness: Harness,
    admin: httpx.AsyncClient,
) -> None:
    ada = await harness.user()
    async with harness.client() as browser:
        await login(browser)
        response = await admin.patch(
            f"/api/admin/users/{ada}", json={"roles": ["viewer", "editor"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["roles"] == ["editor", "viewer"]
        assert response.json()["id"] == ada

        info = await browser.get("/api/userinfo")
        assert info.json()["roles"] == ["editor", "viewer"]
        assert (await browser.post("/auth/refresh")).status_code == 200
        claims = harness.services.access_tokens.verify(access_cookie(browser))
        assert sorted(claims.roles) == ["editor", "viewer"]
        # The admin's list agrees.
        listed = {u["id"]: u for u in (await admin.get("/api/admin/users")).json()["users"]}
        assert listed[ada]["roles"] == ["editor", "viewer"]


async def test_admin_demotion_bites_before_the_token_expires(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    other = await harness.user("second@example.com", roles=("admin",))
    async with harness.client() as second:
        await login(second, "second@example.com")
        assert (await second.get("/api/admin/users")).status_code == 200
        response = await admin.patch(f"/api/admin/users/{other}", json={"roles": []})
        assert response.status_code == 200, response.text
        # Its access token still says admin, but the account no longer does.
        assert_problem(await second.get("/api/admin/users"), 403, "forbidden")


async def test_admin_disable_revokes_sessions_and_refuses_login(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    ada = await harness.user()
    async with (
        harness.client() as laptop,
        harness.client() as phone,
        harness.client() as probe,
    ):
        await login(laptop)
        await login(phone)
        tokens = [access_cookie(laptop), access_cookie(phone)]
        refresh = laptop.cookies.get("refresh_token", path="/auth/refresh")
        wrong = await probe.post("/auth/login", json={"email": EMAIL, "password": "wrong guess"})

        response = await admin.patch(f"/api/admin/users/{ada}", json={"disabled": True})
        assert response.status_code == 200, response.text
        assert response.json()["disabled"] is True
        for token in tokens:
            await assert_revoked_within(probe, token)
        refused = await probe.post("/auth/refresh", headers={"Cookie": f"refresh_token={refresh}"})
        assert refused.status_code == 401
        # The right password: the same 401 as a wrong one, and no cookies.
        denied = await probe.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert_problem(denied, 401, "invalid_credentials")
        assert denied.content == wrong.content
        assert "set-cookie" not in denied.headers

        # Enabling the account again lets the user log in again (old sessions stay ended).
        enabled = await admin.patch(f"/api/admin/users/{ada}", json={"disabled": False})
        assert enabled.json()["disabled"] is False
        await login(probe)
        assert_invalid_token(await probe.get("/api/userinfo", headers=bearer(tokens[0])))


async def test_admin_patch_unknown_user(harness: Harness, admin: httpx.AsyncClient) -> None:
    response = await admin.patch(f"/api/admin/users/{uuid.uuid4()}", json={"disabled": True})
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"roles": ["Admin"]}, id="upper-case"),
        pytest.param({"roles": ["has space"]}, id="space"),
        pytest.param({"roles": [""]}, id="empty"),
        pytest.param({"roles": ["x" * 33]}, id="too-long"),
        pytest.param({"roles": ["admin; DROP TABLE users"]}, id="injection"),
        pytest.param({"roles": [7]}, id="not-a-string"),
        pytest.param({"roles": "admin"}, id="not-a-list"),
        pytest.param({"disabled": "maybe"}, id="disabled-not-a-bool"),
        pytest.param({"roles": ["editor"], "superuser": True}, id="extra-field"),
    ],
)
async def test_admin_patch_invalid(
    harness: Harness, admin: httpx.AsyncClient, body: dict[str, object]
) -> None:
    ada = await harness.user(roles=("editor",))
    response = await admin.patch(f"/api/admin/users/{ada}", json=body)
    assert_problem(response, 422, "validation_error")
    listed = {u["id"]: u for u in (await admin.get("/api/admin/users")).json()["users"]}
    assert listed[ada]["roles"] == ["editor"]
    assert listed[ada]["disabled"] is False
