"""Password hashing runs in processes of its own, at most a machine-wide number at once, and
survives losing one."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kizuna.hashing_process import HashingProcess, Slots
from kizuna.password_hasher import PasswordHasher


def slots(tmp_path: Path, count: int = 1) -> Slots:
    return Slots(tmp_path, count)


async def test_hashes_are_made_elsewhere_and_verify(tmp_path: Path) -> None:
    hasher = PasswordHasher(concurrency=1, slots=slots(tmp_path))
    try:
        stored = await hasher.hash("correct horse battery")
        assert stored.startswith("$argon2id$")
        assert await hasher.verify("correct horse battery", stored)
        assert not await hasher.verify("wrong horse battery", stored)
        assert not await hasher.verify("anything", "not a hash at all")  # False, not an error
        assert not await hasher.verify("anything", None)  # unknown account: a dummy, still False
        assert hasher.pids and os.getpid() not in hasher.pids
        threads = threading.active_count()
        await asyncio.gather(*(hasher.verify("correct horse battery", stored) for _ in range(4)))
        assert threading.active_count() == threads  # no thread of ours works per request
    finally:
        await hasher.close()
    assert not hasher.pids


async def test_requests_queue_and_spread_over_the_processes(tmp_path: Path) -> None:
    hasher = PasswordHasher(concurrency=2, slots=slots(tmp_path, 2))
    try:
        await hasher.warm_up()
        assert len(hasher.pids) == 2
        passwords = [f"correct horse battery {i}" for i in range(6)]
        stored = await asyncio.gather(*(hasher.hash(p) for p in passwords))
        checks = await asyncio.gather(
            *(hasher.verify(p, h) for p, h in zip(passwords, stored, strict=True))
        )
        assert all(checks)
        assert not await hasher.verify(passwords[0], stored[1])
    finally:
        await hasher.close()


async def test_a_killed_hashing_process_is_replaced(tmp_path: Path) -> None:
    hasher = PasswordHasher(concurrency=1, slots=slots(tmp_path))
    try:
        stored = await hasher.hash("correct horse battery")
        (first,) = hasher.pids
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.2)
        assert await hasher.verify("correct horse battery", stored)
        assert await hasher.verify("correct horse battery", stored)
        assert hasher.pids and first not in hasher.pids
    finally:
        await hasher.close()


async def test_a_malformed_request_is_refused_and_the_process_lives_on(tmp_path: Path) -> None:
    process = await HashingProcess.start(slots(tmp_path))
    try:
        with pytest.raises(RuntimeError, match="unknown request"):
            await process.call({"op": "nothing"})
        with pytest.raises(RuntimeError, match="malformed request"):
            await process.call({"op": "verify"})
        assert await process.call({"op": "verify", "password": "x", "stored": "junk"}) is False
    finally:
        await process.close()


async def test_hashing_keeps_to_its_cores_at_the_lowest_priority(tmp_path: Path) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    confined = await HashingProcess.start(slots(tmp_path, 1))
    everywhere = await HashingProcess.start(slots(tmp_path, len(allowed)))
    try:
        for process in (confined, everywhere):  # answering: it has set itself up
            assert str(await process.call({"op": "hash", "password": "x" * 8})).startswith("$")
        assert os.sched_getaffinity(confined.pid) == set(allowed[-1:])
        assert os.sched_getaffinity(everywhere.pid) == set(allowed)
        assert os.getpriority(os.PRIO_PROCESS, confined.pid) == 19
    finally:
        await confined.close()
        await everywhere.close()


async def test_hashing_waits_for_a_free_machine_wide_slot(tmp_path: Path) -> None:
    """While every slot is held (here by the test, as another worker's hashing process would),
    no hash starts; once one is free, it does."""
    one = slots(tmp_path, 1)
    hasher = PasswordHasher(concurrency=1, slots=one)
    try:
        await hasher.warm_up()
        with held(one.path(0)):
            pending = asyncio.ensure_future(hasher.hash("correct horse battery"))
            await asyncio.sleep(0.6)  # a hash takes ~20 ms here
            assert not pending.done()
        assert (await asyncio.wait_for(pending, 10)).startswith("$argon2id$")
    finally:
        await hasher.close()


async def test_a_free_slot_is_taken_when_another_is_held(tmp_path: Path) -> None:
    two = slots(tmp_path, 2)
    hasher = PasswordHasher(concurrency=1, slots=two)
    try:
        await hasher.warm_up()
        (pid,) = hasher.pids
        with held(two.path(pid % 2)):  # the process's own slot
            stored = await asyncio.wait_for(hasher.hash("correct horse battery"), 10)
        assert stored.startswith("$argon2id$")
    finally:
        await hasher.close()


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_hashing_processes_end_with_a_killed_server(tmp_path: Path) -> None:
    """SIGKILL runs no exit hook: the hashing process must notice by itself."""
    script = tmp_path / "server.py"
    script.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from kizuna.hashing_process import Slots\n"
        "from kizuna.password_hasher import PasswordHasher\n"
        "async def main():\n"
        "    hasher = PasswordHasher(concurrency=2, slots=Slots(Path(sys.argv[1]), 1))\n"
        "    await hasher.warm_up()\n"
        "    print(*hasher.pids, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    server = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    children = [int(pid) for pid in server.stdout.readline().split()]
    assert len(children) == 2
    assert all(alive(pid) for pid in children)
    server.kill()
    server.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.1)
    assert not any(alive(pid) for pid in children)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone too (waiting for init to reap it).
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False
