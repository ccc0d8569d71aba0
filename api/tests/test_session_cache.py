"""Session liveness across processes: changes made elsewhere (straight in the store, as another
API process would) bite within a second, and cached sessions cost no store read per request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from kizuna.clock import utcnow
from kizuna.db import ConnectionTx
from kizuna.settings import Settings
from kizuna.store import sessions as session_store
from kizuna.store import users as user_store
from tests.conftest import PASSWORD, Harness


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
        # Another process's write: this process learns of it only from the store.
        await harness.services.db.write(
            lambda tx: user_store.update(tx, user_id=user_id, now=utcnow(), disabled=True)
        )
        await wait_for_status(client, 401)


async def test_role_change_by_another_process_shows_within_a_second(harness: Harness) -> None:
    user_id = await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        assert (await client.get("/api/userinfo")).json()["roles"] == []
        await harness.services.db.write(
            lambda tx: user_store.update(tx, user_id=user_id, now=utcnow(), roles=["editor"])
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


async def _revocations_committed_late_are_seen(harness: Harness) -> None:
    """Another process revokes session A in a transaction that commits seconds after it
    stamped the revocation (a held lock, a slow disk, a clock behind ours), while this process
    revokes session B meanwhile. Both must be refused within a second of their commits."""
    await harness.user()
    async with harness.client() as a, harness.client() as b:
        session_a = (await harness.login(a)).json()["session_id"]
        session_b = (await harness.login(b, password=PASSWORD)).json()["session_id"]
        for client in (a, b):
            assert (await client.get("/api/userinfo")).status_code == 200
        other_process = create_async_engine(harness.services.settings.db_url)
        try:
            async with other_process.begin() as connection:
                await connection.run_sync(
                    lambda sync: session_store.revoke(
                        ConnectionTx(sync), session_ids=[session_a], reason="test", now=utcnow()
                    )
                )
                fast = asyncio.ensure_future(
                    harness.services.db.write(
                        lambda tx: session_store.revoke(
                            tx, session_ids=[session_b], reason="test", now=utcnow()
                        )
                    )
                )
                held = time.monotonic()
                while time.monotonic() - held < 4:  # requests come, so the cache polls
                    assert (await a.get("/api/userinfo")).status_code == 200  # not committed
                    await asyncio.sleep(0.05)
            await fast
        finally:
            await other_process.dispose()
        await wait_for_status(a, 401)
        await wait_for_status(b, 401)


async def test_a_revocation_whose_commit_was_held_back_is_seen_within_a_second(
    harness: Harness,
) -> None:
    await _revocations_committed_late_are_seen(harness)


async def test_a_revocation_whose_commit_was_held_back_is_seen_on_postgres(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
    postgres_url: str,
) -> None:
    async for harness in make_harness(make_settings(database_url=postgres_url)):
        await _revocations_committed_late_are_seen(harness)
