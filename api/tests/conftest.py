"""Fixtures: a real app on a real, migrated SQLite file in a temporary data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kizuna import accounts, log, migrate
from kizuna.app import create_app
from kizuna.services import Services
from kizuna.settings import Settings

PASSWORD = "correct horse battery"
BASE_URL = "https://testserver"  # https so the client's jar sends the Secure cookies


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a fresh migrated data dir; keyword arguments override defaults."""

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        overrides.setdefault("log_json", True)
        settings = Settings(**overrides)
        migrate.upgrade(settings)
        return settings

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


class Harness:
    """One running app plus helpers to make users and clients against it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @property
    def services(self) -> Services:
        services: Services = self.app.state.kizuna
        return services

    def client(self, *, peer: str = "127.0.0.1", **kwargs: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(peer, 50000))
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, **kwargs)

    async def user(
        self,
        email: str = "ada@example.com",
        password: str = PASSWORD,
        *,
        roles: tuple[str, ...] = (),
        name: str = "Ada",
    ) -> str:
        user = await accounts.register(
            self.services, email=email, password=password, name=name, roles=roles
        )
        return user.id

    async def login(
        self, client: httpx.AsyncClient, email: str = "ada@example.com", password: str = PASSWORD
    ) -> httpx.Response:
        response = await client.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response


async def _harness(settings: Settings) -> AsyncIterator[Harness]:
    log.configure(level=settings.log_level, json=settings.log_json)  # as kizuna serve does
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield Harness(app)


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in _harness(settings):
        yield h


@pytest.fixture
def make_harness() -> Callable[[Settings], AsyncIterator[Harness]]:
    return _harness


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(base_url: str, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Until ``kizuna serve`` answers /readyz; fails if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


def serve_env(data_dir: Path, **env: str) -> dict[str, str]:
    return {
        **os.environ,
        "KIZUNA_DATA_DIR": str(data_dir),
        "KIZUNA_LOG_LEVEL": "error",
        **env,
    }


@contextmanager
def kizuna_serve(data_dir: Path, *serve_args: str, **env: str) -> Iterator[str]:
    """``kizuna serve`` (uvicorn) on a free loopback port over ``data_dir``; yields its URL.
    ``serve_args``: more arguments (``--workers 2``); ``env``: more KIZUNA_* settings."""
    port = free_port()
    command = [sys.executable, "-m", "kizuna", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, *serve_args],
        env=serve_env(data_dir, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, proc)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


class LiveServer:
    def __init__(self, base_url: str, env: dict[str, str]) -> None:
        self.base_url = base_url
        self.env = env

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kizuna", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The real thing: ``kizuna serve`` as a uvicorn process on 127.0.0.1."""
    with kizuna_serve(settings.data_dir, KIZUNA_LOG_LEVEL="warning") as base_url:
        yield LiveServer(base_url, serve_env(settings.data_dir, KIZUNA_LOG_LEVEL="warning"))


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    from tests.postgres import postgres_server

    with postgres_server(free_port()) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> str:
    from tests.postgres import create_database

    return create_database(postgres_admin_url)
