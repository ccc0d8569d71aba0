"""The key ring (docs/protocol.md §3, issue 2): keys made on first start and readable by the
owner only, a cacheable JWKS, and rotation that logs nobody out, including a rotation done by
``kizuna keys rotate`` in another process while the server runs."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from kizuna.services import open_keyring
from kizuna.settings import Settings
from tests.conftest import PASSWORD, Harness, LiveServer

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_owner_only(keys_dir: Path) -> None:
    assert mode(keys_dir) == 0o700
    files = sorted(keys_dir.iterdir())
    assert files, "no key files"
    for path in files:
        assert path.is_file(), path
        assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"
        assert not path.name.startswith("."), f"leftover temporary file {path.name}"


def kid_of(token: str) -> str:
    kid = jwt.get_unverified_header(token)["kid"]
    assert isinstance(kid, str)
    return kid


def exp_of(token: str) -> int:
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert isinstance(exp, int)
    return exp


async def jwks_kids(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


async def test_first_start_creates_owner_only_keys(harness: Harness, settings: Settings) -> None:
    keys_dir = settings.data_dir / "keys"
    assert_owner_only(keys_dir)
    signing = harness.services.keyring.signing_key
    assert (keys_dir / f"signing-{signing.kid}.pem").exists()
    assert any(p.name.startswith("refresh-") for p in keys_dir.iterdir())

    # A second start on the same data dir reuses the keys instead of making new ones.
    again = open_keyring(settings)
    assert again.signing_key.kid == signing.kid
    assert [k.kid for k in again.published()] == [signing.kid]

    # Keys made later (a rotation) are just as private.
    harness.services.keyring.rotate()
    assert_owner_only(keys_dir)


async def test_jwks_publishes_public_keys_only_and_is_cacheable(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> None:
    async for harness in make_harness(make_settings(access_token_ttl=60)):
        await harness.user()
        async with harness.client() as client:
            response = await client.get("/.well-known/jwks.json")
            await harness.login(client)
            token = client.cookies.get("access_token")
            assert token
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        cache = response.headers["cache-control"]
        match = re.fullmatch(r"public, max-age=(\d+)", cache)
        assert match, cache
        assert 0 < int(match.group(1)) <= 60  # never longer than an access token lives

        keys: list[dict[str, Any]] = response.json()["keys"]
        assert len(keys) == 1
        (key,) = keys
        assert key["kid"] == kid_of(token)
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert key["kty"] == "EC"
        assert key["crv"] == "P-256"
        assert not PRIVATE_JWK_MEMBERS & set(key), "private key material published"
        # The published key verifies the server's tokens.
        claims = jwt.decode(
            token, jwt.PyJWK(key).key, algorithms=["ES256"], audience="kizuna-web", issuer="kizuna"
        )
        assert claims["sid"]


@pytest.fixture
async def short_lived(
    make_settings: Callable[..., Settings],
    make_harness: Callable[[Settings], AsyncIterator[Harness]],
) -> AsyncIterator[Harness]:
    """Access tokens of 5 s and no leeway, so an old key's whole life fits in a test."""
    async for harness in make_harness(make_settings(access_token_ttl=5, clock_leeway=0)):
        yield harness


async def still_valid_at_end_of_life(harness: Harness, token: str) -> None:
    """Present ``token`` for the first time just before it expires, so no earlier verification
    is remembered: its key must still be published and accepted."""
    await asyncio.sleep(max(0.0, exp_of(token) - 0.4 - time.time()))
    async with harness.client() as bare:
        assert kid_of(token) in await jwks_kids(bare), "key unpublished before its token expired"
        info = await bare.get("/api/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert info.status_code == 200, f"token of {kid_of(token)} refused before its exp"


async def test_rotation_by_another_process_logs_nobody_out(short_lived: Harness) -> None:
    """``kizuna keys rotate`` runs in another process: the server learns of it only when it
    next re-reads the key ring (at most every 2 s) and may sign with the old key until then.
    Every token it issues, before, during and after that window, must keep working, at the API
    and for a verifier using the JWKS, until the token itself expires."""
    harness = short_lived
    await harness.user()
    late_checks: list[asyncio.Task[None]] = []

    def watch(token: str) -> None:
        late_checks.append(asyncio.create_task(still_valid_at_end_of_life(harness, token)))

    try:
        async with harness.client() as before:
            await harness.login(before)
            old_token = before.cookies.get("access_token")
            assert old_token
            old_kid = kid_of(old_token)
            watch(old_token)

            # The server has just read the key ring; then another process rotates it.
            harness.services.keyring.load()
            new_kid = open_keyring(harness.services.settings).rotate().kid
            rotated_at = time.time()
            assert new_kid != old_kid

            # Logins while the server may not have noticed yet.
            for _ in range(2):
                async with harness.client() as during:
                    await harness.login(during)
                    token = during.cookies.get("access_token")
                    assert token
                    watch(token)
                await asyncio.sleep(1.4)

            # The server notices within its reload interval; new tokens use the new key.
            await asyncio.sleep(max(0.0, rotated_at + 2.2 - time.time()))
            async with harness.client() as after:
                await harness.login(after)
                fresh = after.cookies.get("access_token")
                assert fresh
                assert kid_of(fresh) == new_kid
                assert await jwks_kids(after) == {old_kid, new_kid}

            # The user logged in before the rotation: their refresh token (MACed with the
            # refresh key of before the rotation) still works and now yields a new-key token.
            assert (await before.post("/auth/refresh")).status_code == 200
            renewed = before.cookies.get("access_token")
            assert renewed
            assert kid_of(renewed) == new_kid
            assert (await before.get("/api/userinfo")).status_code == 200

            await asyncio.gather(*late_checks)
    finally:
        for task in late_checks:
            task.cancel()

    # Once every old-key token has expired, the old key is unpublished (bounded wait) and a
    # token it signed is refused, even one verified (and remembered) before.
    async with harness.client() as bare:
        deadline = time.time() + 5
        while old_kid in await jwks_kids(bare):
            assert time.time() < deadline, "old key still published long after its tokens"
            await asyncio.sleep(0.2)
        assert await jwks_kids(bare) == {new_kid}
        gone = await bare.get("/api/userinfo", headers={"Authorization": f"Bearer {old_token}"})
        assert gone.status_code == 401
        assert gone.json()["code"] == "invalid_token"


def login_over_http(server: LiveServer, email: str = "ada@example.com") -> tuple[str, str]:
    """Log in on the live server; return (access token, refresh token) from Set-Cookie."""
    response = httpx.post(
        server.base_url + "/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.cookies["access_token"], response.cookies["refresh_token"]


def userinfo_over_http(server: LiveServer, token: str) -> httpx.Response:
    return httpx.get(
        server.base_url + "/api/userinfo", headers={"Authorization": f"Bearer {token}"}
    )


def live_jwks_kids(server: LiveServer) -> set[str]:
    response = httpx.get(server.base_url + "/.well-known/jwks.json")
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


def test_running_server_picks_up_cli_rotation(live_server: LiveServer) -> None:
    created = live_server.cli(
        "users", "create", "--email", "ada@example.com", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    old_access, old_refresh = login_over_http(live_server)
    old_kid = kid_of(old_access)

    rotated = live_server.cli("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    match = re.search(r"now signing with (\S+)", rotated.stdout)
    assert match, rotated.stdout
    new_kid = match.group(1)
    assert new_kid != old_kid

    # The server re-reads the key ring at most every 2 s (plus 1 s of JWKS memo).
    deadline = time.monotonic() + 4
    while new_kid not in live_jwks_kids(live_server):
        assert time.monotonic() < deadline, "server did not pick up the rotation"
        time.sleep(0.1)
    assert live_jwks_kids(live_server) == {old_kid, new_kid}

    new_access, _ = login_over_http(live_server)
    assert kid_of(new_access) == new_kid
    assert userinfo_over_http(live_server, new_access).status_code == 200

    # Logged in before the rotation: still logged in, and the refresh works.
    assert userinfo_over_http(live_server, old_access).status_code == 200
    refreshed = httpx.post(
        live_server.base_url + "/auth/refresh", headers={"Cookie": f"refresh_token={old_refresh}"}
    )
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.cookies["access_token"]
    assert kid_of(renewed) == new_kid
    assert userinfo_over_http(live_server, renewed).status_code == 200

    listed = live_server.cli("keys", "list")
    assert listed.returncode == 0, listed.stderr
    states = {row["kid"]: row["state"] for row in map(json.loads, listed.stdout.splitlines())}
    assert states == {old_kid: "published", new_kid: "signing"}
