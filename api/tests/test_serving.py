"""``kizuna serve --workers N``: every worker gets connections, a second server on the same
address is refused, a dead worker is replaced, and SIGTERM ends them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kizuna.serving import reuse_port_supported
from kizuna.settings import Settings
from tests.conftest import free_port, wait_ready

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="Linux SO_REUSEPORT only")


def serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kizuna", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def workers_of(supervisor: int) -> set[int]:
    """Its child processes that are workers (not multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def accepted_by(pids: set[int], port: int) -> dict[int, int]:
    """How many established connections to ``port`` each process holds (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    counts = {}
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts[pid] = held
    return counts


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "KIZUNA_DATA_DIR": str(settings.data_dir), "KIZUNA_LOG_LEVEL": "warning"}


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = serve(env, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_connections_are_spread_over_the_workers(
    server: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = server
    workers = workers_of(proc.pid)
    assert len(workers) == 2
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
    try:
        for client in clients:
            client.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        for client in clients:
            assert client.recv(4096).startswith(b"HTTP/1.1 200")  # accepted and answered
        counts = accepted_by(workers, port)
    finally:
        for client in clients:
            client.close()
    assert sum(counts.values()) == 32
    # Spread by a hash of each connection: all 32 on one worker has odds of 2 in 2**32.
    assert all(count > 0 for count in counts.values()), counts


def test_a_second_server_on_the_address_is_refused(
    server: tuple[subprocess.Popen[str], int], env: dict[str, str]
) -> None:
    _, port = server
    second = serve(env, port)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert f"another kizuna serve is listening on 127.0.0.1:{port}" in err

    with socket.socket() as taken:  # a port some other program listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        other = serve(env, taken.getsockname()[1])
        _, err = other.communicate(timeout=30)
    assert other.returncode == 1 and "cannot listen on" in err


def test_workers_end_with_a_killed_supervisor(
    server: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = server
    workers = workers_of(proc.pid)
    assert len(workers) == 2
    proc.kill()  # SIGKILL: no handler runs
    proc.wait(10)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.2)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_a_dead_worker_is_replaced_and_sigterm_ends_all(
    server: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = server
    before = workers_of(proc.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = workers_of(proc.pid)
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"worker not replaced: {now}"
        time.sleep(0.2)
    wait_ready(f"http://127.0.0.1:{port}", proc)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in now | before)
    with socket.socket() as again:  # the address is free again
        again.bind(("127.0.0.1", port))
