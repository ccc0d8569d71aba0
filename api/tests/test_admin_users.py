"""The admin side at scale (docs/reference.md, "Admin"): users a page at a time and searched by
email prefix, one user's sessions, their security events; cursors that cannot be forged."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kizuna.clock import utcnow
from kizuna.settings import Settings
from kizuna.store import users as user_store
from tests.conftest import PASSWORD, Harness
from tests.contract import assert_iso_utc, assert_problem
from tests.tables import rows, security_events

ADMIN = "root@example.com"
EMAIL = "ada@example.com"


@pytest.fixture
async def admin(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    await harness.user(ADMIN, roles=("admin",), name="Root")
    async with harness.client() as client:
        await harness.login(client, ADMIN)
        yield client


async def add_users(harness: Harness, emails: list[str]) -> list[str]:
    """Users straight into the store (no password hashing: these never sign in)."""
    now = utcnow()

    def work(tx: Any) -> list[str]:
        return [
            user_store.create(tx, email=email, password_hash="$argon2id$x", now=now).id
            for email in emails
        ]

    return await harness.services.db.write(work)


async def users_page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/admin/users", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"users", "next_cursor", "prev_cursor"}
    return body


def emails(page: dict[str, Any]) -> list[str]:
    return [user["email"] for user in page["users"]]


async def walk(client: httpx.AsyncClient, **params: Any) -> list[list[str]]:
    """Every page from the first, following next_cursor."""
    pages = []
    page = await users_page(client, **params)
    while True:
        pages.append(emails(page))
        if page["next_cursor"] is None:
            return pages
        assert len(pages) < 100, "the pages never end"
        page = await users_page(client, **params, cursor=page["next_cursor"])


# -- the list ------------------------------------------------------------------------------


async def test_pages_visit_every_user_exactly_once_while_users_are_added(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    rng = random.Random(11)
    existing = [f"user{n:03d}@example.com" for n in rng.sample(range(1000), 60)]
    await add_users(harness, existing)
    seen: list[str] = []
    added: list[str] = []
    page = await users_page(admin, limit=7)
    while True:
        seen += emails(page)
        # Sign-ups meanwhile, on both sides of where the admin is.
        fresh = [f"user{n:03d}-new{len(added)}@example.com" for n in rng.sample(range(1000), 3)]
        await add_users(harness, fresh)
        added += fresh
        if page["next_cursor"] is None:
            break
        assert len(seen) < 1000, "the pages never end"
        page = await users_page(admin, limit=7, cursor=page["next_cursor"])
        assert len(page["users"]) <= 7

    assert len(seen) == len(set(seen)), "a user was listed twice"
    assert seen == sorted(seen), "pages are in email order"
    assert set(existing) | {ADMIN} <= set(seen), "a user who was there all along was skipped"
    # Those added behind the admin's position are not shown; those ahead are.
    assert set(seen) - set(existing) - {ADMIN} <= set(added)


async def test_previous_pages_are_the_same_pages(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    await add_users(harness, [f"u{n:02d}@example.com" for n in range(20)])
    forward = await walk(admin, limit=6)
    assert [len(p) for p in forward] == [6, 6, 6, 3]  # 20 users and root
    listed = [email for page in forward for email in page]
    assert listed == sorted(listed)

    first = await users_page(admin, limit=6)
    assert first["prev_cursor"] is None
    page = first
    for _ in range(10):
        if page["next_cursor"] is None:
            break
        page = await users_page(admin, limit=6, cursor=page["next_cursor"])
    assert page["next_cursor"] is None and emails(page) == forward[-1]
    backward = [emails(page)]
    while page["prev_cursor"] is not None and len(backward) < 10:
        page = await users_page(admin, limit=6, cursor=page["prev_cursor"])
        backward.append(emails(page))
    assert backward[::-1] == forward
    # Back at the start: nothing before it, and the way forward again.
    assert page["prev_cursor"] is None and page["next_cursor"] is not None


async def test_the_list_shows_each_user_without_secrets(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    ada = await harness.user(EMAIL, roles=("editor",))
    page = await users_page(admin)
    assert emails(page) == [EMAIL, ADMIN]
    assert page["next_cursor"] is None and page["prev_cursor"] is None
    user = page["users"][0]
    assert set(user) == {"id", "email", "name", "roles", "disabled", "created_at"}
    assert (user["id"], user["roles"], user["disabled"]) == (ada, ["editor"], False)
    assert_iso_utc(user["created_at"])
    assert "argon2" not in str(page)


async def test_limit_is_bounded_and_defaults_to_50(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    await add_users(harness, [f"u{n:03d}@example.com" for n in range(60)])
    assert len((await users_page(admin))["users"]) == 50
    assert len((await users_page(admin, limit=200))["users"]) == 61
    assert len((await users_page(admin, limit=1))["users"]) == 1
    for limit in ("0", "201", "-1", "many", "1e3"):
        response = await admin.get("/api/admin/users", params={"limit": limit})
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["loc"] == ["query", "limit"]


# -- search --------------------------------------------------------------------------------


async def test_search_is_a_case_insensitive_email_prefix(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    await add_users(
        harness,
        ["ada@example.com", "adam@example.com", "Adele@Example.com", "bob@example.com"],
    )
    assert emails(await users_page(admin, q="AD")) == [
        "ada@example.com",
        "adam@example.com",
        "adele@example.com",
    ]
    assert emails(await users_page(admin, q="  ada")) == ["ada@example.com", "adam@example.com"]
    assert emails(await users_page(admin, q="ada@")) == ["ada@example.com"]
    # A prefix, not a substring: "example" is in every address but starts none.
    none = await users_page(admin, q="example")
    assert none == {"users": [], "next_cursor": None, "prev_cursor": None}
    assert emails(await users_page(admin, q="zzz")) == []


async def test_search_takes_percent_underscore_and_backslash_literally(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    await add_users(
        harness,
        ["a%b@x.org", "a_b@x.org", "axb@x.org", "a\\b@x.org", "ab@x.org", "aé@x.org"],
    )
    assert emails(await users_page(admin, q="a%")) == ["a%b@x.org"]
    assert emails(await users_page(admin, q="a_")) == ["a_b@x.org"]
    assert emails(await users_page(admin, q="a\\")) == ["a\\b@x.org"]
    assert emails(await users_page(admin, q="%")) == []
    assert emails(await users_page(admin, q="_")) == []
    assert emails(await users_page(admin, q="AÉ")) == ["aé@x.org"]


async def test_search_pages_through_its_matches_only(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    matching = [f"team{n}@example.com" for n in range(7)]
    await add_users(harness, [*matching, "tea@example.com", "teb@example.com", "a@team.org"])
    pages = await walk(admin, q="team", limit=3)
    assert pages == [matching[:3], matching[3:6], matching[6:]]


async def test_search_refuses_control_characters_and_long_input(admin: httpx.AsyncClient) -> None:
    for q in ("a\x00", "a\nb", "x" * 321):
        response = await admin.get("/api/admin/users", params={"q": q})
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["loc"] == ["query", "q"]


# -- cursors -------------------------------------------------------------------------------


def flipped(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


async def test_a_changed_or_foreign_cursor_is_refused(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    await add_users(harness, [f"u{n}@example.com" for n in range(5)] + ["team@example.com"])
    cursor = (await users_page(admin, limit=2))["next_cursor"]
    assert cursor
    body, tag = cursor.split(".")
    ada = (await users_page(admin, q="team"))["users"][0]["id"]
    events = await admin.get(f"/api/admin/users/{ada}/events")
    assert events.status_code == 200
    tampered = [
        flipped(cursor, 3),  # the position
        flipped(cursor, len(body) + 3),  # the seal
        body,  # no seal
        f"{body}.{tag}.x",
        f"{body}.{tag}=",  # padded: not the encoding the server gives out
        f"{body}!.{tag}",  # a character the decoder would skip
        "",
        "garbage",
        "%%%.%%%",
        "x" * 1025,
    ]
    for bad in tampered:
        response = await admin.get("/api/admin/users", params={"limit": 2, "cursor": bad})
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["loc"] == ["query", "cursor"], bad
        assert "Traceback" not in response.text
    # A good cursor for another search: refused, not quietly mixed.
    response = await admin.get("/api/admin/users", params={"cursor": cursor, "q": "u"})
    assert_problem(response, 422, "validation_error")
    # A users cursor is not an events cursor, nor the reverse.
    response = await admin.get(f"/api/admin/users/{ada}/events", params={"cursor": cursor})
    assert_problem(response, 422, "validation_error")


async def test_cursors_end_when_the_key_is_rotated(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    await add_users(harness, [f"u{n}@example.com" for n in range(5)])
    cursor = (await users_page(admin, limit=2))["next_cursor"]
    assert (await admin.get("/api/admin/users", params={"cursor": cursor})).status_code == 200
    harness.services.keyring.rotate()
    response = await admin.get("/api/admin/users", params={"cursor": cursor})
    assert_problem(response, 422, "validation_error")


# -- who may ---------------------------------------------------------------------------------


async def test_only_admins_see_users_sessions_and_events(harness: Harness) -> None:
    ada = await harness.user(EMAIL, roles=("editor",))
    paths = [
        "/api/admin/users",
        "/api/admin/users?q=a",
        f"/api/admin/users/{ada}",
        f"/api/admin/users/{ada}/events",
    ]
    async with harness.client() as client, harness.client() as anonymous:
        await harness.login(client)
        for path in paths:
            assert_problem(await client.get(path), 403, "forbidden")
            assert_problem(await anonymous.get(path), 401, "unauthenticated")


# -- a user, their sessions and events -------------------------------------------------------


async def test_a_users_sessions_live_and_ended(harness: Harness, admin: httpx.AsyncClient) -> None:
    ada = await harness.user(EMAIL)
    async with (
        harness.client(peer="192.0.2.7", headers={"user-agent": "Laptop/1.0"}) as laptop,
        harness.client(peer="198.51.100.9", headers={"user-agent": "Phone/2.0"}) as phone,
    ):
        kept = (await harness.login(laptop)).json()["session_id"]
        ended = (await harness.login(phone)).json()["session_id"]
        assert (await phone.post("/auth/logout")).status_code == 204

    response = await admin.get(f"/api/admin/users/{ada}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["user"]["email"] == EMAIL and detail["more_sessions"] is False
    sessions = {s["id"]: s for s in detail["sessions"]}
    assert list(sessions) == [ended, kept]  # newest first
    live, gone = sessions[kept], sessions[ended]
    assert (live["state"], live["ip"]) == ("live", "192.0.2.7")
    assert live["user_agent"] == "Laptop/1.0"
    assert live["revoked_at"] is None and live["revoke_reason"] is None
    assert (gone["state"], gone["ip"], gone["user_agent"]) == (
        "revoked",
        "198.51.100.9",
        "Phone/2.0",
    )
    assert gone["revoke_reason"] == "logout"
    for session in sessions.values():
        for stamp in ("created_at", "last_used_at", "expires_at"):
            assert_iso_utc(session[stamp])
        assert session["device_id"]

    missing = await admin.get("/api/admin/users/no-such-user")
    assert_problem(missing, 404, "not_found")
    assert_problem(await admin.get("/api/admin/users/no-such-user/events"), 404, "not_found")


async def test_a_user_with_many_sessions_shows_the_newest_50(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    ada = await harness.user(EMAIL)
    async with harness.client() as client:
        for _ in range(52):
            client.cookies.delete("device_id")  # a new device each time: sessions pile up
            await harness.login(client)
        last = (await harness.login(client)).json()["session_id"]
    detail = (await admin.get(f"/api/admin/users/{ada}")).json()
    assert len(detail["sessions"]) == 50 and detail["more_sessions"] is True
    assert detail["sessions"][0]["id"] == last


@pytest.fixture
def strict_settings(make_settings: Callable[..., Settings]) -> Settings:
    # A short throttle, and no grace for a reused refresh token.
    return make_settings(login_fail_per_account=3, refresh_grace=0)


@pytest.fixture
async def strict(
    strict_settings: Settings, make_harness: Callable[[Settings], AsyncIterator[Harness]]
) -> AsyncIterator[Harness]:
    async for harness in make_harness(strict_settings):
        yield harness


async def all_events(client: httpx.AsyncClient, user_id: str, limit: int = 50) -> list[Any]:
    found: list[Any] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(f"/api/admin/users/{user_id}/events", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"events", "next_cursor"}
        found += body["events"]
        if body["next_cursor"] is None:
            return found
        assert len(found) < 1000, "the pages never end"
        params["cursor"] = body["next_cursor"]


async def test_security_events_from_real_actions_newest_first(strict: Harness) -> None:
    harness = strict
    ada = await harness.user(EMAIL)
    await harness.user(ADMIN, roles=("admin",))

    async with harness.client(peer="192.0.2.8", headers={"user-agent": "Desk/3"}) as desk:
        # 1. A password change.
        await harness.login(desk)
        changed = await desk.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        )
        assert changed.status_code == 204, changed.text

        # 2. A burst of wrong passwords: the throttle refuses; on record once for the account.
        wrong = {"email": EMAIL.upper(), "password": "not the password"}
        async with harness.client(peer="203.0.113.5", headers={"user-agent": "Burst/1"}) as burst:
            codes = [(await burst.post("/auth/login", json=wrong)).status_code for _ in range(6)]
        assert codes == [401, 401, 401, 429, 429, 429]

        # 3. A refresh token used twice: the session ends, the reuse is on record.
        stolen = desk.cookies.get("refresh_token", path="/auth/refresh")
        assert (await desk.post("/auth/refresh")).status_code == 200
    async with harness.client(peer="198.51.100.66") as thief:
        thief.cookies.set("refresh_token", str(stolen), path="/auth/refresh")
        assert_problem(await thief.post("/auth/refresh"), 401, "refresh_token_reused")

    async with harness.client() as admin:
        await harness.login(admin, ADMIN)
        events = await all_events(admin, ada)
        assert [e["kind"] for e in events] == [
            "refresh_token_reused",
            "login_throttled",
            "password_changed",
        ]
        reused, throttled, changed_event = events
        assert throttled["ip"] == "203.0.113.5" and throttled["user_agent"] == "Burst/1"
        assert changed_event["ip"] == "192.0.2.8" and changed_event["user_agent"] == "Desk/3"
        assert changed_event["session_id"]
        assert reused["ip"] == "198.51.100.66" and reused["detail"]["refresh_token_id"]
        for event in events:
            assert set(event) == {"id", "at", "kind", "session_id", "ip", "user_agent", "detail"}
            assert_iso_utc(event["at"])
        # One at a time, following the cursor: the same events, in the same order.
        assert await all_events(admin, ada, limit=1) == events
        # Another user's cursor does not open this user's events.
        other = await admin.get("/api/admin/users", params={"q": ADMIN})
        root = other.json()["users"][0]["id"]
        first = await admin.get(f"/api/admin/users/{ada}/events", params={"limit": 1})
        cursor = first.json()["next_cursor"]
        response = await admin.get(f"/api/admin/users/{root}/events", params={"cursor": cursor})
        assert_problem(response, 422, "validation_error")


async def test_a_throttled_sign_up_is_on_record_for_its_address(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    settings = make_settings(signup_per_ip=1)
    async for harness in make_harness(settings):
        async with harness.client(peer="203.0.113.9") as client:
            statuses = []
            for n in range(4):
                body = {"email": f"new{n}@example.com", "password": "a long enough passphrase"}
                statuses.append((await client.post("/auth/register", json=body)).status_code)
        assert statuses == [201, 429, 429, 429]
        recorded = await harness.services.db.read(
            lambda tx: rows(
                tx, select(security_events).where(security_events.c.kind.like("%throttled"))
            )
        )
        # One event for the burst, against the address (no account is known).
        assert [(e.kind, e.user_id, e.ip) for e in recorded] == [
            ("signup_throttled", None, "203.0.113.9")
        ]
