"""A real PostgreSQL server for the tests, started on loopback in a temporary directory."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
