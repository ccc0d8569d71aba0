"""``GET /api/revocations``: the revocation feed that resource servers verifying tokens
themselves poll (the ``kizuna-verifier`` package). Read only with a service credential; entries
numbered in commit order; every change that must end a token's access appears in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from kizuna import accounts, revocation_feed
from kizuna.clock import utcnow
from kizuna.settings import Settings
from kizuna.store import changes
from kizuna.store import service_credentials as credential_store
from tests.conftest import PASSWORD, Harness
from tests.contract import assert_problem, bearer
from tests.tables import users

FEED = "/api/revocations"


async def credential(harness: Harness, name: str = "billing") -> str:
    secret, _ = await revocation_feed.create_credential(harness.services, name=name)
    return secret


async def read(client: httpx.AsyncClient, secret: str, after: int | None = None) -> Any:
    query = {} if after is None else {"after": str(after)}
    response = await client.get(FEED, params=query, headers=bearer(secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"seq", "more", "retain_seconds", "entries"}
    return body


async def logged_in(harness: Harness, email: str = "ada@example.com") -> tuple[str, str]:
    """A new session of the user: its id and access token."""
    async with harness.client() as client:
        login = await harness.login(client, email)
        token = client.cookies.get("access_token", path="/")
    assert token
    return login.json()["session_id"], token


def sessions_in(entries: list[dict[str, Any]]) -> list[str]:
    return [e["session_id"] for e in entries if e["kind"] == "session"]


def users_in(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["kind"] == "user"]


# -- who may read it ------------------------------------------------------------------------


async def test_only_a_live_service_credential_reads_the_feed(harness: Harness) -> None:
    await harness.user()
    secret = await credential(harness)
    _, access_token = await logged_in(harness)
    async with harness.client() as client:
        missing = await client.get(FEED)
        assert_problem(missing, 401, "service_credential_invalid")
        assert missing.headers["www-authenticate"] == "Bearer"
        refusals = {
            "a user's access token": bearer(access_token),
            "an unknown credential": bearer(revocation_feed.new_secret()),
            "a mangled credential": bearer(secret[:-1]),
            "another scheme": {"Authorization": f"Basic {secret}"},
            "an empty bearer": {"Authorization": "Bearer "},
        }
        for what, headers in refusals.items():
            refused = await client.get(FEED, headers=headers)
            assert_problem(refused, 401, "service_credential_invalid")
            assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"', what
        # A user's cookies are not a credential here either.
        cookie = await client.get(FEED, headers={"Cookie": f"access_token={access_token}"})
        assert_problem(cookie, 401, "service_credential_invalid")

        assert (await client.get(FEED, headers=bearer(secret))).status_code == 200
        now = utcnow()
        await harness.services.db.write(
            lambda tx: credential_store.revoke(tx, name="billing", now=now)
        )
        revoked = await client.get(FEED, headers=bearer(secret))
        assert_problem(revoked, 401, "service_credential_invalid")
        # The secret is never in an answer.
        assert secret not in revoked.text


async def test_the_credential_is_checked_before_the_query(harness: Harness) -> None:
    async with harness.client() as client:
        refused = await client.get(FEED, params={"after": "nonsense"})
    assert_problem(refused, 401, "service_credential_invalid")


@pytest.mark.parametrize(
    "after", ["-1", "abc", "1.5", "", "1e3", str(2**63), str(10**40), "0x10", "\u0661"]
)
async def test_a_bad_after_is_a_422_problem(harness: Harness, after: str) -> None:
    secret = await credential(harness)
    async with harness.client() as client:
        response = await client.get(FEED, params={"after": after}, headers=bearer(secret))
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", "after"]


async def test_the_largest_after_is_an_answer_not_an_error(harness: Harness) -> None:
    secret = await credential(harness)
    async with harness.client() as client:
        body = await read(client, secret, after=2**63 - 1)
    assert body["entries"] == []


# -- what it says ---------------------------------------------------------------------------


async def test_entries_come_in_sequence_order_and_after_means_strictly_after(
    harness: Harness,
) -> None:
    await harness.user()
    secret = await credential(harness)
    sessions = [(await logged_in(harness))[0] for _ in range(4)]
    async with harness.client() as client:
        start = await read(client, secret)
        assert start["entries"] == []
        assert start["more"] is False
        assert start["retain_seconds"] == harness.services.settings.access_token_ttl + 60
        # Each login on a new device ends nothing; revoke them one by one.
        for session_id in sessions:
            await revoke(harness, session_id)
        body = await read(client, secret, after=start["seq"])
        assert sessions_in(body["entries"]) == sessions
        seqs = [e["seq"] for e in body["entries"]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert seqs[0] > start["seq"] and body["seq"] == seqs[-1]
        # after=N: exactly the entries numbered above N.
        middle = await read(client, secret, after=seqs[1])
        assert sessions_in(middle["entries"]) == sessions[2:]
        # Nothing new: no entries, and the same place.
        again = await read(client, secret, after=body["seq"])
        assert again == {**body, "entries": []}


async def revoke(harness: Harness, session_id: str) -> None:
    await accounts.revoke_sessions(harness.services, session_ids=[session_id], reason="test")


async def test_the_starting_point_holds_the_entries_a_live_token_may_still_meet(
    harness: Harness,
) -> None:
    await harness.user()
    secret = await credential(harness)
    recent, _ = await logged_in(harness)
    await revoke(harness, recent)
    # Entries older than an access token's life (plus the margin) cannot matter any more.
    ttl = harness.services.settings.access_token_ttl
    long_ago = utcnow() - timedelta(seconds=ttl + revocation_feed.MARGIN + 5)
    just_in = utcnow() - timedelta(seconds=ttl + revocation_feed.MARGIN - 5)
    for key, at in (("old-session", long_ago), ("borderline", just_in)):
        await harness.services.db.write(partial(changes.add, kind="session", keys=[key], now=at))
    async with harness.client() as client:
        start = await read(client, secret)
        everything = await read(client, secret, after=0)
    assert sessions_in(everything["entries"]) == [recent, "old-session", "borderline"]
    assert sessions_in(start["entries"]) == [recent, "borderline"]
    # Where to go on from: the newest entry of all, whatever its time.
    assert start["seq"] == everything["seq"] == everything["entries"][-1]["seq"]


async def test_pages_are_bounded_and_say_when_more_is_waiting(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocation_feed, "PAGE", 2)
    await harness.user()
    secret = await credential(harness)
    sessions = [(await logged_in(harness))[0] for _ in range(5)]
    for session_id in sessions:
        await revoke(harness, session_id)
    async with harness.client() as client:
        seen: list[str] = []
        body = await read(client, secret)  # the starting point pages too
        seen += sessions_in(body["entries"])
        pages = 1
        while body["more"]:
            assert len(body["entries"]) == 2
            assert body["seq"] == body["entries"][-1]["seq"]
            body = await read(client, secret, after=body["seq"])
            seen += sessions_in(body["entries"])
            pages += 1
        assert seen == sessions and pages == 3


async def test_a_reader_ahead_of_the_store_is_brought_back_to_its_end(
    harness: Harness,
) -> None:
    await harness.user()
    secret = await credential(harness)
    session_id, _ = await logged_in(harness)
    await revoke(harness, session_id)
    async with harness.client() as client:
        end = (await read(client, secret, after=0))["seq"]
        ahead = await read(client, secret, after=end + 1000)
    assert ahead["entries"] == [] and ahead["seq"] == end


async def test_everything_that_ends_access_appears(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    """Logout, a session ended from the device list, a login replacing the device's session,
    a password change, refresh-token reuse, logout-all, a demotion and a disabled account."""
    # No grace window: a rotated refresh token presented again is reuse at once (rule 5).
    async for harness in make_harness(make_settings(refresh_grace=0)):
        await check_everything_appears(harness)


async def check_everything_appears(harness: Harness) -> None:
    admin_id = await harness.user("root@example.com", roles=("admin",), name="Root")
    ada = await harness.user(roles=("editor", "viewer"))
    secret = await credential(harness)
    async with harness.client() as feed:
        start = (await read(feed, secret))["seq"]

        async def since_start() -> list[dict[str, Any]]:
            entries: list[dict[str, Any]] = (await read(feed, secret, after=start))["entries"]
            return entries

        # logout
        async with harness.client() as browser:
            session_id = (await harness.login(browser)).json()["session_id"]
            assert (await browser.post("/auth/logout")).status_code == 204
        assert sessions_in(await since_start()) == [session_id]

        # the device list's "end this session"
        ended, _ = await logged_in(harness)
        async with harness.client() as browser:
            await harness.login(browser)
            assert (await browser.delete(f"/api/sessions/{ended}")).status_code == 204
        assert sessions_in(await since_start())[-1] == ended

        # a login on the same device ends that device's previous session
        async with harness.client() as browser:
            first = (await harness.login(browser)).json()["session_id"]
            await harness.login(browser)
        assert sessions_in(await since_start())[-1] == first

        # a password change ends every other session
        other, _ = await logged_in(harness)
        password = "another fine passphrase"
        async with harness.client() as browser:
            await harness.login(browser)
            changed = await browser.post(
                "/auth/password", json={"current_password": PASSWORD, "new_password": password}
            )
            assert changed.status_code == 204, changed.text
        assert other in sessions_in(await since_start())

        # refresh-token reuse ends the session
        async with harness.client() as browser:
            login = await harness.login(browser, password=password)
            stolen = browser.cookies.get("refresh_token", path="/auth/refresh")
            assert (await browser.post("/auth/refresh")).status_code == 200
        async with harness.client() as thief:
            thief.cookies.set("refresh_token", str(stolen), path="/auth/refresh")
            reused = await thief.post("/auth/refresh")
            assert_problem(reused, 401, "refresh_token_reused")
        assert sessions_in(await since_start())[-1] == login.json()["session_id"]

        # logout-all
        async with harness.client() as a, harness.client() as b:
            everywhere = [
                (await harness.login(c, password=password)).json()["session_id"] for c in (a, b)
            ]
            assert (await b.post("/auth/logout-all")).status_code == 204
        assert set(everywhere) <= set(sessions_in(await since_start()))

        # a demotion: the user as they are now
        async with harness.client() as browser:
            live = (await harness.login(browser, password=password)).json()["session_id"]
        async with harness.client() as root:
            await harness.login(root, "root@example.com")
            demoted = await root.patch(f"/api/admin/users/{ada}", json={"roles": ["viewer"]})
            assert demoted.status_code == 200, demoted.text
            entry = users_in(await since_start())[-1]
            assert entry == {
                "seq": entry["seq"],
                "kind": "user",
                "user_id": ada,
                "disabled": False,
                "roles": ["viewer"],
            }
            # disabling: the user's state, and the end of every session of theirs
            disabled = await root.patch(f"/api/admin/users/{ada}", json={"disabled": True})
            assert disabled.status_code == 200, disabled.text
        entries = await since_start()
        assert users_in(entries)[-1]["disabled"] is True
        assert users_in(entries)[-1]["roles"] == ["viewer"]
        assert live in sessions_in(entries)
        # Each user entry carries the state as it is now: the demotion's entry too.
        assert all(e["disabled"] for e in users_in(entries))
        assert all(e["user_id"] != admin_id for e in users_in(entries))


async def test_a_user_who_is_gone_reads_as_disabled(harness: Harness) -> None:
    ada = await harness.user()
    secret = await credential(harness)
    now = utcnow()
    await harness.services.db.write(lambda tx: changes.add(tx, kind="user", keys=[ada], now=now))
    await harness.services.db.write(lambda tx: tx.execute(delete(users)))
    async with harness.client() as client:
        (entry,) = (await read(client, secret))["entries"]
    assert entry == {
        "seq": entry["seq"],
        "kind": "user",
        "user_id": ada,
        "disabled": True,
        "roles": [],
    }


async def test_the_feed_on_postgres(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
    postgres_url: str,
) -> None:
    """The migration, the credential and the feed's statements on PostgreSQL."""
    async for harness in make_harness(make_settings(database_url=postgres_url)):
        await check_the_feed(harness)


async def check_the_feed(harness: Harness) -> None:
    ada = await harness.user(roles=("viewer",))
    secret = await credential(harness)
    with pytest.raises(credential_store.NameTaken):
        await credential(harness)
    async with harness.client() as client:
        start = await read(client, secret)
        session_id, _ = await logged_in(harness)
        await revoke(harness, session_id)
        now = datetime.now(UTC)
        await harness.services.db.write(
            lambda tx: changes.add(tx, kind="user", keys=[ada], now=now)
        )
        body = await read(client, secret, after=start["seq"])
        assert sessions_in(body["entries"]) == [session_id]
        assert users_in(body["entries"])[0]["roles"] == ["viewer"]
        assert (await read(client, secret))["entries"] == body["entries"]
        await harness.services.db.write(
            lambda tx: credential_store.revoke(tx, name="billing", now=now)
        )
        refused = await client.get(FEED, headers=bearer(secret))
        assert_problem(refused, 401, "service_credential_invalid")
