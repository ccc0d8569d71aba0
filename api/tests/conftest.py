"""Fixtures: a real app on a real, migrated store in a temporary data dir.

The store is a SQLite file in the data dir, or with ``KIZUNA_TEST_DATABASE=postgres`` a database
of its own on one PostgreSQL server started for the run (api/README.md, "Tests on both
databases"). ``KIZUNA_TEST_DATABASE``:

- unset: SQLite stores; the tests about PostgreSQL (those that ask for ``postgres_url`` or
  ``postgres_admin_url``) start the server and run too, so a plain ``pytest`` runs everything.
- ``sqlite``: SQLite stores only; the tests about PostgreSQL are left to the PostgreSQL run.
- ``postgres``: every store on PostgreSQL; tests marked ``sqlite_only`` are skipped.
"""

from __future__ import annotations

import os
import shutil
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
from kizuna.settings import Settings, ensure_data_dir
from tests.postgres import Admin

PASSWORD = "correct horse battery"
BASE_URL = "https://testserver"  # https so the client's jar sends the Secure cookies

TEST_DATABASE = os.environ.get("KIZUNA_TEST_DATABASE", "")
if TEST_DATABASE not in ("", "sqlite", "postgres"):
    raise pytest.UsageError(
        f"KIZUNA_TEST_DATABASE={TEST_DATABASE!r}: say sqlite or postgres (or leave it unset)"
    )
ON_POSTGRES = TEST_DATABASE == "postgres"
_POSTGRES_TESTS = "postgres_admin_url"  # a fixture every test about PostgreSQL depends on


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if ON_POSTGRES and marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {marker.args[0]}"))
        if TEST_DATABASE == "sqlite" and _POSTGRES_TESTS in getattr(item, "fixturenames", ()):
            item.add_marker(
                pytest.mark.skip(reason="about PostgreSQL: runs with KIZUNA_TEST_DATABASE=postgres")
            )


class Stores:
    """The PostgreSQL run's stores: each data dir's store is a database of its own, made on
    first use as a copy of a template database that the migrations brought to head once per
    run (a copy takes about 10 ms; migrating each one took 60)."""

    def __init__(self, admin: Admin, template: str) -> None:
        self.admin = admin
        self.template = template
        self.made: list[str] = []
        # Copies of the template not yet handed to ``make_settings``: at head already.
        self.untouched: set[str] = set()

    def create(self, *, migrated: bool) -> str:
        name = self.admin.create(template=self.template if migrated else None)
        self.made.append(name)
        url = self.admin.url(name)
        if migrated:
            self.untouched.add(url)
        return url


_stores: Stores | None = None  # set for the PostgreSQL run by the session fixture below
# The store of each data dir that has one other than its SQLite file.
_store_urls: dict[Path, str] = {}


def store_url(data_dir: Path, *, migrated: bool = True) -> str | None:
    """The database URL of ``data_dir``'s store: ``None`` (its SQLite file) or, in the
    PostgreSQL run, a database of its own, made on first use, migrated unless ``migrated`` is
    false (then it is empty, as a new deployment's database is)."""
    key = Path(os.path.abspath(data_dir))
    if key not in _store_urls:
        if _stores is None:
            return None
        _store_urls[key] = _stores.create(migrated=migrated)
    return _store_urls[key]


def missing_store_url(tmp_path: Path) -> str:
    """A store that is not there, as the run's kind of store: a SQLite file in a directory
    that does not exist, or a database that does not exist on the PostgreSQL server. Either
    way its name holds ``missing-dir``, which the driver's error quotes and no answer may."""
    if _stores is None:
        return f"sqlite+aiosqlite:///{tmp_path}/missing-dir/none.db"
    return _stores.admin.url("missing-dir")


def store_env(data_dir: Path) -> dict[str, str]:
    """The settings beside ``KIZUNA_DATA_DIR`` that a ``kizuna`` process needs to find
    ``data_dir``'s store."""
    url = store_url(data_dir)
    return {} if url is None else {"KIZUNA_DATABASE_URL": url}


# The SQLite runs' template: a store file the migrations brought to head once per run.
_sqlite_template: Path | None = None


def _sqlite_store_from_template(data_dir: Path) -> bool:
    """A new data dir's SQLite file as a copy of the template, made as ``ensure_data_dir``
    makes it (owner-only): about 10 ms, where migrating each file took 250 to 900. Whether it
    made one."""
    database = data_dir / "kizuna.db"
    if _sqlite_template is None or database.exists():
        return False
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    with (
        open(_sqlite_template, "rb") as source,
        open(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as copy,
    ):
        shutil.copyfileobj(source, copy)
    return True


@pytest.fixture(scope="session", autouse=True)
def _store_templates(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    global _stores, _sqlite_template
    if not ON_POSTGRES:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("template") / "data", database_url=None
        )
        migrate.upgrade(settings)
        _sqlite_template = settings.data_dir / "kizuna.db"
        yield
        _sqlite_template = None
        return
    admin: Admin = request.getfixturevalue("_postgres_admin")
    template = admin.create()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("template") / "data", database_url=admin.url(template)
    )
    migrate.upgrade(settings)
    _stores = Stores(admin, template)
    yield
    _stores = None
    # A store that missed its database would have been a SQLite file: none may exist.
    stray = sorted(str(p) for p in tmp_path_factory.getbasetemp().rglob("kizuna.db"))
    assert not stray, f"stores on SQLite in the PostgreSQL run: {stray}"


@pytest.fixture(autouse=True)
def _test_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's own stores, dropped after it. In the PostgreSQL run, ``KIZUNA_DATABASE_URL``
    names the store of ``tmp_path / "data"`` for the whole test, so that settings and
    ``kizuna`` processes made from the environment find it too."""
    known = set(_store_urls)
    if _stores is None:
        yield
    else:
        made = len(_stores.made)
        tmp_path: Path = request.getfixturevalue("tmp_path")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KIZUNA_DATABASE_URL", store_url(tmp_path / "data") or "")
            yield
        for name in _stores.made[made:]:
            _stores.admin.drop_soon(name)
            _stores.untouched.discard(_stores.admin.url(name))
        del _stores.made[made:]
        stray = sorted(str(p) for p in tmp_path.rglob("kizuna.db"))
        assert not stray, f"a store on SQLite in the PostgreSQL run: {stray}"
    for key in set(_store_urls) - known:
        del _store_urls[key]


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a fresh migrated data dir; keyword arguments override defaults. The data
    dir's store is its SQLite file, or in the PostgreSQL run a database of its own; a
    ``database_url`` given here becomes the data dir's store for ``kizuna_serve`` too."""

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        overrides.setdefault("log_json", True)
        data_dir = Path(overrides["data_dir"])
        if overrides.get("database_url"):
            _store_urls[Path(os.path.abspath(data_dir))] = overrides["database_url"]
        else:
            overrides.setdefault("database_url", store_url(data_dir))
        url = overrides["database_url"]
        at_head = False
        if url is None:
            at_head = _sqlite_store_from_template(data_dir)
        elif _stores is not None and url in _stores.untouched:
            _stores.untouched.discard(url)
            at_head = True
        settings = Settings(**overrides)
        if at_head:
            ensure_data_dir(settings)  # a fresh copy of the template: migrating finds naught
        else:
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
        **store_env(data_dir),
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
    """One PostgreSQL server per run, on loopback, in a throwaway directory."""
    from tests.postgres import postgres_server

    with postgres_server(free_port()) as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_admin(postgres_admin_url: str) -> Iterator[Admin]:
    admin = Admin(postgres_admin_url)
    yield admin
    admin.close()


@pytest.fixture
def postgres_url(_postgres_admin: Admin) -> Iterator[str]:
    """A fresh, empty database on the run's PostgreSQL server (dropped after the test)."""
    name = _postgres_admin.create()
    yield _postgres_admin.url(name)
    _postgres_admin.drop_soon(name)
