"""Password hashing runs in processes of its own, and survives losing one."""

from __future__ import annotations

import asyncio
import os
import signal

from kizuna import passwords
from kizuna.passwords import PasswordHasher


async def test_hashes_are_made_elsewhere_and_verify() -> None:
    hasher = PasswordHasher(concurrency=1)
    stored = await hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert await hasher.verify("correct horse battery", stored)
    assert not await hasher.verify("wrong horse battery", stored)
    assert not await hasher.verify("anything", "not a hash at all")  # False, not an error
    assert not await hasher.verify("anything", None)  # unknown account: a dummy, still False
    children = set(passwords._pool(1)._processes or {})  # the executor's own bookkeeping
    assert children and os.getpid() not in children


async def test_a_killed_hashing_process_is_replaced() -> None:
    hasher = PasswordHasher(concurrency=1)
    stored = await hasher.hash("correct horse battery")
    for pid in list(passwords._pool(1)._processes or {}):
        os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert await hasher.verify("correct horse battery", stored)
    assert await hasher.verify("correct horse battery", stored)
