"""A stateful test of refresh-token rotation (``kizuna.rotation``, rules 1-6; issue 8).

Hypothesis drives random interleavings of sign-ins, refreshes with the current token, racing
refreshes (several at once with one token), reuse of an old token within and after the grace
window, logout, password change (which ends the user's other sessions) and session expiry
against the real app and store, and checks them against a model a few lines long:

* a session is live, expired or revoked; a live session has exactly one current token;
* refreshing with the current token gives a new one; an old token within the grace window gives
  the current one, byte for byte; an old token after the window ends the session (reuse);
* after every step the store agrees with the model: the same sessions revoked, one record more
  per rotation and never more (no fork), never two live (unrotated, unrevoked) tokens for one
  session, the current record being the model's current token; and every member of a racing
  group gets the same refresh cookie.

Time is not waited for: "after the grace window" is made by moving the session's rotation
stamps back by more than the window, and expiry by moving the session's end into the past,
both in the store, as the example tests of rotation do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import anyio.from_thread
import httpx
import jwt
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, update

from kizuna import migrate
from kizuna.clock import utcnow
from kizuna.db import Tx
from kizuna.settings import Settings
from kizuna.store import sessions as session_store
from tests.conftest import PASSWORD, Harness, _harness, store_url
from tests.fuzzing import scaled
from tests.tables import refresh_tokens, rows
from tests.tables import sessions as sessions_table

T = TypeVar("T")
GRACE = 10
MACHINE = settings(
    max_examples=scaled(15),
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
OTHER_PASSWORD = "another horse battery"


@dataclass
class Live:
    portal: anyio.from_thread.BlockingPortal
    harness: Harness

    def call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self.portal.call(func, *args)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("stateful") / "data"
    settings = Settings(
        data_dir=data_dir,
        database_url=store_url(data_dir),
        log_level="critical",
        refresh_grace=GRACE,
        session_cache_ttl=0.0,
    )
    migrate.upgrade(settings)
    with anyio.from_thread.start_blocking_portal() as portal:
        harnesses = _harness(settings)
        harness = portal.call(harnesses.__anext__)
        try:
            yield Live(portal, harness)
        finally:
            with pytest.raises(StopAsyncIteration):
                portal.call(harnesses.__anext__)


def set_cookie(response: httpx.Response, name: str) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    return None


def jti(token: str) -> str:
    value: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return value


@dataclass
class ModelSession:
    """What the model knows of one session."""

    id: str
    current: str  # the refresh token the session's browser holds now
    access: str
    old_in_grace: list[str] = field(default_factory=list)
    old_past_grace: list[str] = field(default_factory=list)
    rotations: int = 0
    revoked: bool = False
    expired: bool = False

    @property
    def live(self) -> bool:
        return not self.revoked and not self.expired

    def rotate(self, new_token: str, access: str) -> None:
        self.old_in_grace.append(self.current)
        self.current = new_token
        self.access = access
        self.rotations += 1


async def refresh_with(harness: Harness, token: str) -> httpx.Response:
    async with harness.client() as bare:
        return await bare.post("/auth/refresh", headers={"Cookie": f"refresh_token={token}"})


async def race(harness: Harness, token: str, n: int) -> list[httpx.Response]:
    return list(await asyncio.gather(*(refresh_with(harness, token) for _ in range(n))))


@dataclass(frozen=True)
class StoreView:
    revoked: bool
    records: int
    live_ids: list[str]


def machine_for(live: Live) -> type[RuleBasedStateMachine]:
    harness = live.harness

    class Rotation(RuleBasedStateMachine):
        sessions = Bundle("sessions")

        def __init__(self) -> None:
            super().__init__()
            self.model: dict[str, ModelSession] = {}
            self.password = PASSWORD
            self.email = ""

        # -- the user and its sessions ----------------------------------------------------------

        @initialize()
        def a_user(self) -> None:
            self.email = f"user-{utcnow().timestamp()}-{id(self)}@example.com"
            live.call(harness.user, self.email)

        @precondition(lambda self: len(self.model) < 3)
        @rule(target=sessions)
        def sign_in(self) -> str:
            async def login() -> httpx.Response:
                async with harness.client() as client:
                    return await client.post(
                        "/auth/login", json={"email": self.email, "password": self.password}
                    )

            response = live.call(login)
            assert response.status_code == 200, response.text
            refresh, access = (
                set_cookie(response, "refresh_token"),
                set_cookie(response, "access_token"),
            )
            assert refresh and access
            session_id = response.json()["session_id"]
            self.model[session_id] = ModelSession(session_id, current=refresh, access=access)
            return session_id

        # -- refreshing ----------------------------------------------------------------------

        def expect_refused(self, session: ModelSession) -> str | None:
            """The refusal the model predicts for any token of ``session``, before rule 3-5."""
            if session.revoked:
                return "refresh_token_revoked"
            if session.expired:
                return "session_expired"
            return None

        @rule(session_id=sessions)
        def refresh_with_the_current_token(self, session_id: str) -> None:
            session = self.model[session_id]
            response = live.call(refresh_with, harness, session.current)
            refused = self.expect_refused(session)
            if refused:
                assert response.status_code == 401, response.text
                assert response.json()["code"] == refused
                return
            assert response.status_code == 200, response.text
            new, access = (
                set_cookie(response, "refresh_token"),
                set_cookie(response, "access_token"),
            )
            assert new and access and new != session.current
            session.rotate(new, access)

        @rule(session_id=sessions, n=st.integers(2, 6), old=st.booleans(), data=st.data())
        def racing_refreshes_with_one_token(
            self, session_id: str, n: int, old: bool, data: st.DataObject
        ) -> None:
            session = self.model[session_id]
            olds = session.old_in_grace + session.old_past_grace
            token = data.draw(st.sampled_from(olds)) if old and olds else session.current
            past_grace = token in session.old_past_grace
            responses = live.call(race, harness, token, n)
            statuses = {r.status_code for r in responses}
            refused = self.expect_refused(session)
            if refused:
                assert statuses == {401}
                assert {r.json()["code"] for r in responses} == {refused}
                return
            if past_grace:
                # The first to reach the store ends the session; the others find it ended.
                codes = sorted(r.json()["code"] for r in responses)
                assert statuses == {401}
                assert codes == ["refresh_token_reused"] + ["refresh_token_revoked"] * (n - 1)
                session.revoked = True
                return
            assert statuses == {200}, [r.text for r in responses]
            cookies = {set_cookie(r, "refresh_token") for r in responses}
            assert len(cookies) == 1, "the racers got different tokens: the family forked"
            (new,) = cookies
            assert new
            if token == session.current:
                session.rotate(new, str(set_cookie(responses[0], "access_token")))
            else:
                assert new == session.current, "a replay must hand out the current token"

        @rule(session_id=sessions, data=st.data())
        def reuse_of_an_old_token(self, session_id: str, data: st.DataObject) -> None:
            session = self.model[session_id]
            olds = session.old_in_grace + session.old_past_grace
            if not olds:
                return
            token = data.draw(st.sampled_from(olds))
            response = live.call(refresh_with, harness, token)
            refused = self.expect_refused(session)
            if refused:
                assert response.status_code == 401
                assert response.json()["code"] == refused
            elif token in session.old_past_grace:
                assert response.status_code == 401
                assert response.json()["code"] == "refresh_token_reused"
                session.revoked = True
            else:
                assert response.status_code == 200, response.text
                assert set_cookie(response, "refresh_token") == session.current

        # -- time -----------------------------------------------------------------------------

        @rule(session_id=sessions)
        def the_grace_window_passes(self, session_id: str) -> None:
            def age(tx: Tx) -> None:
                rotated = rows(
                    tx,
                    select(refresh_tokens.c.id, refresh_tokens.c.rotated_at).where(
                        refresh_tokens.c.session_id == session_id,
                        refresh_tokens.c.rotated_at.is_not(None),
                    ),
                )
                for row in rotated:
                    tx.execute(
                        update(refresh_tokens)
                        .where(refresh_tokens.c.id == row.id)
                        .values(rotated_at=row.rotated_at - timedelta(seconds=GRACE + 1))
                    )

            live.call(harness.services.db.write, age)
            session = self.model[session_id]
            session.old_past_grace += session.old_in_grace
            session.old_in_grace = []

        @rule(session_id=sessions)
        def the_session_reaches_its_maximum_age(self, session_id: str) -> None:
            live.call(
                harness.services.db.write,
                lambda tx: tx.execute(
                    update(sessions_table)
                    .where(sessions_table.c.id == session_id)
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                ),
            )
            self.model[session_id].expired = True

        # -- ending sessions ------------------------------------------------------------------

        @rule(session_id=sessions)
        def logout(self, session_id: str) -> None:
            session = self.model[session_id]

            async def post() -> httpx.Response:
                async with harness.client() as bare:
                    return await bare.post(
                        "/auth/logout", headers={"Cookie": f"refresh_token={session.current}"}
                    )

            assert live.call(post).status_code == 204
            session.revoked = True

        @rule(session_id=sessions)
        def password_change(self, session_id: str) -> None:
            session = self.model[session_id]
            if not session.live:
                return
            new_password = OTHER_PASSWORD if self.password == PASSWORD else PASSWORD

            async def post() -> httpx.Response:
                async with harness.client() as bare:
                    return await bare.post(
                        "/auth/password",
                        headers={"Authorization": f"Bearer {session.access}"},
                        json={"current_password": self.password, "new_password": new_password},
                    )

            response = live.call(post)
            assert response.status_code == 204, response.text
            self.password = new_password
            for other in self.model.values():
                if other.id != session_id:
                    other.revoked = True

        # -- the store agrees ---------------------------------------------------------------

        @invariant()
        def the_store_agrees_with_the_model(self) -> None:
            for session in self.model.values():
                view = live.call(store_view, harness, session.id)
                assert view.revoked == session.revoked, session
                assert view.records == 1 + session.rotations, "a rotation forked or was lost"
                if session.revoked:
                    assert view.live_ids == [], "a revoked session kept a live token"
                else:
                    assert view.live_ids == [jti(session.current)], "not one live token"

    return Rotation


async def store_view(harness: Harness, session_id: str) -> StoreView:
    def read(tx: Tx) -> StoreView:
        row = session_store.get(tx, session_id=session_id)
        assert row is not None
        records = rows(
            tx, select(*refresh_tokens.columns).where(refresh_tokens.c.session_id == session_id)
        )
        live_ids = [r.id for r in records if r.rotated_at is None and r.revoked_at is None]
        return StoreView(
            revoked=row.revoked_at is not None, records=len(records), live_ids=live_ids
        )

    view: StoreView = await harness.services.db.read(read)
    return view


def test_rotation_keeps_the_store_and_the_model_in_step(live: Live) -> None:
    run_state_machine_as_test(machine_for(live), settings=MACHINE)
