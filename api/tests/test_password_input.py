"""Passwords as people type them: any Unicode spelling of one password is that password
(NFKC), and input that is not text is refused in words, never with a 500."""

from __future__ import annotations

import json
import unicodedata

import httpx
from sqlalchemy import update

from kizuna import accounts
from kizuna.db import Tx
from kizuna.password_policy import WeakPassword
from kizuna.store import users as user_store
from tests.conftest import PASSWORD, Harness
from tests.tables import users

EMAIL = "ada@example.com"
# "café au lait" with a precomposed é, and with e + combining acute accent.
COMPOSED = unicodedata.normalize("NFC", "café au lait 42")
DECOMPOSED = unicodedata.normalize("NFD", "café au lait 42")
LONE_SURROGATE = "abcdefgh\ud800ij"


def body_json(payload: dict[str, str]) -> bytes:
    # httpx cannot encode a lone surrogate itself; JSON's \u escape carries it.
    return json.dumps(payload).encode()


async def post_raw(client: httpx.AsyncClient, path: str, payload: dict[str, str]) -> httpx.Response:
    return await client.post(
        path, content=body_json(payload), headers={"content-type": "application/json"}
    )


async def test_composed_and_decomposed_spellings_sign_in_alike(harness: Harness) -> None:
    assert COMPOSED != DECOMPOSED
    await harness.user(EMAIL, password=COMPOSED)
    async with harness.client() as client:
        for spelling in (COMPOSED, DECOMPOSED):
            response = await client.post("/auth/login", json={"email": EMAIL, "password": spelling})
            assert response.status_code == 200, spelling
        wrong = await client.post(
            "/auth/login", json={"email": EMAIL, "password": "cafe au lait 42"}
        )
        assert wrong.status_code == 401


async def test_a_hash_made_before_normalisation_still_verifies(harness: Harness) -> None:
    """Accounts created before passwords were normalised hold the hash of the typed form."""
    services = harness.services
    legacy_hash = await services.hasher._call({"op": "hash", "password": DECOMPOSED})
    await harness.user(EMAIL, password="placeholder secret 1")

    def put_legacy_hash(tx: Tx) -> None:
        user = user_store.get_by_email(tx, email=EMAIL)
        assert user is not None
        tx.execute(update(users).where(users.c.id == user.id).values(password_hash=legacy_hash))

    await services.db.write(put_legacy_hash)
    async with harness.client() as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "password": DECOMPOSED})
    assert response.status_code == 200


async def test_a_lone_surrogate_in_a_new_password_is_a_422_in_words(harness: Harness) -> None:
    async with harness.client() as client:
        response = await post_raw(
            client, "/auth/register", {"email": EMAIL, "password": LONE_SURROGATE}
        )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "weak_password"
    assert "text" in response.json()["detail"]


async def test_a_lone_surrogate_in_a_password_change_is_a_422(harness: Harness) -> None:
    await harness.user(EMAIL)
    async with harness.client() as client:
        await harness.login(client)
        new = await post_raw(
            client,
            "/auth/password",
            {"current_password": PASSWORD, "new_password": LONE_SURROGATE},
        )
        assert new.status_code == 422, new.text
        assert new.json()["code"] == "weak_password"
        # A password to check is read as text first: a clear 422, never a 500.
        current = await post_raw(
            client,
            "/auth/password",
            {"current_password": LONE_SURROGATE, "new_password": "another long secret"},
        )
        assert current.status_code == 422, current.text
        assert current.json()["code"] == "validation_error"


async def test_a_lone_surrogate_at_login_is_a_clear_422(harness: Harness) -> None:
    await harness.user(EMAIL)
    async with harness.client() as client:
        for email in (EMAIL, "nobody@example.com"):
            response = await post_raw(
                client, "/auth/login", {"email": email, "password": LONE_SURROGATE}
            )
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "validation_error"


async def test_the_hasher_never_matches_a_string_that_is_not_text(harness: Harness) -> None:
    stored = await harness.services.hasher.hash("abcdefghij")
    assert await harness.services.hasher.verify("abcdefghij", stored)
    assert not await harness.services.hasher.verify(LONE_SURROGATE, stored)
    assert not await harness.services.hasher.verify(LONE_SURROGATE, None)


async def test_register_refuses_a_lone_surrogate_before_hashing(harness: Harness) -> None:
    try:
        await accounts.register(harness.services, email=EMAIL, password=LONE_SURROGATE, name="")
    except WeakPassword as exc:
        assert "text" in exc.reason
    else:
        raise AssertionError("a lone surrogate was accepted")
