"""docs/protocol.md §4 errors: everything is problem+json with a stable code and nothing internal;
unknown route, wrong method, too-large body; a store that cannot answer is a 503; health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from kizuna.db import Database
from kizuna.errors import CATALOGUE, TITLES, Code
from kizuna.problems import problem_response
from tests.conftest import PASSWORD, Harness, missing_store_url
from tests.contract import access_cookie, assert_no_leak, assert_problem, bearer

EMAIL = "ada@example.com"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/api/nope"),
        ("POST", "/auth/nope"),
        ("GET", "/auth/refresh/deeper"),
        ("GET", "/.well-known/nope"),
        ("GET", "/api/admin/users/x/y"),
        ("GET", "/../../etc/passwd"),
    ],
)
async def test_unknown_route(harness: Harness, method: str, path: str) -> None:
    async with harness.client() as client:
        response = await client.request(method, path)
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/login"),
        ("PUT", "/auth/register"),
        ("GET", "/auth/logout"),
        ("DELETE", "/api/userinfo"),
        ("POST", "/api/sessions"),
        ("POST", "/.well-known/jwks.json"),
        ("DELETE", "/api/admin/users"),
    ],
)
async def test_wrong_method(harness: Harness, method: str, path: str) -> None:
    async with harness.client() as client:
        response = await client.request(method, path)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers.get("allow")


def padded_register(size: int) -> bytes:
    """A valid registration body, padded with JSON whitespace to ``size`` bytes."""
    core = f'{{"email": "{EMAIL}", "password": "{PASSWORD}"}}'.encode()
    return core[:-1] + b" " * (size - len(core)) + b"}"


async def test_body_over_the_limit_with_content_length(harness: Harness) -> None:
    limit = harness.services.settings.max_body_bytes
    async with harness.client() as client:
        response = await client.post(
            "/auth/register",
            content=padded_register(limit + 1),
            headers={"Content-Type": "application/json"},
        )
    assert response.request.headers["content-length"] == str(limit + 1)
    assert_problem(response, 413, "payload_too_large")
    assert "set-cookie" not in response.headers
    # The handler never ran: no account was made.
    async with harness.client() as client:
        login = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login.status_code == 401


async def test_body_at_the_limit_is_accepted(harness: Harness) -> None:
    limit = harness.services.settings.max_body_bytes
    async with harness.client() as client:
        response = await client.post(
            "/auth/register",
            content=padded_register(limit),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 201, response.text


async def test_lying_content_length_is_refused(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.post(
            "/auth/login",
            content=b"{}",
            headers={"Content-Type": "application/json", "Content-Length": "99999999999"},
        )
    assert_problem(response, 413, "payload_too_large")


async def chunks(body: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_streamed_body_over_the_limit(harness: Harness) -> None:
    limit = harness.services.settings.max_body_bytes
    async with harness.client() as client:
        response = await client.post(
            "/auth/register",
            content=chunks(padded_register(limit * 4)),
            headers={"Content-Type": "application/json"},
        )
    # Sent without a length: the server must count as it reads.
    assert "content-length" not in response.request.headers
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_problem(response, 413, "payload_too_large")
    async with harness.client() as client:
        login = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login.status_code == 401


async def test_streamed_body_within_the_limit_still_works(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.post(
            "/auth/register",
            content=chunks(padded_register(20_000), size=1000),
            headers={"Content-Type": "application/json"},
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 201, response.text
        assert (await client.get("/api/userinfo")).json()["email"] == EMAIL


async def test_errors_never_leak_internals(harness: Harness) -> None:
    """A sample of every kind of error: all problem+json, none with a trace or SQL."""
    await harness.user(EMAIL)
    hostile = "' OR 1=1; SELECT * FROM users --"
    async with harness.client() as client:
        responses = [
            await client.post("/auth/login", json={"email": hostile, "password": hostile}),
            await client.post(
                "/auth/login", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
            ),
            await client.post("/auth/login", json={"email": ["x"], "password": {"a": 1}}),
            await client.post("/auth/register", json={"email": hostile, "password": PASSWORD}),
            await client.get("/api/userinfo", headers=bearer(hostile)),
            await client.get("/api/userinfo", headers={"Cookie": "access_token=%00%ff"}),
            await client.post("/auth/refresh", headers={"Cookie": f"refresh_token={hostile}"}),
            await client.delete(f"/api/sessions/{hostile}"),
            await client.get("/api/%00"),
        ]
    for response in responses:
        assert 400 <= response.status_code < 500, response.text
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type == "application/problem+json", response.text
        body = response.json()
        assert {"type", "title", "status", "detail", "code"} <= set(body)
        assert body["status"] == response.status_code
        assert_no_leak(response)


# -- the store cannot answer ------------------------------------------------------------------


@asynccontextmanager
async def store_down(harness: Harness, tmp_path: Path) -> AsyncIterator[None]:
    """Every path to the store (the services', the session directory's, the throttle's) goes
    to a store that is not there (``missing_store_url``)."""
    services = harness.services
    real = services.db
    broken = Database(missing_store_url(tmp_path))
    services.db = broken
    services.session_cache.db = broken
    services.throttle.db = broken
    try:
        yield
    finally:
        services.db = real
        services.session_cache.db = real
        services.throttle.db = real
        await broken.dispose()


async def test_userinfo_when_the_store_is_down_is_503(harness: Harness, tmp_path: Path) -> None:
    await harness.user()
    async with harness.client() as client:
        sid = (
            await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        ).json()["session_id"]
        token = access_cookie(client)
        async with store_down(harness, tmp_path):
            harness.services.session_cache.forget(sid)  # no cached answer to fall back on
            response = await client.get("/api/userinfo", headers=bearer(token))
        assert_problem(response, 503, "store_unavailable")
        assert "missing-dir" not in response.text
        # Back up: the very same token works again; nothing was revoked.
        assert (await client.get("/api/userinfo", headers=bearer(token))).status_code == 200


async def test_login_when_the_store_is_down_is_503_not_invalid_credentials(
    harness: Harness, tmp_path: Path
) -> None:
    await harness.user()
    async with harness.client() as client:
        async with store_down(harness, tmp_path):
            response = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert_problem(response, 503, "store_unavailable")
        assert "set-cookie" not in response.headers
        assert "missing-dir" not in response.text
        # An outage is not a failed login: no throttling budget was spent on it.
        async with store_down(harness, tmp_path):
            for _ in range(12):
                again = await client.post("/auth/login", json={"email": EMAIL, "password": "x" * 9})
                assert again.status_code == 503
        ok = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert ok.status_code == 200, ok.text


async def test_health_and_readiness(harness: Harness, tmp_path: Path) -> None:
    async with harness.client() as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        async with store_down(harness, tmp_path):
            not_ready = await client.get("/readyz")
            alive = await client.get("/healthz")
        assert_problem(not_ready, 503, "store_unavailable")
        assert alive.status_code == 200
        assert (await client.get("/readyz")).status_code == 200


def test_the_catalogue_has_one_entry_per_code_with_a_status_and_a_sentence() -> None:
    assert set(CATALOGUE) == set(Code)
    for code, entry in CATALOGUE.items():
        assert 400 <= entry.status < 600, code
        assert entry.detail.endswith(".") and len(entry.detail) > 10, code
        assert entry.status in TITLES, code


def test_a_problem_carries_its_catalogue_entry_and_what_the_case_adds() -> None:
    response = problem_response(Code.too_many_attempts, headers={"Retry-After": "7"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["cache-control"] == "no-store"
    assert response.media_type == "application/problem+json"
    busy = problem_response(Code.server_busy)
    assert (busy.status_code, busy.headers["retry-after"]) == (503, "1")
