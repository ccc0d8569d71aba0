"""Password hashing runs in processes of its own, and survives losing one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_hashing_processes_end_with_a_killed_server(tmp_path: Path) -> None:
    """SIGKILL runs no exit hook: the hashing process must notice by itself."""
    script = tmp_path / "server.py"
    script.write_text(
        "import asyncio, os, sys\n"
        "from kizuna import passwords\n"
        "async def main():\n"
        "    await passwords.PasswordHasher(concurrency=1).hash('correct horse battery')\n"
        "    print(*passwords._pool(1)._processes, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n"
    )
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    children = [int(pid) for pid in server.stdout.readline().split()]
    assert children
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
