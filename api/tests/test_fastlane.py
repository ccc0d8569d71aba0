"""The plain-ASGI fast lane of ``GET /api/userinfo`` answers exactly as the FastAPI route does,
and leaves every other outcome to the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Scope

from kizuna import accounts, fastlane
from kizuna.deps import Principal, get_principal
from kizuna.fastlane import UserinfoFastLane
from kizuna.routes.account import userinfo as real_userinfo
from kizuna.schemas import UserInfo
from kizuna.session_cache import SessionView
from tests.conftest import Harness
from tests.contract import access_cookie, assert_problem, bearer
from tests.lanes import ROUTE_USED, client_without, fail_routes_through
from tests.test_errors import store_down

EMAIL = "ada@example.com"
# Headers either path may differ in by nature; everything else must be identical.
COMPARED = ("content-type", "content-length", "cache-control", "x-content-type-options")


@pytest.fixture
async def clients(harness: Harness) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(with the fast lane, without it)"""
    async with harness.client() as fast, client_without(harness, UserinfoFastLane) as plain:
        yield fast, plain


async def signed_in(harness: Harness, **user: Any) -> tuple[str, str]:
    """(access token, session id) of a fresh login."""
    await harness.user(EMAIL, **user)
    async with harness.client() as browser:
        body = (await harness.login(browser)).json()
        return access_cookie(browser), body["session_id"]


@pytest.fixture
def route_disabled(harness: Harness) -> None:
    """The FastAPI route's principal dependency now fails with a telltale answer: any answer
    that is not it came from the fast lane."""
    fail_routes_through(harness, get_principal)


def assert_same(fast: httpx.Response, plain: httpx.Response) -> None:
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    assert fast.content == plain.content
    for name in COMPARED:
        assert fast.headers.get_list(name) == plain.headers.get_list(name), name
    assert fast.headers.raw == plain.headers.raw


# -- success: the same answer, byte for byte --------------------------------------------------


@pytest.mark.parametrize("how", ["bearer", "cookie", "cookie among others"])
async def test_fast_lane_answers_as_the_route_does(
    harness: Harness, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], how: str
) -> None:
    # Non-ASCII and several roles, so the encoding and order are exercised too.
    token, sid = await signed_in(harness, name="Ada Lovelace — 愛", roles=("editor", "admin"))
    headers = {
        "bearer": bearer(token),
        "cookie": {"Cookie": f"access_token={token}"},
        "cookie among others": {"Cookie": f'device_id=abc; access_token="{token}"; theme=dark'},
    }[how]
    fast, plain = clients
    first = await fast.get("/api/userinfo", headers=headers)
    again = await fast.get("/api/userinfo", headers=headers)  # the cached answer
    reference = await plain.get("/api/userinfo", headers=headers)
    assert reference.status_code == 200, reference.text
    assert reference.json()["session"]["id"] == sid
    assert reference.json()["name"] == "Ada Lovelace — 愛"
    assert_same(first, reference)
    assert_same(again, reference)
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["x-content-type-options"] == "nosniff"


async def test_repeated_headers_are_read_as_the_route_reads_them(
    harness: Harness, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    token, _ = await signed_in(harness)
    good, bad = f"Bearer {token}", "Bearer garbage"
    fast, plain = clients
    for first, second, status in ((good, bad, 200), (bad, good, 401)):
        for name, one, two in (
            ("Authorization", first, second),
            ("Cookie", f"access_token={first[7:]}", f"access_token={second[7:]}"),
        ):
            headers = [(name, one), (name, two)]
            response = await fast.get("/api/userinfo", headers=headers)
            assert response.status_code == status, (name, response.text)
            assert_same(response, await plain.get("/api/userinfo", headers=headers))


async def test_the_fast_lane_really_answers(harness: Harness, route_disabled: None) -> None:
    token, _ = await signed_in(harness)
    async with harness.client() as client:
        for headers in (bearer(token), {"Cookie": f"access_token={token}"}):
            response = await client.get("/api/userinfo", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["email"] == EMAIL
        # With a query string too: the path is what counts, as for the route.
        assert (await client.get("/api/userinfo?x=1", headers=bearer(token))).status_code == 200


async def test_what_the_fast_lane_leaves_to_the_route(
    harness: Harness, route_disabled: None
) -> None:
    token, _ = await signed_in(harness)
    async with harness.client() as client:
        head = await client.head("/api/userinfo", headers=bearer(token))
        with_body = await client.request(
            "GET", "/api/userinfo", headers=bearer(token), content=b"{}"
        )
        no_token = await client.get("/api/userinfo")
    assert head.status_code == 405  # FastAPI's own answer to HEAD on a GET route
    for response in (with_body, no_token):
        assert response.json()["detail"] == ROUTE_USED, response.text


async def test_a_changed_account_is_not_served_from_the_cache(
    harness: Harness, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    token, _ = await signed_in(harness, roles=("editor",))
    fast, plain = clients
    assert (await fast.get("/api/userinfo", headers=bearer(token))).json()["roles"] == ["editor"]
    await harness.user("root@example.com", roles=("admin",))
    async with harness.client() as admin:
        await harness.login(admin, "root@example.com")
        users = (await admin.get("/api/admin/users")).json()
        ada = next(u for u in users if u["email"] == EMAIL)
        patched = await admin.patch(f"/api/admin/users/{ada['id']}", json={"roles": ["viewer"]})
        assert patched.status_code == 200, patched.text
    harness.services.session_cache.forget_user(ada["id"])  # other processes: within the ttl
    response = await fast.get("/api/userinfo", headers=bearer(token))
    assert response.json()["roles"] == ["viewer"]
    assert_same(response, await plain.get("/api/userinfo", headers=bearer(token)))


async def test_the_answer_cache_is_bounded(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastlane, "_MAX_BODIES", 2)
    await harness.user(EMAIL)
    tokens = []
    for _ in range(3):
        async with harness.client() as browser:
            await harness.login(browser)
            tokens.append(access_cookie(browser))

    async def fallback(scope: Scope, receive: Any, send: Any) -> None:
        raise AssertionError("fell through")

    rendered: list[str] = []

    async def counting_userinfo(principal: Principal) -> UserInfo:
        rendered.append(principal.session.session_id)
        return await real_userinfo(principal)

    monkeypatch.setattr(fastlane, "userinfo", counting_userinfo)
    lane = UserinfoFastLane(fallback)
    await call(lane, harness.app, [(b"authorization", f"Bearer {tokens[0]}".encode())])
    await call(lane, harness.app, [(b"authorization", f"Bearer {tokens[0]}".encode())])
    assert len(rendered) == 1  # the second answer came from the cache
    for token in tokens * 2:
        sent = await call(lane, harness.app, [(b"authorization", f"Bearer {token}".encode())])
        assert sent[0]["status"] == 200
        assert len(lane._answers) <= 2
    assert all(isinstance(view, SessionView) for view in lane._answers)


async def call(
    app: Callable[..., Awaitable[None]], owner: FastAPI, headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/userinfo",
        "headers": headers,
        "app": owner,
    }
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the fast lane never reads the body")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


# -- failures: exactly as before, from the app ------------------------------------------------


async def test_failures_are_the_routes(
    harness: Harness, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
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
    fast, plain = clients
    for headers, code in cases:
        response = await fast.get("/api/userinfo", headers=headers)
        assert_problem(response, 401, code)
        assert_same(response, await plain.get("/api/userinfo", headers=headers))

    await accounts.revoke_sessions(harness.services, session_ids=[sid], reason="test")
    response = await fast.get("/api/userinfo", headers=bearer(token))
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert_same(response, await plain.get("/api/userinfo", headers=bearer(token)))


async def test_a_store_failure_is_503_and_the_store_is_asked_once(
    harness: Harness,
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, sid = await signed_in(harness)
    directory = harness.services.session_cache
    asked: list[str] = []
    real_get = directory.get

    async def counting_get(session_id: str) -> SessionView | None:
        asked.append(session_id)
        return await real_get(session_id)

    monkeypatch.setattr(directory, "get", counting_get)
    fast, plain = clients
    async with store_down(harness, tmp_path):
        directory.forget(sid)
        response = await fast.get("/api/userinfo", headers=bearer(token))
        assert asked == [sid]  # the fast lane's failure is the answer; not asked again
        assert_problem(response, 503, "store_unavailable")
        assert response.headers["retry-after"] == "1"
        assert_same(response, await plain.get("/api/userinfo", headers=bearer(token)))
    # Back up: the same token works, through the fast lane.
    assert (await fast.get("/api/userinfo", headers=bearer(token))).status_code == 200
