"""Refresh rotation: every rule of docs/protocol.md §6, against the real app and store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from kizuna.clock import utcnow
from kizuna.db import Database
from kizuna.settings import Settings
from kizuna.store import sessions as session_store
from kizuna.store.sessions import SessionRecord
from tests.conftest import PASSWORD, Harness, LiveServer, missing_store_url
from tests.tables import refresh_tokens, rows, security_events, sessions

REFRESH_COOKIE_PATH = "/auth/refresh"


def refresh_cookie(client: httpx.AsyncClient) -> str:
    value = client.cookies.get("refresh_token", path=REFRESH_COOKIE_PATH)
    assert value, "no refresh cookie in the jar"
    return value


async def refresh_with(harness: Harness, token: str) -> httpx.Response:
    """POST /auth/refresh presenting exactly ``token``, from a cookie-less client."""
    async with harness.client() as bare:
        return await bare.post("/auth/refresh", headers={"Cookie": f"refresh_token={token}"})


def set_cookies(response: httpx.Response) -> dict[str, str]:
    out: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        out[name] = rest
    return out


def cookie_value(response: httpx.Response, name: str) -> str:
    return set_cookies(response)[name].split(";", 1)[0]


async def records(harness: Harness, session_id: str) -> list[Any]:
    """The session's refresh-token rows, every column (``replaced_by`` too)."""
    return await harness.services.db.read(
        lambda tx: rows(
            tx,
            select(*refresh_tokens.columns)
            .where(refresh_tokens.c.session_id == session_id)
            .order_by(refresh_tokens.c.issued_at),
        )
    )


async def session_row(harness: Harness, session_id: str) -> SessionRecord:
    row = await harness.services.db.read(lambda tx: session_store.get(tx, session_id=session_id))
    assert row is not None
    return row


def assert_cookies_deleted(response: httpx.Response) -> None:
    cookies = set_cookies(response)
    assert "Max-Age=0" in cookies["access_token"]
    assert "Path=/;" in cookies["access_token"] + ";"
    assert "Max-Age=0" in cookies["refresh_token"]
    assert f"Path={REFRESH_COOKIE_PATH}" in cookies["refresh_token"]


@pytest.fixture
async def grace1(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> AsyncIterator[Harness]:
    async for h in make_harness(make_settings(refresh_grace=1)):
        yield h


class _NoStore:
    """Stands in for the database where a rule says it must not be touched."""

    def write(self) -> None:
        raise AssertionError("the store was accessed")

    read = write


# -- rule 1: verified before any store access ----------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIiwidHlwIjoicnQrand0In0.eyJzdWIiOiJ4In0.",
    ],
)
async def test_malformed_refresh_token_is_invalid_without_store_access(
    harness: Harness, token: str
) -> None:
    real = harness.services.db
    harness.services.db = _NoStore()  # type: ignore[assignment]
    try:
        response = await refresh_with(harness, token)
    finally:
        harness.services.db = real
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"
    assert response.headers["content-type"] == "application/problem+json"
    assert_cookies_deleted(response)


async def test_tampered_signature_is_invalid(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        token = refresh_cookie(client)
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    response = await refresh_with(harness, f"{head}.{payload}.{flipped}")
    assert response.json()["code"] == "refresh_token_invalid"


async def test_access_token_in_refresh_cookie_is_invalid(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        access = client.cookies.get("access_token")
    assert access
    response = await refresh_with(harness, access)
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"


async def test_expired_refresh_token(harness: Harness) -> None:
    token = harness.services.refresh_tokens.encode(
        token_id="00000000-0000-0000-0000-000000000000",
        session_id="s",
        user_id="u",
        issued_at=utcnow() - timedelta(hours=2),
        expires_at=utcnow() - timedelta(hours=1),
        key_id=harness.services.keyring.mac_key.kid,
    )
    real = harness.services.db
    harness.services.db = _NoStore()  # type: ignore[assignment]
    try:
        response = await refresh_with(harness, token)
    finally:
        harness.services.db = real
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_expired"


@pytest.mark.parametrize(("ahead", "code"), [(4, None), (60, "refresh_token_invalid")])
async def test_a_refresh_token_dated_by_a_clock_ahead_is_accepted_within_the_leeway(
    harness: Harness, ahead: int, code: str | None
) -> None:
    # Another replica (or the store) whose clock runs ahead dated it: its `iat` is in our
    # future. Within KIZUNA_CLOCK_LEEWAY (5 s) that is skew, not forgery; beyond it, refused.
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
    (record,) = await records(harness, login.json()["session_id"])
    token = harness.services.refresh_tokens.encode(
        token_id=record.id,
        session_id=record.session_id,
        user_id=record.user_id,
        issued_at=utcnow() + timedelta(seconds=ahead),
        expires_at=record.expires_at,
        key_id=record.key_id,
    )
    response = await refresh_with(harness, token)
    if code is None:
        assert response.status_code == 200, response.text
    else:
        assert response.json()["code"] == code


async def test_missing_refresh_cookie(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.post("/auth/refresh")
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_missing"
    assert_cookies_deleted(response)


# -- rule 2: revoked or past the absolute lifetime ------------------------------------------


async def test_revoked_session_refresh_is_refused(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        token = refresh_cookie(client)
        assert (await client.post("/auth/logout")).status_code == 204
    response = await refresh_with(harness, token)
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_revoked"


async def test_session_past_absolute_lifetime(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
        token = refresh_cookie(client)
    session_id = login.json()["session_id"]
    await harness.services.db.write(
        lambda tx: tx.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    )
    response = await refresh_with(harness, token)
    assert response.status_code == 401
    assert response.json()["code"] == "session_expired"


# -- rule 3: the current token rotates --------------------------------------------------------


async def test_current_token_rotates_to_a_successor(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
        session_id = login.json()["session_id"]
        first = refresh_cookie(client)
        response = await client.post("/auth/refresh")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"access_token_expires_at", "refresh_token_expires_at"}
        second = refresh_cookie(client)
        assert second != first
        # The new access token belongs to the same session.
        info = await client.get("/api/userinfo")
        assert info.json()["session"]["id"] == session_id

    rows = await records(harness, session_id)
    assert len(rows) == 2
    # Same issued_at second: tell them apart by their state.
    old, new = sorted(rows, key=lambda r: r.rotated_at is None)
    assert old.rotated_at is not None and old.replaced_by == new.id
    assert new.rotated_at is None and new.revoked_at is None
    assert (new.session_id, new.user_id, new.device_id) == (
        old.session_id,
        old.user_id,
        old.device_id,
    )
    # The store keeps no usable token: the token string appears in no column.
    assert all(second not in str(v) for v in vars(new).values())

    cookies = set_cookies(response)
    assert (
        "SameSite=strict" in cookies["refresh_token"]
        or "SameSite=Strict" in cookies["refresh_token"]
    )
    assert f"Path={REFRESH_COOKIE_PATH}" in cookies["refresh_token"]
    assert response.headers["cache-control"] == "no-store"


async def test_chain_of_rotations_keeps_the_session(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
        for _ in range(5):
            assert (await client.post("/auth/refresh")).status_code == 200
        assert (await client.get("/api/userinfo")).json()["session"]["id"] == login.json()[
            "session_id"
        ]
    assert len(await records(harness, login.json()["session_id"])) == 6


# -- rule 4: the grace window -------------------------------------------------------------------


async def test_reuse_within_grace_returns_the_same_current_token(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
        original = refresh_cookie(client)
    winner = await refresh_with(harness, original)
    assert winner.status_code == 200
    racer = await refresh_with(harness, original)
    assert racer.status_code == 200
    assert cookie_value(racer, "refresh_token") == cookie_value(winner, "refresh_token")
    # Each gets a working access token, and the family did not fork.
    assert cookie_value(racer, "access_token")
    assert len(await records(harness, login.json()["session_id"])) == 2
    # The shared successor keeps rotating normally.
    assert (await refresh_with(harness, cookie_value(winner, "refresh_token"))).status_code == 200


async def test_concurrent_refreshes_in_process_all_succeed_identically(harness: Harness) -> None:
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
        token = refresh_cookie(client)
    responses = await asyncio.gather(*(refresh_with(harness, token) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len({cookie_value(r, "refresh_token") for r in responses}) == 1
    assert len(await records(harness, login.json()["session_id"])) == 2


# -- the window is judged by when a refresh was sent, not when a queue let it through ----------
# Under overload a racing tab's refresh can wait in the web tier longer than the grace window
# while a sibling's refresh rotates the token it carries (issue 11: 30 users logged out). The web
# tier says how long the request waited there (Kizuna-Request-Age, ms); from a trusted proxy the
# API judges the window by the moment the request was sent.


async def _rotated_and_stale(harness: Harness, wait: float) -> tuple[str, str]:
    """A session whose first refresh token was rotated ``wait`` seconds ago: (it, session id)."""
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
        first = refresh_cookie(client)
        assert (await client.post("/auth/refresh")).status_code == 200
    await asyncio.sleep(wait)
    return first, login.json()["session_id"]


async def refresh_aged(
    harness: Harness, token: str, age_ms: int | str, *, peer: str
) -> httpx.Response:
    async with harness.client(peer=peer) as bare:
        return await bare.post(
            "/auth/refresh",
            headers={"Cookie": f"refresh_token={token}", "Kizuna-Request-Age": str(age_ms)},
        )


async def test_a_refresh_that_waited_in_the_web_tier_is_judged_by_when_it_was_sent(
    grace1: Harness,
) -> None:
    # Sent 1.5 s ago, when its token had just been rotated: within the 1 s window then.
    first, session_id = await _rotated_and_stale(grace1, 1.3)
    late = await refresh_aged(grace1, first, 1_500, peer="127.0.0.1")
    assert late.status_code == 200, late.text
    row = await session_row(grace1, session_id)
    assert row.revoked_at is None
    # It got the session's current token, and the family did not fork.
    assert len(await records(grace1, session_id)) == 2


async def test_the_request_age_is_believed_only_from_a_trusted_proxy(grace1: Harness) -> None:
    first, session_id = await _rotated_and_stale(grace1, 1.3)
    theft = await refresh_aged(grace1, first, 1_500, peer="203.0.113.9")
    assert theft.status_code == 401
    assert theft.json()["code"] == "refresh_token_reused"
    assert (await session_row(grace1, session_id)).revoked_at is not None


@pytest.mark.parametrize("age", ["-5", "abc", "1e9", "1.5", "", "1500 1500"])
async def test_a_malformed_request_age_is_ignored(grace1: Harness, age: str) -> None:
    first, session_id = await _rotated_and_stale(grace1, 1.3)
    async with grace1.client() as bare:
        theft = await bare.post(
            "/auth/refresh",
            headers={"Cookie": f"refresh_token={first}", "Kizuna-Request-Age": age},
        )
    assert theft.status_code == 401
    assert theft.json()["code"] == "refresh_token_reused"
    assert (await session_row(grace1, session_id)).revoked_at is not None


@pytest.mark.parametrize("age", ["100000", "99999999999999999999"])
async def test_a_request_age_counts_at_most_the_configured_bound(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
    age: str,
) -> None:
    # However long a proxy says it held the request, at most KIZUNA_REFRESH_MAX_REQUEST_AGE
    # counts: here 0.2 s, so a token rotated 1.3 s ago is still stale by 1.1 s > the window.
    settings = make_settings(refresh_grace=1, refresh_max_request_age=0.2)
    async for harness in make_harness(settings):
        first, session_id = await _rotated_and_stale(harness, 1.3)
        theft = await refresh_aged(harness, first, age, peer="127.0.0.1")
        assert theft.status_code == 401
        assert theft.json()["code"] == "refresh_token_reused"
        assert (await session_row(harness, session_id)).revoked_at is not None


# -- rule 5: reuse after the window is theft ------------------------------------------------------


async def test_reuse_after_grace_revokes_the_family(grace1: Harness) -> None:
    harness = grace1
    await harness.user()
    async with harness.client() as victim:
        login = await harness.login(victim)
        session_id = login.json()["session_id"]
        stolen = refresh_cookie(victim)
        assert (await victim.post("/auth/refresh")).status_code == 200
        await asyncio.sleep(1.2)

        theft = await refresh_with(harness, stolen)
        assert theft.status_code == 401
        assert theft.json()["code"] == "refresh_token_reused"
        assert_cookies_deleted(theft)

        # The victim's current token is dead too, and so is its access token, at once.
        victim_refresh = await victim.post("/auth/refresh")
        assert victim_refresh.status_code == 401
        assert victim_refresh.json()["code"] == "refresh_token_revoked"
        info = await victim.get("/api/userinfo")
        assert info.status_code == 401

    row = await session_row(harness, session_id)
    assert row.revoked_at is not None and row.revoke_reason == "refresh_token_reused"
    assert all(
        r.revoked_at is not None for r in await records(harness, session_id) if r.rotated_at is None
    )
    events = await harness.services.db.read(
        lambda tx: rows(
            tx,
            select(*security_events.columns).where(security_events.c.session_id == session_id),
        )
    )
    assert [e.kind for e in events] == ["refresh_token_reused"]


async def test_racing_reuses_after_grace_end_the_session_once(grace1: Harness) -> None:
    """The first to reach the store ends the session; the others find it ended, on every store
    (on PostgreSQL they run at once, each having read the session live)."""
    harness = grace1
    await harness.user()
    async with harness.client() as victim:
        session_id = (await harness.login(victim)).json()["session_id"]
        stolen = refresh_cookie(victim)
        assert (await victim.post("/auth/refresh")).status_code == 200
    await asyncio.sleep(1.2)

    racers = await asyncio.gather(*(refresh_with(harness, stolen) for _ in range(6)))
    assert {r.status_code for r in racers} == {401}
    codes = sorted(r.json()["code"] for r in racers)
    assert codes == ["refresh_token_reused"] + ["refresh_token_revoked"] * 5
    events = await harness.services.db.read(
        lambda tx: rows(
            tx,
            select(*security_events.columns).where(security_events.c.session_id == session_id),
        )
    )
    assert [e.kind for e in events] == ["refresh_token_reused"]


async def test_access_tokens_of_a_revoked_session_stop_within_a_second(harness: Harness) -> None:
    """Another process revokes (here: through the store, not through this app's cache);
    this process must notice within a second."""
    await harness.user()
    async with harness.client() as client:
        login = await harness.login(client)
        assert (await client.get("/api/userinfo")).status_code == 200
        await harness.services.db.write(
            lambda tx: session_store.revoke(
                tx, session_ids=[login.json()["session_id"]], reason="test", now=utcnow()
            )
        )
        started = time.monotonic()
        while (await client.get("/api/userinfo")).status_code == 200:
            assert time.monotonic() - started < 1.0, "revocation not seen within 1 s"
            await asyncio.sleep(0.05)


# -- rule 6: a successor never outlives the session ---------------------------------------------


async def test_successor_never_outlives_the_session(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    settings = make_settings(session_max_age=120, refresh_token_ttl=3600)
    async for harness in make_harness(settings):
        await harness.user()
        async with harness.client() as client:
            login = await harness.login(client)
            session = await session_row(harness, login.json()["session_id"])
            for _ in range(2):
                response = await client.post("/auth/refresh")
                assert response.status_code == 200
            rows = await records(harness, session.id)
        assert all(r.expires_at <= session.expires_at for r in rows)
        max_age = int(set_cookies(response)["refresh_token"].split("Max-Age=")[1].split(";")[0])
        assert max_age <= 120


# -- the store cannot answer: 503, never 401, never reuse ---------------------------------------


async def test_store_unavailable_is_503_and_keeps_cookies(harness: Harness, tmp_path: Path) -> None:
    await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        token = refresh_cookie(client)
    real = harness.services.db
    broken = Database(missing_store_url(tmp_path))
    harness.services.db = broken
    try:
        response = await refresh_with(harness, token)
    finally:
        harness.services.db = real
        await broken.dispose()
    assert response.status_code == 503
    assert response.json()["code"] == "store_unavailable"
    assert "set-cookie" not in response.headers
    # The token was not burnt: once the store is back, it rotates normally.
    assert (await refresh_with(harness, token)).status_code == 200


# -- the real server: many clients racing with one cookie -----------------------------------------


def test_parallel_clients_racing_one_token_on_a_real_server(live_server: LiveServer) -> None:
    created = live_server.cli(
        "users", "create", "--email", "race@example.com", "--password-stdin", stdin=PASSWORD
    )
    assert created.returncode == 0, created.stderr

    async def race() -> tuple[list[httpx.Response], str]:
        async with httpx.AsyncClient(base_url=live_server.base_url) as client:
            login = await client.post(
                "/auth/login", json={"email": "race@example.com", "password": PASSWORD}
            )
            assert login.status_code == 200
            token = cookie_value(login, "refresh_token")

            async def one() -> httpx.Response:
                async with httpx.AsyncClient(base_url=live_server.base_url) as own:
                    return await own.post(
                        "/auth/refresh", headers={"Cookie": f"refresh_token={token}"}
                    )

            responses = await asyncio.gather(*(one() for _ in range(24)))
            return list(responses), login.json()["session_id"]

    responses, session_id = asyncio.run(race())
    assert [r.status_code for r in responses] == [200] * 24
    successors = {cookie_value(r, "refresh_token") for r in responses}
    assert len(successors) == 1, "racers got different tokens: the family forked"

    db_url = Settings(data_dir=Path(live_server.env["KIZUNA_DATA_DIR"])).db_url
    assert count_records(db_url, session_id) == 2, "exactly one rotation must have happened"


def count_records(db_url: str, session_id: str) -> int:
    """Refresh-token records of a session, read straight from a server's store."""

    async def count() -> int:
        db = Database(db_url)
        try:
            counted = await db.read(
                lambda tx: tx.execute(
                    select(func.count())
                    .select_from(refresh_tokens)
                    .where(refresh_tokens.c.session_id == session_id)
                ).first()
            )
            assert counted is not None
            return int(counted[0])
        finally:
            await db.dispose()

    return asyncio.run(count())
