"""The admin side at scale: the admin endpoints at 10 k users and at 1 M users, in one run.

    .venv/bin/python bench/api/admin.py                      # SQLite, then PostgreSQL (~4-6 min)
    .venv/bin/python bench/api/admin.py --store sqlite       # one store only
    .venv/bin/python bench/api/admin.py --quick              # 2 k and 20 k users: a smoke run

For each store it fills a fresh store with 10 k users (and sessions and security events in
proportion), measures, grows the same store to 1 M users, measures again, and prints a markdown
table: p50 and p99 of each request at both sizes and their ratio (1 M / 10 k). The requests go
through the real app in process (``create_app``, an ASGI client, an admin signed in): the list's
first page, a deep page (a cursor at the middle of the list), a broad search (a one-letter prefix
past "u", a full page at both sizes), a narrow search (one whole address), a user's page (the
user and their sessions) and the first page of their security events. It also prints the store's
query plan of each statement (``EXPLAIN``), to show each is an index range scan.

Bulk fill: ``executemany`` on one transaction (SQLite), ``COPY`` (PostgreSQL, a server started
on loopback by ``api/tests/postgres.py``, in a database with an ICU en-US collation when the
server has ICU, so that the bytewise index of migration 0005 is what makes the search a range).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "api"))  # tests.postgres: the PostgreSQL server of the tests

from kizuna import accounts, log, migrate  # noqa: E402
from kizuna.app import create_app  # noqa: E402
from kizuna.page_cursors import PageCursors  # noqa: E402
from kizuna.settings import Settings  # noqa: E402
from kizuna.store import security_events as event_store  # noqa: E402
from kizuna.store import sessions as session_store  # noqa: E402
from kizuna.store import users as user_store  # noqa: E402

ADMIN = "admin@bench.test"
PASSWORD = "bench admin passphrase"
TARGET = "target@bench.test"  # the user whose page is measured: 30 sessions, 200 events
SESSIONS_PER_USER = 0.2  # other users: one session (and its token) per five, one event per five
EVENTS_PER_USER = 0.2
BATCH = 50_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def email_of(n: int) -> str:
    # Spread over the whole alphabet of hex digits, so that new users land all over the list
    # (between the ones already there), as sign-ups do.
    return f"u{hashlib.blake2b(n.to_bytes(8, 'big'), digest_size=8).hexdigest()}@example.com"


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def user_rows(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    for n in range(start, stop):
        at = naive(T0 + timedelta(seconds=n))
        yield (
            str(uuid.UUID(int=n + 1)),
            email_of(n),
            f"User {n}",
            "$argon2id$bench",
            "[]",
            False,
            at,
            at,
            at,
        )


def session_rows(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    step = round(1 / SESSIONS_PER_USER)
    for n in range(-(-start // step) * step, stop, step):
        at = naive(T0 + timedelta(seconds=n))
        yield (
            str(uuid.UUID(int=(1 << 64) + n)),
            str(uuid.UUID(int=n + 1)),
            f"device-{n}",
            "Bench/1.0",
            "192.0.2.1",
            at,
            at,
            at + timedelta(days=90),
            None,
            None,
        )


def token_rows(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    """The current refresh token of each session."""
    for row in session_rows(start, stop):
        session_id, user_id, device_id, at = row[0], row[1], row[2], row[5]
        yield (
            str(uuid.UUID(int=(2 << 64) + int(uuid.UUID(session_id)) - (1 << 64))),
            session_id,
            user_id,
            device_id,
            at,
            at + timedelta(days=14),
            None,
            None,
            None,
            None,
            "bench-key",
        )


def event_rows(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    step = round(1 / EVENTS_PER_USER)
    for n in range(-(-start // step) * step, stop, step):
        at = naive(T0 + timedelta(seconds=n))
        yield (at, "login_throttled", str(uuid.UUID(int=n + 1)), None, "192.0.2.1", "Bench/1.0", "{}")


def chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_USER_COLUMNS = "id, email, name, password_hash, roles, disabled, created_at, password_changed_at, updated_at"
_SESSION_COLUMNS = (
    "id, user_id, device_id, user_agent, ip, created_at, last_used_at, expires_at, revoked_at, revoke_reason"
)
_TOKEN_COLUMNS = (
    "id, session_id, user_id, device_id, issued_at, expires_at, rotated_at, replaced_by, revoked_at,"
    " revoke_reason, key_id"
)
_EVENT_COLUMNS = "at, kind, user_id, session_id, ip, user_agent, detail"


# -- stores -----------------------------------------------------------------------------------


class SQLiteStore:
    name = "SQLite"

    def __init__(self, workdir: Path, label: str) -> None:
        self.data_dir = workdir / f"sqlite-{label}"
        self.database_url: str | None = None

    def fill(self, start: int, stop: int) -> None:
        def text(row: tuple[Any, ...]) -> tuple[Any, ...]:
            # SQLAlchemy's SQLite DateTime stores this text form.
            return tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)

        db = sqlite3.connect(self.data_dir / "kizuna.db")
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                for table, columns, rows in self._tables(start, stop):
                    marks = ", ".join("?" * len(columns.split(",")))
                    for chunk in chunks(rows):
                        db.executemany(
                            f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608
                            [text(r) for r in chunk],
                        )
            db.execute("ANALYZE")
        finally:
            db.close()

    @staticmethod
    def _tables(start: int, stop: int) -> list[tuple[str, str, Iterator[tuple[Any, ...]]]]:
        return [
            ("users", _USER_COLUMNS, user_rows(start, stop)),
            ("sessions", _SESSION_COLUMNS, session_rows(start, stop)),
            ("refresh_tokens", _TOKEN_COLUMNS, token_rows(start, stop)),
            ("security_events", _EVENT_COLUMNS, event_rows(start, stop)),
        ]

    def explain(self, sql: str) -> list[str]:
        db = sqlite3.connect(self.data_dir / "kizuna.db")
        try:
            return [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
        finally:
            db.close()


class PostgresStore:
    name = "PostgreSQL"

    def __init__(self, workdir: Path, label: str, admin_url: str) -> None:
        self.data_dir = workdir / f"postgres-{label}"
        self.database_url = ""
        self.collation = ""
        self._admin_url = admin_url

    def _dsn(self, url: str) -> str:
        return url.replace("postgresql+asyncpg://", "postgresql://")

    async def create(self) -> None:
        import asyncpg

        name = "bench_" + uuid.uuid4().hex[:8]
        admin = await asyncpg.connect(self._dsn(self._admin_url))
        try:
            try:  # a locale-aware default collation, as most servers have
                await admin.execute(
                    f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu"
                    " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                )
                self.collation = "ICU en-US"
            except asyncpg.PostgresError:
                await admin.execute(f"CREATE DATABASE {name}")
                self.collation = "the server's default"
        finally:
            await admin.close()
        self.database_url = self._admin_url.rsplit("/", 1)[0] + "/" + name

    def fill(self, start: int, stop: int) -> None:
        asyncio.run(self._fill(start, stop))

    async def _fill(self, start: int, stop: int) -> None:
        import asyncpg

        db = await asyncpg.connect(self._dsn(self.database_url))
        try:
            for table, columns, rows in SQLiteStore._tables(start, stop):
                names = [c.strip() for c in columns.split(",")]
                for chunk in chunks(rows):
                    await db.copy_records_to_table(table, records=chunk, columns=names)
            await db.execute("ANALYZE")
        finally:
            await db.close()

    def explain(self, sql: str) -> list[str]:
        async def plan() -> list[str]:
            import asyncpg

            db = await asyncpg.connect(self._dsn(self.database_url))
            try:
                return [str(r[0]) for r in await db.fetch(f"EXPLAIN {sql}")]
            finally:
                await db.close()

        return asyncio.run(plan())


# -- requests ---------------------------------------------------------------------------------


@asynccontextmanager
async def signed_in(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://bench.test") as client:
            response = await client.post("/auth/login", json={"email": ADMIN, "password": PASSWORD})
            response.raise_for_status()
            yield client, app.state.kizuna


def requests_for(target: str, deep: str, middle_email: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "list, first page": ("/api/admin/users", {}),
        "list, deep page (cursor)": ("/api/admin/users", {"cursor": deep}),
        "search, broad (`u7`)": ("/api/admin/users", {"q": "U7"}),
        "search, one address": ("/api/admin/users", {"q": middle_email}),
        "user's page (sessions)": (f"/api/admin/users/{target}", {}),
        "user's events, first page": (f"/api/admin/users/{target}/events", {}),
    }


def rows_of(body: dict[str, Any]) -> int:
    return len(body.get("users", body.get("sessions", body.get("events", []))))


async def measure(
    stores: list[tuple[Settings, str]], count: int
) -> list[tuple[dict[str, tuple[float, float]], dict[str, int]]]:
    """For each store (its settings, the email at the middle of its list): p50 and p99 (ms) of
    each request, and how many rows each answered. The stores' apps run side by side and each
    request goes to one, then the other (in turn first), so that both see the same machine."""
    async with contextlib.AsyncExitStack() as stack:
        plans = []
        for settings, middle_email in stores:
            client, services = await stack.enter_async_context(signed_in(settings))
            found = await client.get("/api/admin/users", params={"q": TARGET})
            target = found.json()["users"][0]["id"]
            deep = PageCursors(services.keyring).seal("users", {"d": "after", "e": middle_email, "q": ""})
            plans.append((client, requests_for(target, deep, middle_email)))
        timings: list[dict[str, list[float]]] = [{name: [] for name in plans[0][1]} for _ in plans]
        rows: list[dict[str, int]] = [{} for _ in plans]
        for client, requests in plans:  # warm up each
            for path, params in requests.values():
                for _ in range(20):
                    (await client.get(path, params=params)).raise_for_status()
        for round_ in range(count):
            for name in plans[0][1]:
                order = list(range(len(plans)))
                if round_ % 2:
                    order.reverse()
                for k in order:
                    client, requests = plans[k]
                    path, params = requests[name]
                    started = time.perf_counter()
                    response = await client.get(path, params=params)
                    timings[k][name].append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                    rows[k][name] = rows_of(response.json())
    return [
        (
            {name: (statistics.median(t), statistics.quantiles(t, n=100)[98]) for name, t in times.items()},
            counts,
        )
        for times, counts in zip(timings, rows, strict=True)
    ]


async def add_admin_and_target(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.kizuna
        await accounts.register(services, email=ADMIN, password=PASSWORD, name="Admin", roles=("admin",))
        target = await accounts.register(services, email=TARGET, password=PASSWORD, name="Target")
        now = datetime.now(UTC)

        def history(tx: Any) -> None:
            for n in range(30):
                session_store.create(
                    tx,
                    user_id=target.id,
                    device_id=f"d{n}",
                    ip="192.0.2.9",
                    user_agent="Bench",
                    now=now,
                    max_age=86400,
                )
            for n in range(200):
                event_store.record_throttled(
                    tx, kind=f"bench_{n}", email=TARGET, ip="192.0.2.9", user_agent="Bench", now=now
                )

        await services.db.write(history)


def statements(target_id: str, middle: str) -> dict[str, tuple[Any, dict[str, Any]]]:
    return {
        "list, first page": (user_store._PAGE_AFTER, {"b_after": "", "b_limit": 51}),
        "list, deep page": (user_store._PAGE_AFTER, {"b_after": middle, "b_limit": 51}),
        "search": (user_store._PAGE_FROM_BELOW, {"b_from": "u7", "b_below": "u8", "b_limit": 51}),
        "previous page": (user_store._PAGE_BEFORE, {"b_before": middle, "b_from": "", "b_limit": 51}),
        "user's sessions": (session_store._OF_USER, {"b_user_id": target_id, "b_limit": 51}),
        "user's events": (event_store._FIRST, {"b_user_id": target_id, "b_limit": 51}),
        "user's events, older": (
            event_store._OLDER,
            {"b_user_id": target_id, "b_at": datetime.now(UTC), "b_id": 10**9, "b_limit": 51},
        ),
    }


def literal_sql(statement: Any, params: dict[str, Any], dialect: Any) -> str:
    """The statement with its parameters written in (for EXPLAIN only; values are ours)."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    values = {}
    for key, value in params.items():
        if isinstance(value, datetime):
            value = naive(value).isoformat(sep=" ")
        values[key] = f"'{value}'" if isinstance(value, str) else str(value)
    if dialect.name == "postgresql":
        for key, value in values.items():
            sql = sql.replace(f"%({key})s", value)
    else:
        for name in compiled.positiontup or []:
            sql = sql.replace("?", values.get(name, "0"), 1)  # OFFSET: 0
    return sql


# -- the run ----------------------------------------------------------------------------------


def settings_of(store: SQLiteStore | PostgresStore) -> Settings:
    return Settings(
        data_dir=store.data_dir,
        database_url=store.database_url or None,
        log_level="critical",
        log_json=True,
    )


def middle_of(size: int) -> str:
    """About the median email of a store of ``size`` users."""
    sample = sorted(email_of(n) for n in range(0, size, max(1, size // 2000)))
    return sample[len(sample) // 2]


def run_stores(
    stores: tuple[SQLiteStore | PostgresStore, SQLiteStore | PostgresStore],
    sizes: tuple[int, int],
    rounds: int,
) -> dict[str, Any]:
    """Fill a store of each size, then measure both side by side."""
    fills: dict[int, float] = {}
    for store, size in zip(stores, sizes, strict=True):
        settings = settings_of(store)
        migrate.upgrade(settings)
        asyncio.run(add_admin_and_target(settings))
        started = time.monotonic()
        store.fill(0, size)
        fills[size] = time.monotonic() - started
        print(f"  {store.name}: {size:,} users filled in {fills[size]:.0f} s", flush=True)
    print(f"  {stores[0].name}: measuring both sizes side by side", flush=True)
    measured = asyncio.run(
        measure(
            [(settings_of(store), middle_of(size)) for store, size in zip(stores, sizes, strict=True)], rounds
        )
    )
    results = dict(zip(sizes, measured, strict=True))

    large = stores[1]

    async def target_id() -> str:
        async with signed_in(settings_of(large)) as (client, _):
            return str((await client.get("/api/admin/users", params={"q": TARGET})).json()["users"][0]["id"])

    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql.dialect() if isinstance(large, PostgresStore) else sqlite.dialect()
    plans = {
        name: large.explain(literal_sql(statement, params, dialect))
        for name, (statement, params) in statements(asyncio.run(target_id()), middle_of(sizes[1])).items()
    }
    return {"results": results, "fills": fills, "plans": plans}


def table(name: str, sizes: tuple[int, int], outcome: dict[str, Any]) -> str:
    small, large = sizes
    a, b = outcome["results"][small], outcome["results"][large]
    lines = [
        f"| {name} | rows | p50 {small // 1000:,} k | p99 {small // 1000:,} k | p50 {large // 1000:,} k"
        f" | p99 {large // 1000:,} k | p50 ratio | p99 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for request, (p50, p99) in a[0].items():
        q50, q99 = b[0][request]
        lines.append(
            f"| {request} | {b[1][request]} | {p50:.2f} ms | {p99:.2f} ms | {q50:.2f} ms | {q99:.2f} ms"
            f" | {q50 / p50:.2f}× | {q99 / p99:.2f}× |"
        )
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="2 k and 20 k users, few rounds")
    parser.add_argument("--rounds", type=int, default=500, help="requests of each kind per size")
    args = parser.parse_args()
    sizes = (2_000, 20_000) if args.quick else (10_000, 1_000_000)
    rounds = 50 if args.quick else args.rounds
    log.configure(level="critical", json=True)
    workdir = Path(tempfile.mkdtemp(prefix="kizuna-bench-admin-"))
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        if args.store in ("sqlite", "both"):
            pair = (SQLiteStore(workdir, "small"), SQLiteStore(workdir, "large"))
            outcomes["SQLite"] = run_stores(pair, sizes, rounds)
        if args.store in ("postgres", "both"):
            from tests.postgres import postgres_server

            with postgres_server(free_port()) as admin_url:
                small, large = (
                    PostgresStore(workdir, "small", admin_url),
                    PostgresStore(workdir, "large", admin_url),
                )
                for store in (small, large):
                    asyncio.run(store.create())
                print(f"  PostgreSQL: databases with collation {large.collation}", flush=True)
                outcomes[f"PostgreSQL ({large.collation})"] = run_stores((small, large), sizes, rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    for name, outcome in outcomes.items():
        fills = ", ".join(f"{size:,} users in {seconds:.0f} s" for size, seconds in outcome["fills"].items())
        print(f"{name}: filled {fills}; {rounds} requests of each kind per size, interleaved\n")
        print(table(name, sizes, outcome))
        print()
    for name, outcome in outcomes.items():
        print(f"Query plans, {name}, at {sizes[1]:,} users:")
        for statement, plan in outcome["plans"].items():
            print(f"  {statement}: " + " / ".join(line.strip() for line in plan))
        print()
    print(json.dumps({"sizes": sizes, "rounds": rounds}))


if __name__ == "__main__":
    main()
