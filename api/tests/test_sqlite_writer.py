"""The embedded store's direct paths: every statement of the store runs straight on sqlite3
exactly as SQLAlchemy runs it, and the writer thread's groups behave as if each unit of work had
its own transaction."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import pkgutil
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, update
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.base import Executable

import kizuna
import kizuna.store
from kizuna import revocation_feed, sqlite_direct
from kizuna.db import ConnectionTx, Database, Tx, configure_sqlite, sync_sqlite_url
from kizuna.models import Base
from kizuna.problems import is_store_failure
from kizuna.store import changes, health, locks, revocations, throttle_hits
from kizuna.store import refresh_tokens as token_store
from kizuna.store import security_events as event_store
from kizuna.store import service_credentials as credential_store
from kizuna.store import sessions as session_store
from kizuna.store import users as user_store
from tests import tables as tests_tables
from tests.conftest import Harness
from tests.tables import security_events, sessions, users
from tests.tables import throttle_hits as throttle_hits_table

pytestmark = pytest.mark.sqlite_only(
    "the SQLite writer thread and its direct sqlite3 paths; on PostgreSQL every unit of work "
    "runs through SQLAlchemy on asyncpg, which the rest of the suite exercises"
)


async def a_session(harness: Harness) -> str:
    await harness.user()
    async with harness.client() as client:
        session_id: str = (await harness.login(client)).json()["session_id"]
    return session_id


async def current_token_id(db: Database, session_id: str) -> str:
    record = await db.read(lambda tx: token_store.current(tx, session_id=session_id))
    assert record is not None
    return record.id


@contextmanager
def plain_sqlalchemy(db: Database) -> Iterator[Engine]:
    """The same file through SQLAlchemy's own engine, ``Connection`` and ``Result``, with
    foreign keys enforced as on the store's own connections (deleting a session cascades)."""
    engine = create_engine(sync_sqlite_url(db.url))
    sqlalchemy_event.listen(
        engine, "connect", lambda connection, _: connection.execute("PRAGMA foreign_keys=ON")
    )
    try:
        yield engine
    finally:
        engine.dispose()


async def test_direct_statements_answer_exactly_as_sqlalchemy(harness: Harness) -> None:
    db = harness.services.db
    session_id = await a_session(harness)
    token_id = await current_token_id(db, session_id)

    with plain_sqlalchemy(db) as engine, engine.connect() as connection:
        via_sqlalchemy = token_store.lookup(ConnectionTx(connection), token_id=token_id)
    direct = await db.write(lambda tx: token_store.lookup(tx, token_id=token_id))
    assert via_sqlalchemy is not None and direct == via_sqlalchemy
    # Types come back as SQLAlchemy's processors make them: aware datetimes, lists, bools.
    assert direct.token.issued_at.tzinfo is UTC
    assert direct.session_expires_at.tzinfo is UTC
    assert isinstance(direct.user_roles, list) and direct.user_disabled is False
    assert direct.token.rotated_at is None

    # Written directly, read back through SQLAlchemy: the same values.
    when = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert await db.write(
        lambda tx: token_store.mark_rotated(tx, token_id=token_id, successor_id="x", now=when)
    )
    with plain_sqlalchemy(db) as engine, engine.connect() as connection:
        rotated = token_store.lookup(ConnectionTx(connection), token_id=token_id)
    assert rotated is not None and rotated.token.rotated_at == when


# -- every statement of the store, both ways ----------------------------------------------------


def store_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"kizuna.store.{info.name}")
        for info in pkgutil.iter_modules(kizuna.store.__path__)
    ]


def store_statements() -> dict[int, tuple[Executable, list[str]]]:
    """Every module-level statement of the store modules, by identity, with its names."""
    found: dict[int, tuple[Executable, list[str]]] = {}
    for module in store_modules():
        for name, value in vars(module).items():
            if isinstance(value, Executable):
                found.setdefault(id(value), (value, []))[1].append(f"{module.__name__}.{name}")
    return found


def test_store_modules_run_only_their_module_level_statements() -> None:
    """A statement built per call would be compiled per call on the direct path, and would
    escape the comparison below: every ``tx.execute`` in a store module names a module-level
    statement."""
    offences = []
    for module in store_modules():
        constants = {n for n, v in vars(module).items() if isinstance(v, Executable)}
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "execute"
            ):
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Name) and first.id in constants):
                    offences.append(f"{module.__name__}:{node.lineno}: {ast.unparse(node)}")
    assert not offences, offences
    assert store_statements(), "no statements found: the enumeration is broken"


def test_only_the_store_and_the_schema_use_the_orm_classes() -> None:
    """Callers get the store's frozen dataclasses: no module outside ``store/``, ``models.py``
    and the migrations imports ``kizuna.models`` or ``sqlalchemy.orm``."""
    package = Path(kizuna.__file__).parent
    offences = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(("store/", "migrations/")) or relative == "models.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offences += [
                f"{relative}: {name}"
                for name in names
                if name.startswith(("kizuna.models", "sqlalchemy.orm"))
            ]
    assert not offences, offences


@dataclass(frozen=True)
class Case:
    statement: Executable
    params: Mapping[str, Any]


def _typed(row: Any) -> tuple[tuple[str, Any], ...]:
    # A naive and an aware datetime of the same wall time must not compare equal here.
    return tuple((type(value).__name__, value) for value in row)


def _tables(connection: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table as stored: the raw values, before any processor."""
    return {
        table.name: connection.execute(f"SELECT * FROM {table.name} ORDER BY rowid").fetchall()  # noqa: S608
        for table in Base.metadata.sorted_tables
    }


def _raw(connection: Any) -> sqlite3.Connection:
    raw = connection.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def run_direct(db: Database, case: Case) -> Any:
    """The statement on the direct path, in a transaction rolled back afterwards: its rows,
    rowcount and the tables it leaves, or the error it raises."""
    connection = sqlite3.connect(sync_sqlite_url(db.url).removeprefix("sqlite:///"))
    configure_sqlite(connection)
    try:
        connection.execute("BEGIN")
        try:
            rows = sqlite_direct.DirectTx(connection, db._statements).execute(
                case.statement, case.params
            )
        except DBAPIError as exc:
            return ("error", type(exc).__name__)
        outcome = ([_typed(r) for r in rows.all()], rows.rowcount, _tables(connection))
        connection.execute("ROLLBACK")
        return outcome
    finally:
        connection.close()


def run_sqlalchemy(engine: Engine, case: Case) -> Any:
    """The same through a plain SQLAlchemy ``Connection``."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            result = connection.execute(case.statement, dict(case.params))
        except DBAPIError as exc:
            transaction.rollback()
            return ("error", type(exc).__name__)
        rows = [_typed(r) for r in result.all()] if result.returns_rows else []
        outcome = (rows, result.rowcount, _tables(_raw(connection)))
        transaction.rollback()
        return outcome


NOW = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
LONG_AGO = datetime(2001, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


async def populated(harness: Harness) -> dict[str, Any]:
    """A store with something in every table: an admin, sessions live and revoked, rotated and
    current refresh tokens, counted attempts, change-feed entries and security events."""
    db = harness.services.db
    user_id = await harness.user(roles=("admin",))
    await harness.user("bob@example.com")
    async with harness.client() as client:
        live = (await harness.login(client)).json()["session_id"]
        assert (await client.post("/auth/refresh")).status_code == 200
        assert (await client.get("/api/sessions")).status_code == 200
        assert (await client.get("/api/userinfo")).status_code == 200
        assert (await client.get("/api/admin/users")).status_code == 200
        patched = await client.patch(f"/api/admin/users/{user_id}", json={"roles": ["admin"]})
        assert patched.status_code == 200
        wrong = await client.post(
            "/auth/login", json={"email": "ada@example.com", "password": "not the password"}
        )
        assert wrong.status_code == 401
    async with harness.client() as other:
        ended = (await harness.login(other)).json()["session_id"]
        assert (await other.post("/auth/logout")).status_code == 204
    async with harness.client() as client:
        assert (await client.get("/readyz")).status_code == 200
    # Service credentials, one live and one revoked, and the revocation feed read with the
    # live one; a feed entry for a user who is no longer there.
    secret, _ = await revocation_feed.create_credential(harness.services, name="billing")
    await revocation_feed.create_credential(harness.services, name="retired")
    assert await db.write(lambda tx: credential_store.revoke(tx, name="retired", now=NOW))
    await db.write(lambda tx: changes.add(tx, kind="user", keys=["gone-user"], now=NOW))
    async with harness.client() as client:
        for query in ("", "?after=0"):
            feed = await client.get(
                "/api/revocations" + query, headers={"Authorization": f"Bearer {secret}"}
            )
            assert feed.status_code == 200, feed.text
    await db.write(
        lambda tx: session_store.record_event(
            tx, kind="probe", now=NOW, user_id=user_id, session_id=live, detail={"k": "v"}
        )
    )
    current = await db.read(lambda tx: token_store.current(tx, session_id=live))
    assert current is not None
    with plain_sqlalchemy(db) as engine, engine.connect() as connection:
        rotated = connection.execute(
            select(tests_tables.refresh_tokens.c.id).where(
                tests_tables.refresh_tokens.c.session_id == live,
                tests_tables.refresh_tokens.c.rotated_at.is_not(None),
            )
        ).scalar_one()
        hit = connection.execute(
            select(throttle_hits_table.c.id, throttle_hits_table.c.bucket).limit(1)
        ).one()
    return {
        "user_id": user_id,
        "live": live,
        "ended": ended,
        "device_id": current.device_id,
        "current": current.id,
        "rotated": rotated,
        "hit_id": hit[0],
        "bucket": hit[1],
        "secret_hash": revocation_feed.hash_secret(secret),
    }


def cases(ids: dict[str, Any]) -> list[Case]:
    """Each statement of the store with representative parameters: a hit and a miss where
    that differs, and errors where the schema refuses."""
    user_id, live, ended = ids["user_id"], ids["live"], ids["ended"]
    token = {
        "b_id": "new-token",
        "b_session_id": live,
        "b_user_id": user_id,
        "b_device_id": ids["device_id"],
        "b_issued_at": NOW,
        "b_expires_at": NOW + timedelta(days=1),
        "b_key_id": "k1",
    }
    new_user = {
        "b_id": "new-user",
        "b_email": "new@example.com",
        "b_name": "Neu",
        "b_password_hash": "$argon2id$x",
        "b_roles": ["a", "b"],
        "b_disabled": False,
        "b_now": NOW,
    }
    revoke = {"b_session_id": live, "b_now": NOW, "b_reason": "test"}
    return [
        # changes
        Case(changes._ADD, {"b_kind": "session", "b_key": live, "b_at": NOW}),
        Case(changes._LATEST, {}),
        Case(changes._AFTER, {"b_after": 0, "b_limit": 1000}),
        Case(changes._AFTER, {"b_after": 1, "b_limit": 1}),
        # the revocation feed: session and user entries, a user who is gone
        Case(revocations._AFTER, {"b_after": 0, "b_limit": 1000}),
        Case(revocations._AFTER, {"b_after": 2, "b_limit": 1}),
        Case(revocations._SINCE, {"b_since": LONG_AGO, "b_limit": 1000}),
        Case(revocations._SINCE, {"b_since": NOW, "b_limit": 1000}),
        # service credentials
        Case(
            credential_store._INSERT,
            {"b_id": "new-credential", "b_name": "new", "b_secret_hash": "ab" * 32, "b_now": NOW},
        ),
        Case(  # name taken
            credential_store._INSERT,
            {"b_id": "other", "b_name": "billing", "b_secret_hash": "cd" * 32, "b_now": NOW},
        ),
        Case(credential_store._ALL, {}),
        Case(credential_store._BY_NAME, {"b_name": "retired"}),
        Case(credential_store._BY_NAME, {"b_name": "no-such-name"}),
        Case(credential_store._LIVE_BY_HASH, {"b_secret_hash": ids["secret_hash"]}),
        Case(credential_store._LIVE_BY_HASH, {"b_secret_hash": "00" * 32}),
        Case(credential_store._REVOKE, {"b_name": "billing", "b_now": NOW}),
        Case(credential_store._REVOKE, {"b_name": "retired", "b_now": NOW}),
        # locks
        Case(locks.SERIALIZE, {"b_lock": "kizuna.changes"}),
        # health
        Case(health._PING, {}),
        # refresh tokens
        Case(token_store._LOOKUP, {"b_token_id": ids["current"]}),
        Case(token_store._LOOKUP, {"b_token_id": ids["rotated"]}),
        Case(token_store._LOOKUP, {"b_token_id": "no-such-token"}),
        Case(
            token_store._MARK_ROTATED,
            {"b_token_id": ids["current"], "b_now": NOW, "b_successor": "next"},
        ),
        Case(
            token_store._MARK_ROTATED,
            {"b_token_id": ids["rotated"], "b_now": NOW, "b_successor": "next"},
        ),
        Case(token_store._INSERT, token),
        Case(token_store._INSERT, {**token, "b_id": ids["current"]}),  # primary key taken
        Case(token_store._CURRENT, {"b_session_id": live}),
        Case(token_store._CURRENT, {"b_session_id": ended}),
        Case(
            token_store._TOUCH_SESSION,
            {"b_session_id": live, "b_now": NOW, "b_ip": "192.0.2.1", "b_user_agent": "UA é"},
        ),
        # sessions
        Case(
            session_store._CREATE,
            {
                "b_id": "new-session",
                "b_user_id": user_id,
                "b_device_id": "device",
                "b_ip": "192.0.2.2",
                "b_user_agent": "agent",
                "b_now": NOW,
                "b_expires_at": NOW + timedelta(days=30),
            },
        ),
        Case(session_store._REVOKE_SESSION, revoke),
        Case(session_store._REVOKE_SESSION, {**revoke, "b_session_id": ended}),
        Case(session_store._REVOKE_TOKENS, revoke),
        Case(
            session_store._RECORD_EVENT,
            {
                "b_at": NOW,
                "b_kind": "probe",
                "b_user_id": user_id,
                "b_session_id": None,
                "b_ip": "",
                "b_user_agent": "",
                "b_detail": {"why": "ünïcode", "n": "1"},
            },
        ),
        Case(session_store._LIVE, {"b_user_id": user_id}),
        Case(
            session_store._LIVE_ON_DEVICE, {"b_user_id": user_id, "b_device_id": ids["device_id"]}
        ),
        Case(session_store._LIVE_EXCEPT, {"b_user_id": user_id, "b_except_id": live}),
        Case(session_store._LIST_LIVE, {"b_user_id": user_id, "b_now": datetime.now(UTC)}),
        Case(session_store._LIST_LIVE, {"b_user_id": user_id, "b_now": NOW}),
        Case(session_store._GET, {"b_session_id": live}),
        Case(session_store._GET, {"b_session_id": ended}),
        Case(session_store._GET_WITH_USER, {"b_session_id": live}),
        Case(session_store._GET_WITH_USER, {"b_session_id": "no-such-session"}),
        # throttle hits
        Case(throttle_hits._IN_WINDOW, {"b_bucket": ids["bucket"], "b_since": LONG_AGO}),
        Case(throttle_hits._IN_WINDOW, {"b_bucket": "empty", "b_since": LONG_AGO}),
        Case(throttle_hits._ADD, {"b_bucket": ids["bucket"], "b_at": NOW}),
        Case(throttle_hits._FORGET, {"b_bucket": ids["bucket"], "b_since": NOW}),
        Case(throttle_hits._REMOVE, {"b_id": ids["hit_id"]}),
        Case(throttle_hits._PURGE, {"b_since": NOW}),
        # the purge (kizuna.purge): batches that delete some, all or nothing, and its counts
        *(
            Case(statement, {"b_before": when, "b_limit": limit})
            for statement in (
                token_store._PURGE_EXPIRED,
                token_store._PURGE_REVOKED,
                session_store._PURGE_REVOKED,
                session_store._PURGE_EXPIRED,
                session_store._PURGE_EVENTS,
                changes._PURGE,
            )
            for when, limit in ((NOW, 1), (NOW, 1000), (LONG_AGO, 1000))
        ),
        *(
            Case(session_store._PURGE_IDLE, {"b_before": when, "b_idle_before": when, "b_limit": n})
            for when, n in ((NOW, 1), (NOW, 1000), (LONG_AGO, 1000))
        ),
        *(
            Case(statement, {"b_before": when})
            for statement in (
                token_store._PURGEABLE,
                session_store._PURGEABLE_EVENTS,
                changes._PURGEABLE,
            )
            for when in (NOW, LONG_AGO)
        ),
        Case(session_store._PURGEABLE, {"b_before": NOW, "b_idle_before": NOW}),
        Case(session_store._PURGEABLE, {"b_before": LONG_AGO, "b_idle_before": LONG_AGO}),
        Case(throttle_hits._PURGE_SOME, {"b_since": NOW, "b_limit": 1000}),
        Case(throttle_hits._PURGE_SOME, {"b_since": LONG_AGO, "b_limit": 1000}),
        Case(throttle_hits._PURGEABLE, {"b_since": NOW}),
        # users
        Case(user_store._BY_EMAIL, {"b_email": "ada@example.com"}),
        Case(user_store._BY_EMAIL, {"b_email": "nobody@example.com"}),
        Case(user_store._BY_ID, {"b_user_id": user_id}),
        Case(user_store._ALL, {}),
        # the admin's pages of users, of a user's sessions and events
        Case(user_store._PAGE_AFTER, {"b_after": "", "b_limit": 10}),
        Case(user_store._PAGE_AFTER, {"b_after": "ada@example.com", "b_limit": 1}),
        Case(user_store._PAGE_FROM_BELOW, {"b_from": "b", "b_below": "c", "b_limit": 10}),
        Case(user_store._PAGE_AFTER_BELOW, {"b_after": "a", "b_below": "b", "b_limit": 10}),
        Case(user_store._PAGE_BEFORE, {"b_before": "z", "b_from": "", "b_limit": 10}),
        Case(session_store._OF_USER, {"b_user_id": user_id, "b_limit": 10}),
        Case(session_store._OF_USER, {"b_user_id": "no-such-user", "b_limit": 10}),
        Case(event_store._FIRST, {"b_user_id": user_id, "b_limit": 10}),
        Case(event_store._OLDER, {"b_user_id": user_id, "b_at": NOW, "b_id": 10**9, "b_limit": 9}),
        Case(event_store._OLDER, {"b_user_id": user_id, "b_at": LONG_AGO, "b_id": 1, "b_limit": 9}),
        Case(
            event_store._RECENT_FOR_USER,
            {"b_user_id": user_id, "b_since": LONG_AGO, "b_kind": "probe"},
        ),
        Case(
            event_store._RECENT_FROM_ADDRESS,
            {"b_ip": "", "b_since": LONG_AGO, "b_kind": "probe"},
        ),
        Case(user_store._INSERT, new_user),
        Case(user_store._INSERT, {**new_user, "b_email": "ada@example.com"}),  # email taken
        Case(
            user_store._UPDATE,
            {"b_user_id": user_id, "b_roles": ["x"], "b_disabled": True, "b_now": NOW},
        ),
        Case(
            user_store._SET_PASSWORD,
            {"b_user_id": user_id, "b_password_hash": "$argon2id$y", "b_now": NOW},
        ),
        Case(
            user_store._SET_PASSWORD,
            {"b_user_id": "no-such-user", "b_password_hash": "$argon2id$y", "b_now": NOW},
        ),
    ]


async def test_every_store_statement_answers_exactly_as_sqlalchemy(harness: Harness) -> None:
    """The direct path compiles with SQLAlchemy's compiler and runs the types' processors
    itself (``kizuna.sqlite_direct``), which leans on SQLAlchemy internals: so each statement
    of every store module runs both ways on a populated store, and must give the same rows
    (values and types), the same rowcount, the same stored bytes and the same errors. The
    SQLAlchemy range in pyproject.toml is what this test has passed on."""
    db = harness.services.db
    seen: list[Executable] = []
    real_get = db._statements.get

    def recording(statement: Executable) -> Any:
        seen.append(statement)
        return real_get(statement)

    db._statements.get = recording  # type: ignore[method-assign]
    try:
        ids = await populated(harness)
    finally:
        db._statements.get = real_get  # type: ignore[method-assign]

    statements = store_statements()
    # What the app ran while populating came from the store's module-level statements only
    # (the test's own setup statements aside).
    ran = {id(s) for s in seen} - set(statements)
    assert not ran, [str(s) for s in seen if id(s) in ran]

    all_cases = cases(ids)
    covered = {id(case.statement) for case in all_cases}
    missing = [names for key, (_, names) in statements.items() if key not in covered]
    assert not missing, f"store statements the comparison does not cover: {missing}"
    assert covered <= set(statements), "a case names a statement that is not the store's"

    with plain_sqlalchemy(db) as engine:
        for case in all_cases:
            direct = run_direct(db, case)
            via_sqlalchemy = run_sqlalchemy(engine, case)
            assert direct == via_sqlalchemy, (statements[id(case.statement)][1], case.params)
            if direct[0] != "error":
                rows, _, _ = direct
                for row in rows:
                    for kind, value in row:
                        assert kind != "datetime" or value.tzinfo is UTC


async def test_direct_refuses_what_it_cannot_compile_once(harness: Harness) -> None:
    listed = update(sessions).where(sessions.c.id.in_(["a", "b"])).values(ip="x")
    with pytest.raises(TypeError, match="expanding"):
        await harness.services.db.write(lambda tx: tx.execute(listed))
    # A bind parameter left without a value is an error, not a silent NULL.
    with pytest.raises(TypeError, match="b_token_id"):
        await harness.services.db.write(lambda tx: tx.execute(token_store._LOOKUP, {}))


async def test_direct_errors_are_sqlalchemys_and_roll_back(harness: Harness) -> None:
    db = harness.services.db
    session_id = await a_session(harness)
    token_id = await current_token_id(db, session_id)
    record = await db.read(lambda tx: token_store.lookup(tx, token_id=token_id))
    assert record is not None

    def duplicate(tx: Tx) -> None:
        session_store.record_event(
            tx, kind="probe", now=datetime.now(UTC), user_id=None, session_id=None
        )
        token_store.add(tx, record=record.token)  # same primary key: refused

    with pytest.raises(IntegrityError):
        await db.write(duplicate)
    assert await count_events(db, "probe") == 0  # the first write went with it

    # A store that cannot be opened is a store failure (503), whichever call notices first.
    broken = Database(f"sqlite+aiosqlite:///{harness.services.settings.data_dir}/no/such.db")
    try:
        with pytest.raises((OperationalError, OSError)) as caught:
            await broken.write(lambda tx: token_store.current(tx, session_id="x"))
        assert is_store_failure(caught.value)
    finally:
        await broken.dispose()


EMAIL = "ada@example.com"  # the harness's user


async def test_reads_answer_as_sqlalchemy_and_never_wait_for_the_writer(
    harness: Harness,
) -> None:
    """A login's user lookup: the same user as through a plain SQLAlchemy connection, from a
    reader thread's own connection, while the writer sits in an open write transaction
    (WAL)."""
    db = harness.services.db
    await harness.user()
    email = EMAIL.upper()  # looked up normalised
    with plain_sqlalchemy(db) as engine, engine.connect() as connection:
        via_sqlalchemy = user_store.get_by_email(ConnectionTx(connection), email=email)
    direct = await db.read(lambda tx: user_store.get_by_email(tx, email=email))
    assert via_sqlalchemy is not None and direct is not None
    columns = ("id", "email", "name", "password_hash", "roles", "disabled", "created_at")
    assert [getattr(direct, c) for c in columns] == [getattr(via_sqlalchemy, c) for c in columns]
    assert direct.created_at.tzinfo is UTC
    assert await db.read(lambda tx: user_store.get_by_email(tx, email="no@one.test")) is None

    inside, release = threading.Event(), threading.Event()

    def slow_write(tx: Tx) -> None:
        tx.execute(update(users).where(users.c.email == EMAIL).values(name="Renamed"))
        inside.set()
        release.wait(10)

    writing = asyncio.ensure_future(db.write(slow_write))
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        seen = await asyncio.wait_for(
            db.read(lambda tx: user_store.get_by_email(tx, email=EMAIL)), 5
        )
        assert seen is not None and seen.name == via_sqlalchemy.name  # the last committed state
    finally:
        release.set()
        await writing
    renamed = await db.read(lambda tx: user_store.get_by_email(tx, email=EMAIL))
    assert renamed is not None and renamed.name == "Renamed"


async def test_read_errors_are_sqlalchemys(harness: Harness) -> None:
    broken = Database(f"sqlite+aiosqlite:///{harness.services.settings.data_dir}/no/such.db")
    try:
        with pytest.raises((OperationalError, OSError)) as caught:
            await broken.read(lambda tx: user_store.get_by_email(tx, email="a@b.test"))
        assert is_store_failure(caught.value)
    finally:
        await broken.dispose()


async def count_events(db: Database, kind: str) -> int:
    events = security_events
    rows = await db.read(
        lambda tx: tx.execute(select(events.c.id).where(events.c.kind == kind)).all()
    )
    return len(rows)


def event(kind: str, detail: dict[str, str] | None = None) -> Any:
    def unit(tx: Tx) -> str:
        session_store.record_event(
            tx, kind=kind, now=datetime.now(UTC), user_id=None, session_id=None, detail=detail
        )
        return kind

    return unit


async def as_one_batch(db: Database, *calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Make the store calls while the writer thread is kept busy, so that they wait in its
    queue and it takes them as one batch. Their outcomes, results or exceptions, in order."""
    entered, release = threading.Event(), threading.Event()

    def blocker(tx: Tx) -> None:
        entered.set()
        release.wait(10)

    held = asyncio.ensure_future(db.write(blocker))
    await asyncio.to_thread(entered.wait, 10)
    pending = [asyncio.ensure_future(call()) for call in calls]
    await asyncio.sleep(0.05)  # all of them queued behind the blocker
    release.set()
    await held
    return await asyncio.gather(*pending, return_exceptions=True)


async def test_a_group_commits_in_order_and_each_unit_sees_the_ones_before(
    harness: Harness,
) -> None:
    db = harness.services.db
    session_id = await a_session(harness)

    def append(letter: str) -> Any:
        def unit(tx: Tx) -> str:
            row = tx.execute(
                select(sessions.c.user_agent).where(sessions.c.id == session_id)
            ).first()
            assert row is not None
            seen = str(row[0])
            tx.execute(
                update(sessions).where(sessions.c.id == session_id).values(user_agent=seen + letter)
            )
            return seen

        return unit

    seen = await as_one_batch(db, *(lambda c=c: db.write(append(c)) for c in "abcde"))
    first = seen[0]
    assert seen == [first, first + "a", first + "ab", first + "abc", first + "abcd"]
    assert await user_agent_of(db, session_id) == first + "abcde"


async def test_a_failing_unit_fails_alone(harness: Harness) -> None:
    db = harness.services.db

    def failing(tx: Tx) -> None:
        event("doomed")(tx)
        raise RuntimeError("this unit's own failure")

    outcomes = await as_one_batch(
        db,
        lambda: db.write(event("kept-1")),
        lambda: db.write(failing),
        lambda: db.write(event("kept-2")),
    )
    assert outcomes[0] == "kept-1" and outcomes[2] == "kept-2"
    assert isinstance(outcomes[1], RuntimeError)
    assert await count_events(db, "kept-1") == 1
    assert await count_events(db, "kept-2") == 1
    assert await count_events(db, "doomed") == 0


async def user_agent_of(db: Database, session_id: str) -> str:
    found = await db.read(lambda tx: session_store.get(tx, session_id=session_id))
    assert found is not None
    return found.user_agent


async def test_a_read_modify_write_unit_keeps_its_place_in_a_group(harness: Harness) -> None:
    db = harness.services.db
    session_id = await a_session(harness)

    def set_agent(value: str) -> Any:
        def unit(tx: Tx) -> None:
            tx.execute(update(sessions).where(sessions.c.id == session_id).values(user_agent=value))

        return unit

    def append_more(tx: Tx) -> None:
        row = session_store.get(tx, session_id=session_id)
        assert row is not None
        set_agent(row.user_agent + "+more")(tx)

    outcomes = await as_one_batch(
        db,
        lambda: db.write(set_agent("first")),
        lambda: db.write(append_more),
        lambda: db.write(set_agent("last")),
    )
    assert outcomes == [None, None, None]
    assert await user_agent_of(db, session_id) == "last"
    # And the read-modify-write unit ran between the two: it saw "first", not "last".
    outcomes = await as_one_batch(
        db, lambda: db.write(set_agent("first")), lambda: db.write(append_more)
    )
    assert outcomes == [None, None]
    assert await user_agent_of(db, session_id) == "first+more"


async def test_closed_store_refuses_new_work(make_settings: Any) -> None:
    settings = make_settings()
    db = Database(settings.db_url)
    await db.dispose()
    with pytest.raises(RuntimeError, match="closed"):
        await db.write(lambda tx: None)


async def test_then_runs_after_the_commit_and_fails_alone(harness: Harness) -> None:
    db = harness.services.db

    def boom(kind: str) -> str:
        raise ValueError(f"then failed after {kind} committed")

    outcomes = await as_one_batch(
        db,
        lambda: db.write(event("committed-anyway"), then=boom),
        lambda: db.write(event("neighbour"), then=str.upper),
    )
    assert isinstance(outcomes[0], ValueError)
    assert outcomes[1] == "NEIGHBOUR"
    # ``then`` is not part of the transaction: what the unit wrote stays written.
    assert await count_events(db, "committed-anyway") == 1
    assert await count_events(db, "neighbour") == 1
