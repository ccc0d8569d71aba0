"""The plain-ASGI lane of ``POST /auth/refresh`` answers as the FastAPI route does (it calls the
same function), and leaves requests with a body to the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kizuna.deps import get_client
from kizuna.fastlane import RefreshFastLane
from tests.conftest import Harness
from tests.lanes import ROUTE_USED, client_without, cookie_attributes, fail_routes_through


def disable_route(harness: Harness) -> None:
    fail_routes_through(harness, get_client)


@pytest.fixture
async def plain(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with client_without(harness, RefreshFastLane) as client:
        yield client


async def test_the_lane_rotates_without_the_route(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        disable_route(harness)
        before = client.cookies.get("refresh_token", path="/auth/refresh")
        response = await client.post("/auth/refresh")
        assert response.status_code == 200, response.text
        assert client.cookies.get("refresh_token", path="/auth/refresh") != before
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        # A request with a body is the app's to judge (size limit), so the route answers it.
        with_body = await client.post("/auth/refresh", content=b"{}")
        assert with_body.json()["detail"] == ROUTE_USED


async def test_lane_and_route_answer_alike(harness: Harness, plain: httpx.AsyncClient) -> None:
    await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        token = client.cookies.get("refresh_token", path="/auth/refresh")
        fast_ok = await client.post("/auth/refresh")
    async with harness.client() as other:
        await harness.login(other)
        other_token = other.cookies.get("refresh_token", path="/auth/refresh")
        plain_ok = await plain.post(
            "/auth/refresh", headers={"Cookie": f"refresh_token={other_token}"}
        )
    assert (fast_ok.status_code, plain_ok.status_code) == (200, 200), plain_ok.text
    assert set(fast_ok.json()) == set(plain_ok.json())
    assert cookie_attributes(fast_ok) == cookie_attributes(plain_ok)
    for name in ("content-type", "cache-control", "x-content-type-options", "referrer-policy"):
        assert fast_ok.headers[name] == plain_ok.headers[name], name

    for cookie in ("", "refresh_token=garbage", f"refresh_token={token}x"):
        async with harness.client() as bare:
            fast = await bare.post("/auth/refresh", headers={"Cookie": cookie} if cookie else {})
        plain.cookies.clear()  # only what this request says
        slow = await plain.post("/auth/refresh", headers={"Cookie": cookie} if cookie else {})
        assert fast.status_code == slow.status_code == 401
        assert fast.content == slow.content
        assert fast.headers.get_list("set-cookie") == slow.headers.get_list("set-cookie")
        for name in ("content-type", "cache-control", "x-content-type-options", "referrer-policy"):
            assert fast.headers[name] == slow.headers[name], name
