"""The embedded store's direct paths: Core statements run straight on sqlite3 give exactly what
SQLAlchemy gives, and the writer thread's groups behave as if each unit of work had its own
transaction."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from kizuna.db import Database, Tx, tx_of
from kizuna.models import SecurityEvent, Session, User
from kizuna.problems import is_store_failure
from kizuna.store import refresh_tokens as token_store
from kizuna.store import sessions as session_store
from kizuna.store import users as user_store
from tests.conftest import Harness


async def a_session(harness: Harness) -> str:
    await harness.user()
    async with harness.client() as client:
        session_id: str = (await harness.login(client)).json()["session_id"]
    return session_id


async def current_token_id(db: Database, session_id: str) -> str:
    record = await db.read(lambda s: token_store.current(tx_of(s), session_id=session_id))
    assert record is not None
    return record.id


async def test_direct_statements_answer_exactly_as_sqlalchemy(harness: Harness) -> None:
    db = harness.services.db
    session_id = await a_session(harness)
    token_id = await current_token_id(db, session_id)

    via_orm = await db.read(lambda s: token_store.lookup(tx_of(s), token_id=token_id))
    direct = await db.write_core(lambda tx: token_store.lookup(tx, token_id=token_id))
    assert via_orm is not None and direct == via_orm
    # Types come back as SQLAlchemy's processors make them: aware datetimes, lists, bools.
    assert direct.token.issued_at.tzinfo is UTC
    assert direct.session_expires_at.tzinfo is UTC
    assert isinstance(direct.user_roles, list) and direct.user_disabled is False
    assert direct.token.rotated_at is None

    # Written directly, read back through SQLAlchemy: the same values.
    when = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert await db.write_core(
        lambda tx: token_store.mark_rotated(tx, token_id=token_id, successor_id="x", now=when)
    )
    rotated = await db.read(lambda s: token_store.lookup(tx_of(s), token_id=token_id))
    assert rotated is not None and rotated.token.rotated_at == when


async def test_direct_refuses_what_it_cannot_compile_once(harness: Harness) -> None:
    sessions = cast(Table, Session.__table__)
    listed = update(sessions).where(sessions.c.id.in_(["a", "b"])).values(ip="x")
    with pytest.raises(TypeError, match="expanding"):
        await harness.services.db.write_core(lambda tx: tx.execute(listed))
    # A bind parameter left without a value is an error, not a silent NULL.
    with pytest.raises(TypeError, match="b_token_id"):
        await harness.services.db.write_core(lambda tx: tx.execute(token_store._LOOKUP, {}))


async def test_direct_errors_are_sqlalchemys_and_roll_back(harness: Harness) -> None:
    db = harness.services.db
    session_id = await a_session(harness)
    token_id = await current_token_id(db, session_id)
    record = await db.read(lambda s: token_store.lookup(tx_of(s), token_id=token_id))
    assert record is not None

    def duplicate(tx: Tx) -> None:
        session_store.record_event(
            tx, kind="probe", now=datetime.now(UTC), user_id=None, session_id=None
        )
        token_store.add(tx, record=record.token)  # same primary key: refused

    with pytest.raises(IntegrityError):
        await db.write_core(duplicate)
    assert await count_events(db, "probe") == 0  # the first write went with it

    # A store that cannot be opened is a store failure (503), whichever call notices first.
    broken = Database(f"sqlite+aiosqlite:///{harness.services.settings.data_dir}/no/such.db")
    try:
        with pytest.raises((OperationalError, OSError)) as caught:
            await broken.write_core(lambda tx: token_store.current(tx, session_id="x"))
        assert is_store_failure(caught.value)
    finally:
        await broken.dispose()


EMAIL = "ada@example.com"  # the harness's user


async def test_core_reads_answer_as_the_orm_and_never_wait_for_the_writer(
    harness: Harness,
) -> None:
    """A login's user lookup: the same user as through a Session, from a reader thread's own
    connection, while the writer sits in an open write transaction (WAL)."""
    db = harness.services.db
    await harness.user()
    email = EMAIL.upper()  # looked up normalised, as the ORM query does
    via_orm = await db.read(lambda s: user_store.get_by_email(s, email=email))
    direct = await db.read_core(lambda tx: user_store.find_by_email(tx, email=email))
    assert via_orm is not None and direct is not None
    columns = ("id", "email", "name", "password_hash", "roles", "disabled", "created_at")
    assert [getattr(direct, c) for c in columns] == [getattr(via_orm, c) for c in columns]
    assert direct.created_at.tzinfo is UTC
    assert await db.read_core(lambda tx: user_store.find_by_email(tx, email="no@one.test")) is None

    inside, release = threading.Event(), threading.Event()
    users = cast(Table, User.__table__)

    def slow_write(tx: Tx) -> None:
        tx.execute(update(users).where(users.c.email == EMAIL).values(name="Renamed"))
        inside.set()
        release.wait(10)

    writing = asyncio.ensure_future(db.write_core(slow_write))
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        seen = await asyncio.wait_for(
            db.read_core(lambda tx: user_store.find_by_email(tx, email=EMAIL)), 5
        )
        assert seen is not None and seen.name == via_orm.name  # the last committed state
    finally:
        release.set()
        await writing
    renamed = await db.read_core(lambda tx: user_store.find_by_email(tx, email=EMAIL))
    assert renamed is not None and renamed.name == "Renamed"


async def test_core_read_errors_are_sqlalchemys(harness: Harness) -> None:
    broken = Database(f"sqlite+aiosqlite:///{harness.services.settings.data_dir}/no/such.db")
    try:
        with pytest.raises((OperationalError, OSError)) as caught:
            await broken.read_core(lambda tx: user_store.find_by_email(tx, email="a@b.test"))
        assert is_store_failure(caught.value)
    finally:
        await broken.dispose()


async def count_events(db: Database, kind: str) -> int:
    events = cast(Table, SecurityEvent.__table__)
    rows = await db.read(
        lambda s: s.execute(select(events.c.id).where(events.c.kind == kind)).all()
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

    held = asyncio.ensure_future(db.write_core(blocker))
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
    sessions = cast(Table, Session.__table__)
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

    seen = await as_one_batch(db, *(lambda c=c: db.write_core(append(c)) for c in "abcde"))
    first = seen[0]
    assert seen == [first, first + "a", first + "ab", first + "abc", first + "abcd"]
    final = await db.read(
        lambda s: (
            s.execute(select(sessions.c.user_agent).where(sessions.c.id == session_id))
            .scalars()
            .one()
        )
    )
    assert final == first + "abcde"


async def test_a_failing_unit_fails_alone(harness: Harness) -> None:
    db = harness.services.db

    def failing(tx: Tx) -> None:
        event("doomed")(tx)
        raise RuntimeError("this unit's own failure")

    outcomes = await as_one_batch(
        db,
        lambda: db.write_core(event("kept-1")),
        lambda: db.write_core(failing),
        lambda: db.write_core(event("kept-2")),
    )
    assert outcomes[0] == "kept-1" and outcomes[2] == "kept-2"
    assert isinstance(outcomes[1], RuntimeError)
    assert await count_events(db, "kept-1") == 1
    assert await count_events(db, "kept-2") == 1
    assert await count_events(db, "doomed") == 0


async def test_session_units_keep_their_place_between_groups(harness: Harness) -> None:
    db = harness.services.db
    sessions = cast(Table, Session.__table__)
    session_id = await a_session(harness)

    def set_agent(value: str) -> Any:
        def unit(tx: Tx) -> None:
            tx.execute(update(sessions).where(sessions.c.id == session_id).values(user_agent=value))

        return unit

    def orm_append(s: Any) -> None:
        row = s.get(Session, session_id)
        row.user_agent = row.user_agent + "+orm"

    outcomes = await as_one_batch(
        db,
        lambda: db.write_core(set_agent("core")),
        lambda: db.write(orm_append),
        lambda: db.write_core(set_agent("last")),
    )
    assert outcomes == [None, None, None]
    final = await db.read(lambda s: s.get(Session, session_id).user_agent)
    assert final == "last"
    # And the ORM unit ran between the two: it saw "core", not "last".
    outcomes = await as_one_batch(
        db, lambda: db.write_core(set_agent("core")), lambda: db.write(orm_append)
    )
    assert outcomes == [None, None]
    assert await db.read(lambda s: s.get(Session, session_id).user_agent) == "core+orm"


async def test_closed_store_refuses_new_work(make_settings: Any) -> None:
    settings = make_settings()
    db = Database(settings.db_url)
    await db.dispose()
    with pytest.raises(RuntimeError, match="closed"):
        await db.write_core(lambda tx: None)


async def test_then_runs_after_the_commit_and_fails_alone(harness: Harness) -> None:
    db = harness.services.db

    def boom(kind: str) -> str:
        raise ValueError(f"then failed after {kind} committed")

    outcomes = await as_one_batch(
        db,
        lambda: db.write_core(event("committed-anyway"), then=boom),
        lambda: db.write_core(event("neighbour"), then=str.upper),
    )
    assert isinstance(outcomes[0], ValueError)
    assert outcomes[1] == "NEIGHBOUR"
    # ``then`` is not part of the transaction: what the unit wrote stays written.
    assert await count_events(db, "committed-anyway") == 1
    assert await count_events(db, "neighbour") == 1
