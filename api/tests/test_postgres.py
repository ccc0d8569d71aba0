"""The same rules on a real PostgreSQL server, where several processes write at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import httpx

from kizuna.settings import Settings
from tests.conftest import PASSWORD, Harness, free_port, wait_ready
from tests.test_rotation import cookie_value, count_records, refresh_with


async def test_rotation_rules_on_postgres(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
    postgres_url: str,
) -> None:
    settings = make_settings(database_url=postgres_url, refresh_grace=1)
    async for harness in make_harness(settings):
        await harness.user()
        async with harness.client() as client:
            login = await harness.login(client)
            first = client.cookies.get("refresh_token", path="/auth/refresh")
            assert first
        winner = await refresh_with(harness, first)
        racer = await refresh_with(harness, first)
        assert (winner.status_code, racer.status_code) == (200, 200)
        assert cookie_value(winner, "refresh_token") == cookie_value(racer, "refresh_token")
        await asyncio.sleep(1.2)
        theft = await refresh_with(harness, first)
        assert theft.json()["code"] == "refresh_token_reused"
        after = await refresh_with(harness, cookie_value(winner, "refresh_token"))
        assert after.json()["code"] == "refresh_token_revoked"
        access = cookie_value(winner, "access_token")
        async with harness.client() as client:
            info = await client.get("/api/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert info.status_code == 401
        assert login.json()["session_id"]


def test_two_workers_racing_one_token_on_postgres(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url)
    env = {
        **os.environ,
        "KIZUNA_DATA_DIR": str(settings.data_dir),
        "KIZUNA_DATABASE_URL": postgres_url,
        "KIZUNA_LOG_LEVEL": "warning",
    }
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "kizuna",
            "users",
            "create",
            "--email",
            "pg@example.com",
            "--password-stdin",
        ],
        input=PASSWORD,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kizuna", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)

        async def race() -> tuple[list[httpx.Response], str]:
            async with httpx.AsyncClient(base_url=base) as client:
                login = await client.post(
                    "/auth/login", json={"email": "pg@example.com", "password": PASSWORD}
                )
                token = cookie_value(login, "refresh_token")

                async def one() -> httpx.Response:
                    async with httpx.AsyncClient(base_url=base) as own:
                        return await own.post(
                            "/auth/refresh", headers={"Cookie": f"refresh_token={token}"}
                        )

                return list(await asyncio.gather(*(one() for _ in range(24)))), login.json()[
                    "session_id"
                ]

        responses, session_id = asyncio.run(race())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert [r.status_code for r in responses] == [200] * 24
    assert len({cookie_value(r, "refresh_token") for r in responses}) == 1

    assert count_records(postgres_url, session_id) == 2
