"""The plain-ASGI lane of ``POST /auth/login`` answers as the FastAPI route does (it calls the
same function), and hands anything it does not handle to the app, body included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kizuna.deps import get_client
from kizuna.fastlane import LoginFastLane
from tests.conftest import PASSWORD, Harness
from tests.lanes import client_without, cookie_attributes, fail_routes_through
from tests.test_errors import store_down

EMAIL = "ada@example.com"
SAME = ("content-type", "cache-control", "x-content-type-options", "referrer-policy")


def disable_route(harness: Harness) -> None:
    fail_routes_through(harness, get_client)


@pytest.fixture
async def plain(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with client_without(harness, LoginFastLane) as client:
        yield client


async def test_the_lane_signs_in_without_the_route(harness: Harness) -> None:
    await harness.user()
    disable_route(harness)
    async with harness.client() as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 200, response.text
        assert response.json()["user"]["email"] == EMAIL
        assert set(cookie_attributes(response)) == {"access_token", "refresh_token", "device_id"}
        # The session it opened is real: the API accepts its access token.
        assert (await client.get("/api/userinfo")).status_code == 200
        # Signing in again on this browser keeps the device and ends the previous session.
        again = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert again.status_code == 200
        assert "device_id" not in cookie_attributes(again)
        sessions = await client.get("/api/sessions")
        assert len(sessions.json()) == 1


async def test_lane_and_route_answer_alike(harness: Harness, plain: httpx.AsyncClient) -> None:
    await harness.user()
    async with harness.client() as client:
        fast = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    slow = await plain.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert (fast.status_code, slow.status_code) == (200, 200), slow.text
    assert fast.json()["user"] == slow.json()["user"]
    assert set(fast.json()) == set(slow.json())
    assert cookie_attributes(fast) == cookie_attributes(slow)
    for name in SAME:
        assert fast.headers[name] == slow.headers[name], name

    # Wrong password and unknown account: the same bytes either way.
    for email, password in ((EMAIL, "wrong password 1"), ("nobody@example.com", PASSWORD)):
        async with harness.client() as client:
            fast = await client.post("/auth/login", json={"email": email, "password": password})
        slow = await plain.post("/auth/login", json={"email": email, "password": password})
        assert fast.status_code == slow.status_code == 401
        assert fast.content == slow.content
        assert "set-cookie" not in fast.headers
        for name in SAME:
            assert fast.headers[name] == slow.headers[name], name


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"email": "ada@example.com"}', "application/json"),  # no password
        (b'{"email": "ada@example.com", "password": 5}', "application/json"),
        (b"not json", "application/json"),
        (b'{"email": "ada@example.com", "password": "x"}', "text/plain"),
    ],
)
async def test_what_the_lane_does_not_take_the_app_answers(
    harness: Harness, plain: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    async with harness.client() as client:
        fast = await client.post(
            "/auth/login", content=content, headers={"Content-Type": content_type}
        )
    slow = await plain.post("/auth/login", content=content, headers={"Content-Type": content_type})
    assert fast.status_code == slow.status_code
    assert fast.status_code in (401, 422)
    assert fast.content == slow.content


async def test_the_body_read_by_the_lane_reaches_the_route(harness: Harness) -> None:
    """A body the lane refuses is handed on unchanged: the route's 422 names the field."""
    async with harness.client() as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "pass": PASSWORD})
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["errors"]}
    assert ("body", "password") in fields


async def test_limits_still_apply(harness: Harness) -> None:
    limit = harness.services.settings.max_body_bytes
    big = b'{"email": "ada@example.com", "password": "' + b"x" * limit + b'"}'
    async with harness.client() as client:
        declared = await client.post(
            "/auth/login", content=big, headers={"Content-Type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:
            yield big

        streamed = await client.post(
            "/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"
    assert streamed.status_code == 413


async def test_throttled_through_the_lane(harness: Harness) -> None:
    await harness.user()
    disable_route(harness)
    async with harness.client() as client:
        codes = []
        for _ in range(12):
            response = await client.post(
                "/auth/login", json={"email": EMAIL, "password": "wrong password 1"}
            )
            codes.append(response.status_code)
        assert codes[0] == 401
        assert codes[-1] == 429
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["code"] == "too_many_attempts"


async def test_store_down_through_the_lane_is_503(harness: Harness, tmp_path: Path) -> None:
    await harness.user()
    disable_route(harness)
    async with harness.client() as client, store_down(harness, tmp_path):
        response = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 503
    assert response.json()["code"] == "store_unavailable"
    assert "set-cookie" not in response.headers
    assert "missing-dir" not in response.text
