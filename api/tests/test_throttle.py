"""Throttling holds under concurrency and across processes: an attempt is counted before its
password is checked, in the store that every worker shares."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import httpx

from kizuna.settings import Settings
from tests.conftest import PASSWORD, Harness, kizuna_serve

EMAIL = "ada@example.com"


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


async def test_thirty_wrong_passwords_and_the_right_one_at_once_meet_the_account_limit(
    harness: Harness,
) -> None:
    await harness.user(EMAIL)
    async with harness.client() as client:
        attempts = [{"email": EMAIL, "password": f"wrong guess {i}"} for i in range(30)]
        attempts.insert(15, {"email": EMAIL, "password": PASSWORD})
        responses = await asyncio.gather(
            *(client.post("/auth/login", json=body) for body in attempts)
        )
    counted = statuses(responses)
    assert counted[401] <= 10, counted
    assert counted[401] + counted[429] + counted[200] == 31, counted
    # Once ten failures are on record, even the right password waits.
    async with harness.client() as client:
        right = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert right.status_code == 429


async def test_a_burst_of_a_hundred_and_one_attempts_checks_at_most_ten(
    harness: Harness,
) -> None:
    await harness.user(EMAIL)
    async with harness.client() as client:
        responses = await asyncio.gather(
            *(
                client.post("/auth/login", json={"email": EMAIL, "password": f"guess {i}"})
                for i in range(101)
            )
        )
    counted = statuses(responses)
    assert counted[401] <= 10, counted
    assert counted[429] >= 91, counted


async def test_the_address_limit_holds_for_a_concurrent_spray_over_many_accounts(
    make_settings: Callable[..., Settings], make_harness: Callable[..., object]
) -> None:
    settings = make_settings(login_fail_per_ip=20)
    async for harness in make_harness(settings):  # type: ignore[attr-defined]
        async with harness.client() as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/auth/login", json={"email": f"user{i}@example.com", "password": "x" * 9}
                    )
                    for i in range(60)
                )
            )
        counted = statuses(responses)
        assert counted[401] <= 20, counted
        assert counted[429] >= 40, counted


async def test_concurrent_wrong_current_passwords_meet_the_account_limit(
    harness: Harness,
) -> None:
    await harness.user(EMAIL)
    async with harness.client() as client:
        await harness.login(client)
        responses = await asyncio.gather(
            *(
                client.post(
                    "/auth/password",
                    json={"current_password": f"wrong {i}", "new_password": "a new long secret"},
                )
                for i in range(30)
            )
        )
    counted = statuses(responses)
    assert counted[401] <= 10, counted
    assert counted[429] >= 20, counted


async def test_successful_attempts_give_their_count_back(harness: Harness) -> None:
    await harness.user(EMAIL)
    async with harness.client() as client:
        for _ in range(15):
            await harness.login(client)
        for _ in range(10):
            wrong = await client.post("/auth/login", json={"email": EMAIL, "password": "nope nope"})
            assert wrong.status_code == 401
        throttled = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert throttled.status_code == 429


def test_the_account_limit_is_shared_by_every_worker(settings: Settings) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "kizuna", "users", "create", "--email", EMAIL, "--password-stdin"],
        input=PASSWORD,
        env={**os.environ, "KIZUNA_DATA_DIR": str(settings.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    with kizuna_serve(settings.data_dir, "--workers", "2", KIZUNA_HASH_QUEUE="256") as base_url:

        async def burst() -> list[httpx.Response]:
            # One connection per attempt, so the kernel spreads them over both workers.
            limits = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
                return await asyncio.gather(
                    *(
                        client.post("/auth/login", json={"email": EMAIL, "password": f"g{i}xxxxxx"})
                        for i in range(101)
                    )
                )

        counted = statuses(asyncio.run(burst()))
    assert counted[401] <= 10, counted
    assert counted[429] >= 91, counted


async def test_sign_ups_are_throttled_per_address(
    make_settings: Callable[..., Settings], make_harness: Callable[..., object]
) -> None:
    async for harness in make_harness(make_settings(signup_per_ip=3)):  # type: ignore[attr-defined]
        async with harness.client() as client:
            for i in range(3):
                body = {"email": f"new{i}@example.com", "password": PASSWORD}
                assert (await client.post("/auth/register", json=body)).status_code == 201
            # Taken or not, the fourth probe from this address waits.
            for email in ("new0@example.com", "fresh@example.com"):
                body = {"email": email, "password": PASSWORD}
                refused = await client.post("/auth/register", json=body)
                assert refused.status_code == 429, refused.text
                assert refused.json()["code"] == "too_many_attempts"
                assert int(refused.headers["retry-after"]) > 0
        async with harness.client(peer="192.0.2.7") as elsewhere:
            body = {"email": "other@example.com", "password": PASSWORD}
            assert (await elsewhere.post("/auth/register", json=body)).status_code == 201


async def test_a_full_hashing_queue_answers_503_at_once_and_costs_no_attempt(
    make_settings: Callable[..., Settings], make_harness: Callable[..., object]
) -> None:
    settings = make_settings(hash_queue=2, login_fail_per_ip=1000)
    async for harness in make_harness(settings):  # type: ignore[attr-defined]
        await harness.user(EMAIL)
        async with harness.client() as client:
            responses = await asyncio.gather(
                *(
                    client.post("/auth/login", json={"email": EMAIL, "password": f"guess {i}x"})
                    for i in range(8)
                )
            )
            counted = statuses(responses)
            assert counted[503] >= 1 and counted[500] == 0, counted
            busy = next(r for r in responses if r.status_code == 503)
            assert busy.json()["code"] == "server_busy"
            assert busy.headers["retry-after"] == "1"
            # Only the checked attempts count: the account is not yet at its limit of ten.
            assert counted[401] < 10
            right = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
            assert right.status_code == 200
