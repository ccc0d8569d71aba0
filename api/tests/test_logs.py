"""Structured logs: one JSON event per security-relevant action, never a secret."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORD, Harness


def events(out: str) -> list[dict[str, object]]:
    parsed = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


async def test_auth_events_are_logged_without_secrets(
    harness: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    await harness.user()
    async with harness.client() as client:
        bad = await client.post(
            "/auth/login", json={"email": "ada@example.com", "password": "wrong password 1"}
        )
        assert bad.status_code == 401
        await harness.login(client)
        stolen = client.cookies.get("refresh_token", path="/auth/refresh")
        assert (await client.post("/auth/refresh")).status_code == 200
        tokens = [stolen, client.cookies.get("access_token")]
        assert (await client.post("/auth/logout")).status_code == 204

    out = capfd.readouterr().out
    kinds = [e["event"] for e in events(out)]
    for expected in ("login_failed", "login_succeeded", "refresh", "logout"):
        assert expected in kinds, f"{expected} not logged: {kinds}"
    assert PASSWORD not in out and "wrong password 1" not in out
    for token in tokens:
        assert token and token not in out
        # Not even a token's signature part.
        assert token.rsplit(".", 1)[1] not in out
