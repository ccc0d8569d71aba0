"""What the API does not give away: its schema in production, statement parameters in
errors; and what it writes down: refused admin calls, as security events."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from kizuna.clock import utcnow
from kizuna.db import Tx
from kizuna.settings import Settings
from tests.conftest import Harness
from tests.tables import users


async def test_the_openapi_document_is_not_served_by_default(harness: Harness) -> None:
    async with harness.client() as client:
        for path in ("/openapi.json", "/docs", "/redoc"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"


async def test_the_openapi_document_is_served_when_asked_for(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    async for harness in make_harness(make_settings(api_docs=True)):
        async with harness.client() as client:
            response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert "/auth/login" in response.json()["paths"]


async def test_store_errors_never_carry_the_statement_parameters(harness: Harness) -> None:
    secret = f"private-{uuid.uuid4().hex}@example.com"
    now = utcnow()
    row = {
        "id": "same-id",
        "email": secret,
        "name": "",
        "password_hash": "x",
        "roles": [],
        "disabled": False,
        "created_at": now,
        "password_changed_at": now,
        "updated_at": now,
    }

    def twice(tx: Tx) -> None:
        tx.execute(insert(users).values(**row))
        tx.execute(insert(users).values(**{**row, "email": "other-" + secret}))

    with pytest.raises(IntegrityError) as caught:
        await harness.services.db.write(twice)
    assert secret not in str(caught.value)


async def test_an_admin_call_by_a_non_admin_is_logged_as_a_security_event(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    user_id = await harness.user()
    async with harness.client() as client:
        await harness.login(client)
        capsys.readouterr()
        response = await client.get("/api/admin/users")
    assert response.status_code == 403
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    refused = [e for e in events if e.get("event") == "admin_forbidden"]
    assert len(refused) == 1
    assert refused[0]["security"] is True
    assert refused[0]["user_id"] == user_id and refused[0]["path"] == "/api/admin/users"
