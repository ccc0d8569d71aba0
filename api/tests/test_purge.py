"""Store hygiene (``kizuna.purge``): what is purged and what is kept, the ``kizuna purge``
command, the periodic task, and a large purge running while sessions rotate. Every test runs
on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from kizuna import purge, revocation_feed
from kizuna.clock import utcnow
from kizuna.db import Tx
from kizuna.settings import Settings
from tests.conftest import Harness, serve_env
from tests.tables import refresh_tokens, security_events, sessions, throttle_hits, users

HOUR = 3600
MINUTE = timedelta(minutes=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    """``make_settings`` on SQLite, or on a fresh database of the test PostgreSQL server."""

    def make(**overrides: Any) -> Settings:
        if request.param == "postgresql":
            overrides.setdefault("database_url", request.getfixturevalue("postgres_url"))
        return make_settings(**overrides)

    return make


@pytest.fixture
async def short_lived(
    make_store_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> AsyncIterator[Harness]:
    """Refresh tokens live an hour and ended things are kept an hour: boundaries a test can
    move the purge's clock across. No grace window: a rotated token presented again is reuse."""
    settings = make_store_settings(refresh_token_ttl=HOUR, purge_retention=HOUR, refresh_grace=0)
    async with running(make_harness, settings) as harness:
        yield harness


@asynccontextmanager
async def running(
    make_harness: Callable[[Settings], AsyncIterator[Harness]], settings: Settings
) -> AsyncIterator[Harness]:
    started = make_harness(settings)
    harness = await anext(started)
    try:
        yield harness
    finally:
        await started.aclose()  # type: ignore[attr-defined]


def count(table: Table, *where: Any) -> Callable[[Tx], int]:
    def work(tx: Tx) -> int:
        row = tx.execute(select(func.count()).select_from(table).where(*where)).first()
        return int(row[0]) if row else 0

    return work


async def rows_of(harness: Harness, table: Table, *where: Any) -> int:
    return await harness.services.db.read(count(table, *where))


async def session_exists(harness: Harness, session_id: str) -> bool:
    return await rows_of(harness, sessions, sessions.c.id == session_id) == 1


def cookie(client: httpx.AsyncClient, name: str) -> str:
    value = client.cookies.get(name)
    assert value
    return value


async def test_a_rotated_token_stays_recognised_as_reuse_while_it_could_be_presented(
    short_lived: Harness,
) -> None:
    harness = short_lived
    await harness.user()
    async with harness.client() as client:
        session_id = (await harness.login(client)).json()["session_id"]
        stolen = cookie(client, "refresh_token")
        assert (await client.post("/auth/refresh")).status_code == 200
        issued = utcnow()

    # The stolen token expires an hour after it was issued; kept until an hour after that.
    counts = await purge.purge(harness.services, now=issued + timedelta(hours=2) - MINUTE)
    assert counts["refresh_tokens"] == 0 and counts["sessions"] == 0
    assert await session_exists(harness, session_id)

    async with harness.client() as thief:
        thief.cookies.set("refresh_token", stolen)
        answer = await thief.post("/auth/refresh")
    assert answer.status_code == 401
    assert answer.json()["code"] == "refresh_token_reused"
    assert await rows_of(harness, sessions, sessions.c.revoked_at.is_not(None)) == 1


async def test_an_idle_session_goes_with_its_last_record(short_lived: Harness) -> None:
    harness = short_lived
    await harness.user()
    async with harness.client() as client:
        session_id = (await harness.login(client)).json()["session_id"]
        assert (await client.post("/auth/refresh")).status_code == 200
    last = utcnow()

    # Its newest token expires at last + 1 h: kept until last + 2 h, with its session.
    await purge.purge(harness.services, now=last + timedelta(hours=2) - MINUTE)
    assert await session_exists(harness, session_id)
    assert await rows_of(harness, refresh_tokens, refresh_tokens.c.session_id == session_id) == 2

    counts = await purge.purge(harness.services, now=last + timedelta(hours=2, minutes=5))
    assert counts["refresh_tokens"] == 2 and counts["sessions"] == 1
    assert not await session_exists(harness, session_id)
    assert await rows_of(harness, refresh_tokens, refresh_tokens.c.session_id == session_id) == 0
    # The account itself stays.
    assert await rows_of(harness, users) == 1


async def test_a_revoked_session_goes_after_the_retention(short_lived: Harness) -> None:
    harness = short_lived
    await harness.user()
    async with harness.client() as client:
        live = (await harness.login(client)).json()["session_id"]
        async with harness.client() as other:
            ended = (await harness.login(other)).json()["session_id"]
            assert (await other.post("/auth/logout")).status_code == 204
        revoked_at = utcnow()

        await purge.purge(harness.services, now=revoked_at + timedelta(hours=1) - MINUTE)
        assert await session_exists(harness, ended)

        counts = await purge.purge(harness.services, now=revoked_at + timedelta(hours=1) + MINUTE)
        assert counts["sessions"] == 1 and counts["refresh_tokens"] == 1
        assert not await session_exists(harness, ended)
        # The session still in use is untouched, and still works.
        assert await session_exists(harness, live)
        assert (await client.post("/auth/refresh")).status_code == 200
        assert (await client.get("/api/userinfo")).status_code == 200


async def test_a_session_past_its_lifetime_goes_after_the_retention(
    make_store_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    settings = make_store_settings(
        session_max_age=2 * HOUR, refresh_token_ttl=30 * 24 * HOUR, purge_retention=HOUR
    )
    async with running(make_harness, settings) as harness:
        await harness.user()
        async with harness.client() as client:
            session_id = (await harness.login(client)).json()["session_id"]
        started = utcnow()
        await purge.purge(harness.services, now=started + timedelta(hours=3) - MINUTE)
        assert await session_exists(harness, session_id)
        counts = await purge.purge(harness.services, now=started + timedelta(hours=3) + MINUTE)
        assert counts["sessions"] == 1
        assert not await session_exists(harness, session_id)


async def test_feed_entries_a_reader_may_still_need_are_kept(short_lived: Harness) -> None:
    harness = short_lived
    services = harness.services
    secret, _ = await revocation_feed.create_credential(services, name="billing")
    await harness.user()
    revoked = []
    for _ in range(2):
        async with harness.client() as client:
            revoked.append((await harness.login(client)).json()["session_id"])
            assert (await client.post("/auth/logout")).status_code == 204
    written = utcnow()

    async def feed(query: str = "") -> list[str]:
        async with harness.client() as client:
            answer = await client.get(
                "/api/revocations" + query, headers={"Authorization": f"Bearer {secret}"}
            )
        assert answer.status_code == 200
        return [entry["session_id"] for entry in answer.json()["entries"]]

    # A purge now keeps what a new reader starts from: the last access-token lifetime.
    counts = await purge.purge(services)
    assert counts["changes"] == 0
    assert await feed() == revoked
    assert await feed("?after=0") == revoked

    # Past the retention they go, all but the newest, which keeps the feed's number.
    counts = await purge.purge(services, now=written + timedelta(hours=1) + MINUTE)
    assert counts["changes"] == 1
    assert await feed("?after=0") == revoked[1:]


def test_feed_entries_are_kept_at_least_an_access_token_lifetime(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(access_token_ttl=HOUR, purge_retention=HOUR)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    keep = timedelta(seconds=HOUR + revocation_feed.MARGIN)
    assert purge.cutoffs(settings, now).feed == now - keep


async def test_old_throttling_attempts_and_security_events_go(short_lived: Harness) -> None:
    harness = short_lived
    settings = harness.services.settings
    await harness.user()
    async with harness.client() as client:
        wrong = {"email": "ada@example.com", "password": "not the password"}
        assert (await client.post("/auth/login", json=wrong)).status_code == 401
    await harness.services.db.write(
        lambda tx: tx.execute(
            insert(security_events).values(
                at=utcnow(), kind="probe", user_id=None, session_id=None, ip="", user_agent=""
            )
        )
    )
    now = utcnow()
    hits = await rows_of(harness, throttle_hits)
    assert hits >= 1

    window = timedelta(seconds=settings.login_fail_window)
    assert (await purge.purge(harness.services, now=now + window - MINUTE))["throttle_hits"] == 0
    counts = await purge.purge(harness.services, now=now + window + MINUTE)
    assert counts["throttle_hits"] == hits
    assert await rows_of(harness, throttle_hits) == 0

    events = timedelta(seconds=settings.security_event_retention)
    assert (await purge.purge(harness.services, now=now + events - MINUTE))["security_events"] == 0
    counts = await purge.purge(harness.services, now=now + events + MINUTE)
    assert counts["security_events"] == 1
    assert await rows_of(harness, security_events) == 0


# -- rows made old by hand, for the command, the periodic task and the large purge -------------


async def backdate(harness: Harness, session_id: str, *, days: int) -> None:
    """Revoke a session as if ``days`` ago (the record of its refresh tokens too)."""
    then = utcnow() - timedelta(days=days)

    def work(tx: Tx) -> None:
        tx.execute(update(sessions).where(sessions.c.id == session_id).values(revoked_at=then))
        tx.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.session_id == session_id)
            .values(revoked_at=then)
        )

    await harness.services.db.write(work)


async def old_revoked_sessions(settings: Settings, user_id: str, n: int) -> None:
    """``n`` sessions revoked a month ago, each with a refresh-token record, bulk-inserted."""
    long_ago = utcnow() - timedelta(days=30)
    session_rows = []
    token_rows = []
    for _ in range(n):
        sid, tid = str(uuid.uuid4()), str(uuid.uuid4())
        session_rows.append(
            {
                "id": sid,
                "user_id": user_id,
                "device_id": "d",
                "user_agent": "",
                "ip": "",
                "created_at": long_ago,
                "last_used_at": long_ago,
                "expires_at": long_ago + timedelta(days=90),
                "revoked_at": long_ago,
                "revoke_reason": "logout",
            }
        )
        token_rows.append(
            {
                "id": tid,
                "session_id": sid,
                "user_id": user_id,
                "device_id": "d",
                "issued_at": long_ago,
                "expires_at": long_ago + timedelta(days=30),
                "revoked_at": long_ago,
                "revoke_reason": "logout",
                "key_id": "k",
            }
        )
    engine = create_async_engine(settings.db_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(sessions), session_rows)
            await connection.execute(insert(refresh_tokens), token_rows)
    finally:
        await engine.dispose()


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = serve_env(settings.data_dir)
    if settings.database_url:
        env["KIZUNA_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "kizuna", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def counts_printed(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+): (\d+)$", output, re.MULTILINE)}


async def test_the_purge_command_counts_then_deletes(
    make_store_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    settings = make_store_settings()
    async with running(make_harness, settings) as harness:
        user_id = await harness.user()
        await old_revoked_sessions(settings, user_id, 3)
        async with harness.client() as client:
            live = (await harness.login(client)).json()["session_id"]

        dry = await asyncio.to_thread(cli, settings, "purge", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would delete" in dry.stdout
        expected = {
            "refresh_tokens": 3,
            "sessions": 3,
            "changes": 0,
            "throttle_hits": 0,
            "security_events": 0,
        }
        assert counts_printed(dry.stdout) == expected
        assert await rows_of(harness, sessions) == 4  # nothing deleted

        done = await asyncio.to_thread(cli, settings, "purge")
        assert done.returncode == 0, done.stderr
        assert counts_printed(done.stdout) == expected
        assert await rows_of(harness, sessions) == 1
        assert await session_exists(harness, live)

        again = await asyncio.to_thread(cli, settings, "purge", "--dry-run")
        assert set(counts_printed(again.stdout).values()) == {0}


async def test_one_process_purges_at_a_time(
    make_store_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    settings = make_store_settings()
    async with running(make_harness, settings) as harness:
        async with purge.exclusive(harness.services):
            busy = await asyncio.to_thread(cli, settings, "purge")
            assert busy.returncode == 1
            assert "another process is purging" in busy.stderr
            with pytest.raises(purge.PurgeBusy):
                async with purge.exclusive(harness.services):
                    pass
        # Released: the next one gets it.
        done = await asyncio.to_thread(cli, settings, "purge")
        assert done.returncode == 0, done.stderr


async def wait_for(check: Callable[[], Any], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


async def test_the_server_purges_periodically_and_survives_a_failed_pass(
    make_store_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = purge.purge
    failures: list[int] = []

    async def failing_once(*args: Any, **kwargs: Any) -> dict[str, int]:
        if not failures:
            failures.append(1)
            raise ConnectionError("the store went away")
        return await real(*args, **kwargs)

    monkeypatch.setattr(purge, "purge", failing_once)
    settings = make_store_settings(purge_interval=0.2)
    async with running(make_harness, settings) as harness:
        await harness.user()
        async with harness.client() as client:
            ended = (await harness.login(client)).json()["session_id"]
            assert (await client.post("/auth/logout")).status_code == 204
            await backdate(harness, ended, days=8)
            live = (await harness.login(client)).json()["session_id"]

            async def gone() -> bool:
                return not await session_exists(harness, ended)

            await wait_for(gone)
            assert failures == [1]  # the first pass failed, a later one purged
            assert await session_exists(harness, live)
            assert (await client.get("/api/userinfo")).status_code == 200


async def test_a_large_purge_never_holds_rotation_up(
    make_store_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    """Sessions rotate in a loop while 20,000 ended sessions and their records are purged:
    every rotation succeeds, rotations go on while the purge runs, none waits long, and no
    live session is lost."""
    settings = make_store_settings()
    async with running(make_harness, settings) as harness:
        user_id = await harness.user()
        await old_revoked_sessions(settings, user_id, 20_000)
        clients = [harness.client() for _ in range(6)]
        live = [(await harness.login(c)).json()["session_id"] for c in clients]
        done = asyncio.Event()
        latencies: list[float] = []
        failures: list[int] = []

        async def rotate(client: httpx.AsyncClient) -> None:
            while not done.is_set():
                started = time.monotonic()
                answer = await client.post("/auth/refresh")
                latencies.append(time.monotonic() - started)
                if answer.status_code != 200:
                    failures.append(answer.status_code)

        rotating = [asyncio.create_task(rotate(c)) for c in clients]
        await asyncio.sleep(0.2)
        before = len(latencies)
        started = time.monotonic()
        counts = await purge.purge(harness.services)
        took = time.monotonic() - started
        during = len(latencies) - before
        done.set()
        await asyncio.gather(*rotating)

        assert counts["sessions"] == 20_000 and counts["refresh_tokens"] == 20_000
        assert failures == []
        assert during >= 20, (during, took)  # rotations went on while the purge ran
        # No rotation waited for more than a small part of the purge (on SQLite, one purge in
        # a single transaction makes rotations wait about as long as it takes: measured 0.5 s
        # of a 1.2 s purge, where batches of 1,000 kept the longest wait under 0.1 s of 1.8 s).
        assert max(latencies) < took / 5, (max(latencies), took)
        for client, session_id in zip(clients, live, strict=True):
            assert await session_exists(harness, session_id)
            assert (await client.post("/auth/refresh")).status_code == 200
            await client.aclose()


# -- every statement of the refresh, userinfo, logout and purge paths uses an index -----------


async def the_paths(harness: Harness) -> None:
    """Login, refresh, replay and reuse, userinfo (with the cache's feed poll), logout, and a
    purge that has something of every kind to delete."""
    await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        stolen = cookie(client, "refresh_token")
        assert (await client.post("/auth/refresh")).status_code == 200
        assert (await client.get("/api/userinfo")).status_code == 200
        await asyncio.sleep(harness.services.settings.session_cache_ttl * 1.6)
        assert (await client.get("/api/userinfo")).status_code == 200
    async with harness.client() as thief:
        thief.cookies.set("refresh_token", stolen)
        answer = await thief.post("/auth/refresh")
        assert answer.json()["code"] == "refresh_token_reused"
    async with harness.client() as client:
        wrong = {"email": "ada@example.com", "password": "not the password"}
        assert (await client.post("/auth/login", json=wrong)).status_code == 401
        await harness.login(client)
        assert (await client.post("/auth/refresh")).status_code == 200
        assert (await client.post("/auth/logout")).status_code == 204
    counts = await purge.purge(harness.services, now=utcnow() + timedelta(days=400))
    assert all(counts.values()), counts


def full_scans_sqlite(plan: list[tuple[Any, ...]]) -> list[str]:
    # "SEARCH t USING INDEX ..." reads a range; "SCAN t" reads the whole table.
    scans = [str(row[-1]) for row in plan if str(row[-1]).startswith("SCAN ")]
    return [scan for scan in scans if scan != "SCAN CONSTANT ROW"]


@pytest.mark.sqlite_only("SQLite's query plans of the direct sqlite3 paths")
async def test_every_statement_of_the_hot_paths_and_the_purge_uses_an_index_on_sqlite(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    settings = make_settings(refresh_grace=0)
    async with running(make_harness, settings) as harness:
        db = harness.services.db
        seen: dict[str, int] = {}
        real_get = db._statements.get

        def recording(statement: Any) -> Any:
            compiled = real_get(statement)
            seen[compiled.sql] = len(compiled.binds)
            return compiled

        db._statements.get = recording  # type: ignore[method-assign]
        try:
            await the_paths(harness)
        finally:
            db._statements.get = real_get  # type: ignore[method-assign]

        import sqlite3

        connection = sqlite3.connect(settings.data_dir / "kizuna.db")
        try:
            offences = {}
            for sql, binds in seen.items():
                plan = connection.execute("EXPLAIN QUERY PLAN " + sql, [None] * binds).fetchall()
                if scans := full_scans_sqlite(plan):
                    offences[sql] = scans
        finally:
            connection.close()
    assert len(seen) > 20, "the paths ran too few statements: the recording is broken"
    assert not offences, offences


async def test_every_statement_of_the_hot_paths_and_the_purge_uses_an_index_on_postgres(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
    postgres_url: str,
) -> None:
    """With sequential scans priced out, PostgreSQL scans a table whole only when no index
    can serve the statement; the tables are small here, so that is the only way to ask."""
    from sqlalchemy import event

    settings = make_settings(refresh_grace=0, database_url=postgres_url)
    async with running(make_harness, settings) as harness:
        engine = harness.services.db._async
        assert engine is not None
        offences: dict[str, list[str]] = {}
        explained: list[str] = []

        def explain(
            connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            if many or not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                return
            if "pg_advisory" in statement:
                return
            cursor.execute("SET LOCAL enable_seqscan = off", ())
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = [str(row[0]) for row in cursor.fetchall()]
            explained.append(statement)
            if scans := [line.strip() for line in plan if "Seq Scan" in line]:
                offences[statement] = scans

        event.listen(engine.sync_engine, "before_cursor_execute", explain)
        try:
            await the_paths(harness)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", explain)
    assert len(explained) > 20, "too few statements explained: the recording is broken"
    assert not offences, offences
