"""The operator's CLI (docs/protocol.md §8), run as operators run it: ``python -m kizuna ...`` in a
subprocess, configured only by ``KIZUNA_DATA_DIR`` (and ``KIZUNA_DATABASE_URL`` on PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from kizuna.settings import Settings
from tests.conftest import PASSWORD, Harness, store_env, store_url

ADMIN_PASSWORD = "a long admin passphrase"


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # Only the data dir configures it: no KIZUNA_* from the surrounding shell leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env["KIZUNA_DATA_DIR"] = str(data_dir)
    env["KIZUNA_LOG_LEVEL"] = "warning"
    env.update(store_env(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "kizuna", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_user(
    data_dir: Path, email: str, password: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return cli(
        data_dir, "users", "create", "--email", email, "--password-stdin", *extra, stdin=password
    )


def users(data_dir: Path) -> list[dict[str, Any]]:
    listed = cli(data_dir, "users", "list")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def keys(data_dir: Path) -> list[dict[str, Any]]:
    listed = cli(data_dir, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def table_names(database_url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(names())


def test_db_upgrade_on_a_fresh_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    database_url = store_url(data_dir, migrated=False)  # PostgreSQL: an empty database
    first = cli(data_dir, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "up to date" in first.stdout
    tables = table_names(Settings(data_dir=data_dir, database_url=database_url).db_url)
    assert {"users", "sessions", "refresh_tokens"} <= tables
    # Password hashes live in there: owner-only, like the keys.
    assert (data_dir.stat().st_mode & 0o777) == 0o700
    if database_url is None:
        assert ((data_dir / "kizuna.db").stat().st_mode & 0o777) == 0o600
    else:
        assert not (data_dir / "kizuna.db").exists()
    again = cli(data_dir, "db", "upgrade")  # idempotent
    assert again.returncode == 0, again.stderr


async def test_users_create_then_login_as_admin(harness: Harness, settings: Settings) -> None:
    data_dir = settings.data_dir
    made = create_user(
        data_dir, "Root@Example.com", ADMIN_PASSWORD + "\n", "--role", "admin", "--name", "Rita"
    )
    assert made.returncode == 0, made.stderr
    assert "created user" in made.stdout
    assert ADMIN_PASSWORD not in made.stdout + made.stderr

    (row,) = users(data_dir)
    assert row["email"] == "root@example.com"
    assert row["name"] == "Rita"
    assert row["roles"] == ["admin"]
    assert row["disabled"] is False
    assert row["created_at"].endswith("Z")
    assert set(row) == {"id", "email", "name", "roles", "disabled", "created_at"}

    # The account is real: it logs in with that password and has the admin role.
    async with harness.client() as client:
        login = await harness.login(client, "root@example.com", ADMIN_PASSWORD)
        assert login.json()["user"]["roles"] == ["admin"]
        assert login.json()["user"]["id"] == row["id"]
        admin = await client.get("/api/admin/users")
        assert admin.status_code == 200, admin.text


def test_users_create_refuses_weak_passwords(settings: Settings) -> None:
    data_dir = settings.data_dir
    for password, reason in (
        ("short1", "at least 8 characters"),
        ("iloveyou", "too common"),
    ):
        refused = create_user(data_dir, "weak@example.com", password + "\n")
        assert refused.returncode == 1, refused.stdout
        assert "weak password" in refused.stderr
        assert reason in refused.stderr
        assert password not in refused.stdout + refused.stderr
        assert "Traceback" not in refused.stderr
    missing = cli(data_dir, "users", "create", "--email", "weak@example.com", stdin="x\n")
    assert missing.returncode == 1
    assert "--password-stdin" in missing.stderr
    assert users(data_dir) == []


def test_users_create_refuses_duplicate_email(settings: Settings) -> None:
    data_dir = settings.data_dir
    assert create_user(data_dir, "ada@example.com", PASSWORD).returncode == 0
    for email in ("ada@example.com", "ADA@example.com "):
        again = create_user(data_dir, email, "another good passphrase")
        assert again.returncode == 1, again.stdout
        assert "exists already" in again.stderr
        assert "Traceback" not in again.stderr
    quiet = create_user(data_dir, "ada@example.com", PASSWORD, "--if-missing")
    assert quiet.returncode == 0, quiet.stderr

    listed = cli(data_dir, "users", "list")
    assert [json.loads(line)["email"] for line in listed.stdout.splitlines()] == ["ada@example.com"]
    # The list shows accounts, never their password hashes.
    assert "argon2" not in listed.stdout
    assert "password" not in listed.stdout


async def test_sessions_revoke_by_email_logs_the_user_out(
    harness: Harness, settings: Settings
) -> None:
    await harness.user()
    await harness.user("bob@example.com")
    async with (
        harness.client() as laptop,
        harness.client() as phone,
        harness.client() as bob,
    ):
        await harness.login(laptop)
        await harness.login(phone)
        await harness.login(bob, "bob@example.com")
        for client in (laptop, phone, bob):
            assert (await client.get("/api/userinfo")).status_code == 200

        revoked = cli(settings.data_dir, "sessions", "revoke", "--email", "ada@example.com")
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked 2 session(s)" in revoked.stdout

        # Another process revoked them: the server sees it within a second.
        deadline = time.monotonic() + 1.0
        while (response := await laptop.get("/api/userinfo")).status_code == 200:
            assert time.monotonic() < deadline, "revocation by the CLI not seen within 1 s"
            await asyncio.sleep(0.05)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"
        assert (await phone.get("/api/userinfo")).status_code == 401
        refresh = await phone.post("/auth/refresh")
        assert refresh.status_code == 401
        assert refresh.json()["code"] == "refresh_token_revoked"
        # Only that user.
        assert (await bob.get("/api/userinfo")).status_code == 200

        unknown = cli(settings.data_dir, "sessions", "revoke", "--email", "nobody@example.com")
        assert unknown.returncode == 1
        assert "no user" in unknown.stderr


def test_keys_rotate_and_list(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (first,) = keys(data_dir)  # first use makes the key ring
    assert first["state"] == "signing"
    assert first["alg"] == "ES256"

    rotated = cli(data_dir, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "now signing with" in rotated.stdout
    refused = cli(data_dir, "keys", "rotate", "--alg", "HS256")
    assert refused.returncode == 1
    assert "alg must be one of" in refused.stderr

    rsa = cli(data_dir, "keys", "rotate", "--alg", "RS256")
    assert rsa.returncode == 0, rsa.stderr
    # Retired keys stay published (their tokens may still be live); the newest signs.
    listed = keys(data_dir)
    assert [(k["alg"], k["state"]) for k in listed] == [
        ("ES256", "published"),
        ("ES256", "published"),
        ("RS256", "signing"),
    ]
    assert listed[0]["kid"] == first["kid"]
    assert f"now signing with {listed[1]['kid']} (ES256)" in rotated.stdout
    assert f"now signing with {listed[2]['kid']} (RS256)" in rsa.stdout
    for path in (data_dir / "keys").iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} readable by others"


def services(data_dir: Path) -> list[dict[str, Any]]:
    listed = cli(data_dir, "services", "list")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


async def test_services_create_list_and_revoke(harness: Harness, settings: Settings) -> None:
    data_dir = settings.data_dir
    made = cli(data_dir, "services", "create", "billing-api")
    assert made.returncode == 0, made.stderr
    # The secret alone on stdout, once; the words on stderr.
    (secret,) = made.stdout.splitlines()
    assert re.fullmatch(r"kzs_[A-Za-z0-9_-]{43}", secret), secret
    assert "will not be shown again" in made.stderr
    assert secret not in made.stderr

    again = cli(data_dir, "services", "create", "billing-api")
    assert again.returncode == 1, again.stdout
    assert "exists already" in again.stderr and "Traceback" not in again.stderr
    assert again.stdout == ""
    for bad in ("", ".dot-first", "has space", "ümlaut", "x" * 65):
        refused = cli(data_dir, "services", "create", bad)
        assert refused.returncode == 1, (bad, refused.stdout)
        assert "a name is" in refused.stderr and "Traceback" not in refused.stderr
    assert cli(data_dir, "services", "create", "search").returncode == 0

    listed = services(data_dir)
    assert [row["name"] for row in listed] == ["billing-api", "search"]
    for row in listed:
        assert set(row) == {"name", "created_at", "revoked_at"}
        assert row["created_at"].endswith("Z") and row["revoked_at"] is None
    # Never the secret, nor its hash.
    listing = cli(data_dir, "services", "list").stdout
    assert secret not in listing and hashlib.sha256(secret.encode()).hexdigest() not in listing

    async with harness.client() as client:
        headers = {"Authorization": f"Bearer {secret}"}
        assert (await client.get("/api/revocations", headers=headers)).status_code == 200
        revoked = cli(data_dir, "services", "revoke", "billing-api")
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked service credential billing-api" in revoked.stdout
        # Checked on every request: refused from the next one on.
        refused = await client.get("/api/revocations", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["code"] == "service_credential_invalid"

    twice = cli(data_dir, "services", "revoke", "billing-api")
    assert twice.returncode == 0 and "revoked already" in twice.stdout
    unknown = cli(data_dir, "services", "revoke", "no-such-service")
    assert unknown.returncode == 1 and "no service credential" in unknown.stderr
    rows = {row["name"]: row for row in services(data_dir)}
    assert rows["billing-api"]["revoked_at"].endswith("Z")
    assert rows["search"]["revoked_at"] is None


def test_a_bad_setting_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env.update(
        KIZUNA_DATA_DIR=str(tmp_path / "d"),
        KIZUNA_ACCESS_TOKEN_TTL="0",
        KIZUNA_TRUSTED_PROXIES="not-an-address",
    )
    done = subprocess.run(
        [sys.executable, "-m", "kizuna", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: KIZUNA_ACCESS_TOKEN_TTL:")
    assert lines[1].startswith("error: KIZUNA_TRUSTED_PROXIES:")
    assert len(lines) == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "d").exists()
