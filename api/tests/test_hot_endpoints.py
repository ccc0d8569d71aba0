"""The hot endpoints (``kizuna.hot``: userinfo, refresh, login), each implemented once in front
of FastAPI's stack: every case of each endpoint, answered as the rest of the API answers —
problem+json from the one catalogue, the standard headers, the body limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kizuna import accounts
from kizuna.hot import userinfo as userinfo_module
from kizuna.hot.endpoint import HotEndpoints
from kizuna.session_cache import SessionView
from tests.conftest import PASSWORD, Harness
from tests.contract import access_cookie, assert_problem, bearer
from tests.test_errors import store_down

EMAIL = "ada@example.com"
JSON = {"Content-Type": "application/json"}


async def signed_in(harness: Harness, **user: Any) -> tuple[str, str]:
    """(access token, session id) of a fresh login."""
    await harness.user(EMAIL, **user)
    async with harness.client() as browser:
        body = (await harness.login(browser)).json()
        return access_cookie(browser), body["session_id"]


def assert_standard_headers(response: httpx.Response) -> None:
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


# -- GET /api/userinfo ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["bearer", "cookie", "cookie among others", "with a query"])
async def test_userinfo_answers_the_signed_in_user_the_same_every_time(
    harness: Harness, how: str
) -> None:
    # Non-ASCII and several roles, so the encoding and order are exercised too.
    token, sid = await signed_in(harness, name="Ada Lovelace — 愛", roles=("editor", "admin"))
    headers = {
        "bearer": bearer(token),
        "cookie": {"Cookie": f"access_token={token}"},
        "cookie among others": {"Cookie": f'device_id=abc; access_token="{token}"; theme=dark'},
        "with a query": bearer(token),
    }[how]
    path = "/api/userinfo?x=1" if how == "with a query" else "/api/userinfo"
    async with harness.client() as client:
        first = await client.get(path, headers=headers)
        again = await client.get(path, headers=headers)  # from the answer cache
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["session"]["id"] == sid and body["name"] == "Ada Lovelace — 愛"
    assert body["roles"] == ["admin", "editor"] and body["email"] == EMAIL
    assert again.content == first.content and again.headers.raw == first.headers.raw
    assert first.headers["content-type"] == "application/json"
    assert_standard_headers(first)


async def test_userinfo_reads_the_first_of_repeated_headers(harness: Harness) -> None:
    token, _ = await signed_in(harness)
    good, bad = f"Bearer {token}", "Bearer garbage"
    async with harness.client() as client:
        for first, second, status in ((good, bad, 200), (bad, good, 401)):
            for name, one, two in (
                ("Authorization", first, second),
                ("Cookie", f"access_token={first[7:]}", f"access_token={second[7:]}"),
            ):
                response = await client.get("/api/userinfo", headers=[(name, one), (name, two)])
                assert response.status_code == status, (name, response.text)


async def test_userinfo_refuses_what_is_not_a_live_session_in_words(harness: Harness) -> None:
    token, sid = await signed_in(harness)
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "unauthenticated"),
        ({"Cookie": "device_id=abc"}, "unauthenticated"),
        ({"Authorization": "Bearer garbage"}, "invalid_token"),
        ({"Authorization": "Bearer "}, "invalid_token"),
        ({"Authorization": f"Basic {token}"}, "invalid_token"),
        ({"Cookie": "access_token=garbage"}, "invalid_token"),
        (bearer(token[:-4] + "AAAA"), "invalid_token"),  # a bad signature
    ]
    async with harness.client() as client:
        for headers, code in cases:
            response = await client.get("/api/userinfo", headers=headers)
            assert_problem(response, 401, code)
            assert_standard_headers(response)
        await accounts.revoke_sessions(harness.services, session_ids=[sid], reason="test")
        revoked = await client.get("/api/userinfo", headers=bearer(token))
    assert_problem(revoked, 401, "invalid_token")
    assert revoked.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_userinfo_other_methods_and_bodies(harness: Harness) -> None:
    token, _ = await signed_in(harness)
    limit = harness.services.settings.max_body_bytes
    async with harness.client() as client:
        head = await client.head("/api/userinfo", headers=bearer(token))
        post = await client.post("/api/userinfo", headers=bearer(token))
        small = await client.request("GET", "/api/userinfo", headers=bearer(token), content=b"{}")
        big = await client.request(
            "GET", "/api/userinfo", headers=bearer(token), content=b"x" * (limit + 1)
        )
    assert head.status_code == 405 and head.headers["allow"] == "GET"
    assert_problem(post, 405, "method_not_allowed")
    assert small.status_code == 200  # a GET's body means nothing; within the limit, ignored
    assert_problem(big, 413, "payload_too_large")


async def test_a_changed_account_is_not_served_from_the_answer_cache(harness: Harness) -> None:
    token, _ = await signed_in(harness, roles=("editor",))
    async with harness.client() as client, harness.client() as admin:
        assert (await client.get("/api/userinfo", headers=bearer(token))).json()["roles"] == [
            "editor"
        ]
        await harness.user("root@example.com", roles=("admin",))
        await harness.login(admin, "root@example.com")
        listed = (await admin.get("/api/admin/users")).json()["users"]
        ada = next(u for u in listed if u["email"] == EMAIL)
        patched = await admin.patch(f"/api/admin/users/{ada['id']}", json={"roles": ["viewer"]})
        assert patched.status_code == 200, patched.text
        response = await client.get("/api/userinfo", headers=bearer(token))
    assert response.json()["roles"] == ["viewer"]


async def test_the_answer_cache_is_bounded(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(userinfo_module, "_MOST_CACHED", 2)
    await harness.user(EMAIL)
    tokens = []
    for _ in range(3):
        async with harness.client() as browser:
            await harness.login(browser)
            tokens.append(access_cookie(browser))
    hot = harness.app.middleware_stack  # built at start-up: the hot endpoints are outermost
    assert isinstance(hot, HotEndpoints)
    handler = hot._by_path["/api/userinfo"].handler
    assert isinstance(handler, userinfo_module.Userinfo)
    async with harness.client() as client:
        for token in tokens * 2:
            assert (await client.get("/api/userinfo", headers=bearer(token))).status_code == 200
            assert len(handler._answers) <= 2
    assert all(isinstance(view, SessionView) for view in handler._answers)


async def test_a_store_failure_is_503_and_the_store_is_asked_once(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, sid = await signed_in(harness)
    cache = harness.services.session_cache
    asked: list[str] = []
    real_get = cache.get

    async def counting_get(session_id: str) -> SessionView | None:
        asked.append(session_id)
        return await real_get(session_id)

    monkeypatch.setattr(cache, "get", counting_get)
    async with harness.client() as client:
        async with store_down(harness, tmp_path):
            cache.forget(sid)
            response = await client.get("/api/userinfo", headers=bearer(token))
            assert asked == [sid]
            assert_problem(response, 503, "store_unavailable")
            assert response.headers["retry-after"] == "1"
        # Back up: the same token works.
        assert (await client.get("/api/userinfo", headers=bearer(token))).status_code == 200


# -- POST /auth/login -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"email": "ada@example.com"}', "application/json"),
        (b'{"email": "ada@example.com", "password": "x", "extra": 1}', "application/json"),
        (b'{"email": "ada@example.com", "password": "x"}', "text/plain"),
        (b"", "application/json"),
    ],
)
async def test_login_refuses_a_body_it_cannot_read_in_words(
    harness: Harness, content: bytes, content_type: str
) -> None:
    async with harness.client() as client:
        response = await client.post(
            "/auth/login", content=content, headers={"Content-Type": content_type}
        )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] and all(error["loc"][0] == "body" for error in body["errors"])
    assert "set-cookie" not in response.headers
    assert_standard_headers(response)


async def test_login_names_the_missing_field(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "pass": PASSWORD})
    fields = {tuple(error["loc"]) for error in response.json()["errors"]}
    assert ("body", "password") in fields


async def test_login_bodies_over_the_limit_are_413_declared_or_streamed(harness: Harness) -> None:
    limit = harness.services.settings.max_body_bytes
    big = b'{"email": "ada@example.com", "password": "' + b"x" * limit + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        yield big

    async with harness.client() as client:
        declared = await client.post("/auth/login", content=big, headers=JSON)
        streamed = await client.post("/auth/login", content=chunks(), headers=JSON)
    assert_problem(declared, 413, "payload_too_large")
    assert_problem(streamed, 413, "payload_too_large")


async def test_login_other_methods_are_405(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.get("/auth/login")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_login_when_the_store_is_down_is_503(harness: Harness, tmp_path: Path) -> None:
    await harness.user()
    async with harness.client() as client, store_down(harness, tmp_path):
        response = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert_problem(response, 503, "store_unavailable")
    assert "set-cookie" not in response.headers
    assert "missing-dir" not in response.text


# -- POST /auth/refresh -----------------------------------------------------------------------


async def test_refresh_ignores_a_body_within_the_limit_and_refuses_one_over_it(
    harness: Harness,
) -> None:
    await harness.user()
    limit = harness.services.settings.max_body_bytes
    async with harness.client() as client:
        await harness.login(client)
        with_body = await client.post("/auth/refresh", content=b"{}", headers=JSON)
        assert with_body.status_code == 200, with_body.text
        too_big = await client.post("/auth/refresh", content=b"x" * (limit + 1), headers=JSON)
        assert_problem(too_big, 413, "payload_too_large")
        get = await client.get("/auth/refresh")
        assert_problem(get, 405, "method_not_allowed")
