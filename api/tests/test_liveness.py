"""Session liveness across processes: changes made elsewhere (straight in the store, as another
API process would) bite within a second, and cached sessions cost no store read per request."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import update

from kizuna.clock import utcnow
from kizuna.models import User
from tests.conftest import Harness


async def wait_for_status(client: Any, status: int, *, within: float = 1.0) -> float:
    started = time.monotonic()
    while True:
        response = await client.get("/api/userinfo")
        if response.status_code == status:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"not {status} within {within} s"
        await asyncio.sleep(0.05)


async def test_user_disabled_by_another_process_is_seen_within_a_second(harness: Harness) -> None:
    user_id = await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        assert (await client.get("/api/userinfo")).status_code == 200
        now = utcnow()
        await harness.services.db.write(
            lambda db: db.execute(
                update(User).where(User.id == user_id).values(disabled=True, updated_at=now)
            )
        )
        await wait_for_status(client, 401)


async def test_role_change_by_another_process_shows_within_a_second(harness: Harness) -> None:
    user_id = await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        assert (await client.get("/api/userinfo")).json()["roles"] == []
        now = utcnow()
        await harness.services.db.write(
            lambda db: db.execute(
                update(User).where(User.id == user_id).values(roles=["editor"], updated_at=now)
            )
        )
        started = time.monotonic()
        while (await client.get("/api/userinfo")).json()["roles"] != ["editor"]:
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.05)


async def test_cached_sessions_cost_one_poll_per_interval_not_one_read_each(
    harness: Harness,
) -> None:
    await harness.user()
    clients = [harness.client() for _ in range(8)]
    try:
        for client in clients:
            await harness.login(client)
        # Warm up past one poll: it reports the account's creation, once.
        warm = time.monotonic()
        while time.monotonic() - warm < 0.7:
            for client in clients:
                assert (await client.get("/api/userinfo")).status_code == 200
        reads = 0
        real_read = harness.services.db.read

        async def counting_read(work: Any) -> Any:
            nonlocal reads
            reads += 1
            return await real_read(work)

        harness.services.db.read = counting_read  # type: ignore[method-assign]
        started = time.monotonic()
        requests = 0
        while time.monotonic() - started < 1.2:
            for client in clients:
                assert (await client.get("/api/userinfo")).status_code == 200
                requests += 1
        # Polls only (at most one per 0.5 s, plus one in flight), whatever the session count.
        assert requests > 8 * 5
        assert reads <= 4, f"{reads} store reads for {requests} requests"
    finally:
        for client in clients:
            await client.aclose()
