"""Replicas: two real ``kizuna serve`` processes on one store, one of them with its wall clock
a few seconds off (libfaketime, as when NTP has not yet caught up on a host).

Refreshes of one token spread over both must rotate it exactly once and all get the same
current token, and rotation rule 4's window (docs/protocol.md §6) must be judged by the store's
clock, never by the clock of the replica that happened to answer (issue 11). On PostgreSQL the
replicas stand for hosts; on SQLite they are processes of one machine sharing one file and its
writer lock (one machine has one clock, so there is no skew to test there).
"""

from __future__ import annotations

import asyncio
import base64
import glob
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kizuna import migrate
from kizuna.db import Database, Tx, Work
from kizuna.settings import Settings
from tests.conftest import PASSWORD, kizuna_serve, serve_env
from tests.postgres import create_database
from tests.tables import refresh_tokens, sessions
from tests.test_rotation import cookie_value

EMAIL = "replicas@example.com"
GRACE = 3  # s (KIZUNA_REFRESH_GRACE): shorter than the skew, so a decision on a wrong clock flips
SKEW = 4  # s: how far the skewed replica's wall clock is off; within KIZUNA_CLOCK_LEEWAY (5)
RACERS = 60
STORMS = 6  # sessions the reuse-during-rotation storm is repeated over


def faketime_library() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        raise RuntimeError("libfaketime not found; scripts/setup-services.sh installs it")
    return found[-1]


def skewed_clock(seconds: int) -> dict[str, str]:
    """Environment under which a process's wall clock runs ``seconds`` off; its monotonic clock
    (durations) stays true, as on a real host whose clock is merely set wrong."""
    return {
        "LD_PRELOAD": faketime_library(),
        "FAKETIME": f"{seconds:+d}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


@dataclass(frozen=True)
class Replicas:
    a: str  # base URL of the replica with the true clock
    b: str  # base URL of the replica whose clock is ``skew`` seconds off
    skew: int
    db_url: str

    def at(self, name: str) -> str:
        return {"a": self.a, "b": self.b}[name]

    def name_of(self, url: str) -> str:
        return "a" if url.startswith(self.a) else "b"


def create_user(env: dict[str, str]) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "kizuna", "users", "create", "--email", EMAIL, "--password-stdin"],
        input=PASSWORD,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr


@contextmanager
def replicas(settings: Settings, skew: int, grace: int = GRACE, **env: str) -> Iterator[Replicas]:
    """Two ``kizuna serve`` on ``settings``' store and key ring, B's clock ``skew`` s off."""
    env = {"KIZUNA_REFRESH_GRACE": str(grace), "KIZUNA_LOG_LEVEL": "warning", **env}
    create_user(serve_env(settings.data_dir, **env))
    b_env = {**env, **skewed_clock(skew)} if skew else env
    with (
        kizuna_serve(settings.data_dir, **env) as a,
        kizuna_serve(settings.data_dir, **b_env) as b,
    ):
        yield Replicas(a=a, b=b, skew=skew, db_url=settings.db_url)


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * -len(payload)))
    return decoded


async def login(base: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response


async def refresh(base: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return await client.post("/auth/refresh", headers={"Cookie": f"refresh_token={token}"})


def code_of(response: httpx.Response) -> str:
    return "ok" if response.status_code == 200 else str(response.json()["code"])


async def assert_clock_off(replicas: Replicas) -> None:
    """The skew really reached the server process: its access tokens' ``iat`` says so."""
    for base, expected in ((replicas.a, 0), (replicas.b, replicas.skew)):
        iat = claims_of(cookie_value(await login(base), "access_token"))["iat"]
        assert abs(iat - time.time() - expected) < 1.5, (base, iat - time.time(), expected)


async def read_store(db_url: str, work: Work[Any]) -> Any:
    db = Database(db_url)
    try:
        return await db.read(work)
    finally:
        await db.dispose()


async def token_records(db_url: str, session_id: str) -> int:
    def count(tx: Tx) -> int:
        row = tx.execute(
            select(func.count())
            .select_from(refresh_tokens)
            .where(refresh_tokens.c.session_id == session_id)
        ).first()
        assert row is not None
        return int(row[0])

    counted: int = await read_store(db_url, count)
    return counted


async def revoke_reason(db_url: str, session_id: str) -> str | None:
    """Why the session was revoked; None while it lives."""

    def reason(tx: Tx) -> str | None:
        row = tx.execute(
            select(sessions.c.revoked_at, sessions.c.revoke_reason).where(
                sessions.c.id == session_id
            )
        ).first()
        assert row is not None
        return None if row[0] is None else str(row[1])

    found: str | None = await read_store(db_url, reason)
    return found


# One pair of replicas per module and clock (starting them is most of these tests' time); each
# test works on sessions of its own.


def pg_settings(tmp_path_factory: pytest.TempPathFactory, admin_url: str) -> Settings:
    data_dir = tmp_path_factory.mktemp("replicas") / "data"
    settings = Settings(data_dir=data_dir, database_url=create_database(admin_url), log_json=True)
    migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="module", params=[SKEW, -SKEW], ids=["b-ahead", "b-behind"])
def pg_replicas(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str,
) -> Iterator[Replicas]:
    settings = pg_settings(tmp_path_factory, postgres_admin_url)
    url = settings.db_url
    with replicas(settings, request.param, KIZUNA_DATABASE_URL=url) as both:
        yield both


@pytest.fixture(scope="module")
def pg_replicas_without_grace(
    tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str
) -> Iterator[Replicas]:
    """KIZUNA_REFRESH_GRACE=0: every presentation of a rotated token sent after its rotation
    is a reuse, so reuses and rotations of one session meet in the store at once."""
    settings = pg_settings(tmp_path_factory, postgres_admin_url)
    url = settings.db_url
    with replicas(settings, 0, grace=0, KIZUNA_DATABASE_URL=url) as both:
        yield both


@pytest.fixture(scope="module")
def sqlite_replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    data_dir = tmp_path_factory.mktemp("replicas") / "data"
    settings = Settings(data_dir=data_dir, database_url=None, log_json=True)
    migrate.upgrade(settings)
    with replicas(settings, 0) as both:
        yield both


# -- (a) many clients, two replicas, one rotation -------------------------------------------------


async def storm(replicas: Replicas, tokens: list[str]) -> list[httpx.Response]:
    """Each token presented by a client of its own, alternately at A and B, all at once: every
    client has its connection open first, so the refreshes leave together."""
    clients = [
        httpx.AsyncClient(base_url=(replicas.a, replicas.b)[i % 2], timeout=60)
        for i in range(len(tokens))
    ]
    go = asyncio.Event()

    async def one(client: httpx.AsyncClient, token: str) -> httpx.Response:
        await go.wait()
        return await client.post("/auth/refresh", headers={"Cookie": f"refresh_token={token}"})

    try:
        assert {(await c.get("/readyz")).status_code for c in clients} == {200}
        racing = [asyncio.create_task(one(c, t)) for c, t in zip(clients, tokens, strict=True)]
        await asyncio.sleep(0)
        go.set()
        return list(await asyncio.gather(*racing))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def race_over_both(replicas: Replicas) -> None:
    first = await login(replicas.a)
    token = cookie_value(first, "refresh_token")
    session_id = first.json()["session_id"]
    responses = await storm(replicas, [token] * RACERS)
    refused = Counter(
        (replicas.name_of(str(r.request.url)), r.json()["code"])
        for r in responses
        if r.status_code != 200
    )
    assert not refused, f"racers refused, by (replica, code): {dict(refused)}"
    successors = {cookie_value(r, "refresh_token") for r in responses}
    assert len(successors) == 1, "racers got different tokens: the family forked"
    (successor,) = successors
    assert successor != token
    assert await token_records(replicas.db_url, session_id) == 2, "one rotation, exactly"
    assert await revoke_reason(replicas.db_url, session_id) is None
    # The shared successor is the session's current token, at either replica.
    assert (await refresh(replicas.b, successor)).status_code == 200


async def test_racers_over_two_replicas_rotate_once_on_postgres(pg_replicas: Replicas) -> None:
    await assert_clock_off(pg_replicas)
    await race_over_both(pg_replicas)


@pytest.mark.sqlite_only("two processes on one SQLite file")
async def test_racers_over_two_processes_on_one_sqlite_file_rotate_once(
    sqlite_replicas: Replicas,
) -> None:
    await race_over_both(sqlite_replicas)


async def test_a_reuse_racing_a_rotation_of_its_session_ends_it_never_503(
    pg_replicas_without_grace: Replicas,
) -> None:
    # A thief presents a token rotated a moment ago while the victim's tabs rotate the current
    # one, at both replicas at once. Revocation and rotation take the session's locks in one
    # order, so the store never deadlocks: a 503 there would be a reuse not acted on. Before,
    # 3 of 360 such refreshes deadlocked; the storm is repeated over a few sessions.
    replicas = pg_replicas_without_grace
    codes: Counter[str] = Counter()
    for _ in range(STORMS):
        first = await login(replicas.a)
        stolen = cookie_value(first, "refresh_token")
        current = cookie_value(await refresh(replicas.a, stolen), "refresh_token")
        responses = await storm(
            replicas, [current if i % 3 == 0 else stolen for i in range(RACERS)]
        )
        codes.update(code_of(r) for r in responses)
        session_id = first.json()["session_id"]
        assert await revoke_reason(replicas.db_url, session_id) == "refresh_token_reused"
    assert set(codes) <= {"ok", "refresh_token_reused", "refresh_token_revoked"}, codes
    assert codes["refresh_token_reused"] >= STORMS, codes


# -- (b) a duplicate is judged by the store's clock, whichever replica answers -----------------


async def duplicate(
    replicas: Replicas, *, rotate_at: str, present_at: str, after: float
) -> tuple[httpx.Response, httpx.Response, str]:
    """Log in and rotate at one replica; ``after`` s later present the rotated token at the
    other. Returns (the rotation's answer, the duplicate's answer, the session id)."""
    first = await login(replicas.at(rotate_at))
    token = cookie_value(first, "refresh_token")
    winner = await refresh(replicas.at(rotate_at), token)
    assert winner.status_code == 200, winner.text
    await asyncio.sleep(after)
    return winner, await refresh(replicas.at(present_at), token), first.json()["session_id"]


@pytest.mark.parametrize(("rotate_at", "present_at"), [("a", "b"), ("b", "a")])
async def test_a_duplicate_is_judged_by_the_stores_clock(
    pg_replicas: Replicas, rotate_at: str, present_at: str
) -> None:
    within, beyond = await asyncio.gather(
        duplicate(pg_replicas, rotate_at=rotate_at, present_at=present_at, after=0),
        duplicate(pg_replicas, rotate_at=rotate_at, present_at=present_at, after=GRACE + 1.5),
    )

    (winner, racer, racer_session), (_, thief, thief_session) = within, beyond
    assert (code_of(racer), code_of(thief)) == ("ok", "refresh_token_reused"), (
        "(within grace, beyond grace)"
    )
    assert cookie_value(racer, "refresh_token") == cookie_value(winner, "refresh_token")
    assert await token_records(pg_replicas.db_url, racer_session) == 2
    assert await revoke_reason(pg_replicas.db_url, racer_session) is None
    assert await revoke_reason(pg_replicas.db_url, thief_session) == "refresh_token_reused"


# -- (c) what one replica mints, the other accepts at once -------------------------------------


async def test_tokens_minted_by_one_replica_are_accepted_by_the_other(
    pg_replicas: Replicas,
) -> None:
    # The skew (4 s) is within KIZUNA_CLOCK_LEEWAY (5 s): an `iat` up to that far in a
    # replica's future, or an `exp` that far in its past, is still accepted.
    for minted_at, used_at in (("a", "b"), ("b", "a")):
        session = await login(pg_replicas.at(minted_at))
        access = cookie_value(session, "access_token")
        async with httpx.AsyncClient(base_url=pg_replicas.at(used_at), timeout=30) as client:
            info = await client.get("/api/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert info.status_code == 200, (minted_at, used_at, info.text)
        rotated = await refresh(pg_replicas.at(used_at), cookie_value(session, "refresh_token"))
        assert rotated.status_code == 200, (minted_at, used_at, rotated.text)
