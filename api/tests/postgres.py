"""A real PostgreSQL server for the tests, started on loopback in a temporary directory."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]

T = TypeVar("T")


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@contextmanager
def postgres_server(port: int) -> Iterator[str]:
    """Yields an admin URL (``postgresql+asyncpg://kizuna@127.0.0.1:PORT/postgres``)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found; scripts/setup-services.sh installs them"
        )
    root = Path(tempfile.mkdtemp(prefix="kizuna-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "kizuna"]),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                f"-k {root} -h 127.0.0.1 -p {port} -c fsync=off -c max_connections=200",
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+asyncpg://kizuna@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(admin_url: str) -> str:
    """A fresh database on the server; returns its URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    host_port = admin_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    deadline = time.monotonic() + 10
    while True:
        done = subprocess.run(
            [
                "psql",
                "-h",
                host,
                "-p",
                port,
                "-U",
                "kizuna",
                "-d",
                "postgres",
                "-c",
                f"CREATE DATABASE {name}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(done.stderr)
        time.sleep(0.2)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _name() -> str:
    return "t_" + uuid.uuid4().hex[:12]


class Admin:
    """One admin connection to the test server, kept open for the whole run: a test's
    database is made in about 10 ms over it, where a ``psql`` process per database took 50.

    The connection lives on an event loop of its own, in a thread of its own, so that sync
    fixtures and async tests alike can use it; its calls are serialised (one connection)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="postgres-admin", daemon=True
        )
        self._thread.start()
        self._lock = asyncio.Lock()
        self._pending: list[Future[None]] = []
        dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._connection: asyncpg.Connection = self._call(asyncpg.connect(dsn))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    async def _execute(self, statement: str) -> None:
        async with self._lock:
            await self._connection.execute(statement)

    def url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def create(self, *, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template``; returns its name. FILE_COPY: a
        small template is copied twice as fast as with WAL_LOG (fsync is off anyway)."""
        name = _name()
        copy = f" TEMPLATE {template} STRATEGY file_copy" if template else ""
        self._call(self._execute(f"CREATE DATABASE {name}{copy}"))
        return name

    def drop_soon(self, name: str) -> None:
        """Drops ``name`` in the background (its test need not wait), forcing out whatever is
        still connected to it; ``close`` waits for every such drop."""
        statement = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        self._pending.append(asyncio.run_coroutine_threadsafe(self._execute(statement), self._loop))

    def close(self) -> None:
        for future in self._pending:
            future.result(timeout=60)
        self._call(self._connection.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
