"""The verifier against the real thing: ``kizuna serve`` (this repository's ``kizuna`` command,
SQLite in a temporary directory, on a free loopback port), and a FastAPI resource server using
the package (requests sent in process). Kizuna is driven only over HTTP and through its CLI:
nothing of the server is imported here."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI

from kizuna_verifier import RevocationFeed, Verifier
from kizuna_verifier.fastapi import CurrentUser, install, require_roles

ISSUER = "https://auth.kizuna.test"
AUDIENCE = "notes-api"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Kizuna:
    base_url: str
    env: dict[str, str]
    binary: Path
    credential: str

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    def verifier(self, *, credential: str | None = None, feed: bool = True) -> Verifier:
        revocation = (
            RevocationFeed(
                url=self.base_url + "/api/revocations", credential=credential or self.credential
            )
            if feed
            else None
        )
        return Verifier(
            issuer=ISSUER,
            audience=AUDIENCE,
            jwks_url=self.base_url + "/.well-known/jwks.json",
            revocation=revocation,
        )


@pytest.fixture(scope="module")
def kizuna(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kizuna]:
    binary = Path(os.environ.get("KIZUNA_BIN", Path(sys.executable).with_name("kizuna")))
    if not binary.exists():
        pytest.fail(f"no kizuna command at {binary}: run scripts/test-verifier.sh (or KIZUNA_BIN)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env.update(
        KIZUNA_DATA_DIR=str(tmp_path_factory.mktemp("kizuna") / "data"),
        KIZUNA_LOG_LEVEL="warning",
        KIZUNA_ISSUER=ISSUER,
        KIZUNA_AUDIENCE=AUDIENCE,
        KIZUNA_COOKIE_SECURE="false",
    )
    server = Kizuna("", env, binary, credential="")
    server.cli("db", "upgrade")
    for email, roles in (
        ("root@example.com", ["admin"]),
        ("ada@example.com", ["editor"]),
        ("bob@example.com", ["editor"]),
    ):
        role_args = [arg for role in roles for arg in ("--role", role)]
        server.cli(
            "users", "create", "--email", email, "--password-stdin", *role_args, stdin=PASSWORD
        )
    server.credential = server.cli("services", "create", "resource-tests").stdout.strip()
    port = free_port()
    server.base_url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(server.base_url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "kizuna did not start"
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Login:
    user_id: str
    session_id: str
    token: str


async def login(kizuna: Kizuna, email: str) -> Login:
    async with httpx.AsyncClient(base_url=kizuna.base_url, timeout=20) as client:
        response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    # The access token is the access_token cookie's value (docs/protocol.md §2).
    token = next(
        line.split(";", 1)[0].split("=", 1)[1]
        for line in response.headers.get_list("set-cookie")
        if line.startswith("access_token=")
    )
    body = response.json()
    return Login(body["user"]["id"], body["session_id"], token)


def resource_server(verifier: Verifier) -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"user_id": user.user_id, "session_id": user.session_id, "roles": list(user.roles)}

    @app.get("/edit", dependencies=[Depends(require_roles("editor"))])
    async def edit() -> dict[str, bool]:
        return {"edited": True}

    install(app, verifier)
    return app


@asynccontextmanager
async def serving(verifier: Verifier) -> AsyncIterator[httpx.AsyncClient]:
    app = resource_server(verifier)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notes.test") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_within(
    client: httpx.AsyncClient, path: str, token: str, status: int, seconds: float = 1.0
) -> float:
    """Seconds until ``path`` answers ``status`` for ``token``; fails after ``seconds``."""
    began = time.monotonic()
    while True:
        response = await client.get(path, headers=bearer(token))
        if response.status_code == status:
            return time.monotonic() - began
        assert response.status_code == 200, response.text
        assert time.monotonic() - began < seconds, f"{path} still {response.status_code}"
        await asyncio.sleep(0.02)


async def test_a_kizuna_token_is_accepted_and_a_forged_one_refused(kizuna: Kizuna) -> None:
    ada = await login(kizuna, "ada@example.com")
    async with serving(kizuna.verifier()) as client:
        me = await client.get("/me", headers=bearer(ada.token))
        assert me.status_code == 200, me.text
        assert me.json() == {
            "user_id": ada.user_id,
            "session_id": ada.session_id,
            "roles": ["editor"],
        }
        assert (await client.get("/edit", headers=bearer(ada.token))).status_code == 200

        # Forged: the same claims and Kizuna's own kid, signed with a key of ours.
        claims = jwt.decode(ada.token, options={"verify_signature": False})
        kid = jwt.get_unverified_header(ada.token)["kid"]
        ours = ec.generate_private_key(ec.SECP256R1())
        for headers, payload in (
            ({"kid": kid, "typ": "at+jwt"}, claims | {"roles": ["editor", "admin"]}),
            ({"kid": "made-up", "typ": "at+jwt"}, claims),
        ):
            forged = jwt.encode(payload, ours, algorithm="ES256", headers=headers)
            refused = await client.get("/me", headers=bearer(forged))
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert (await client.get("/me")).status_code == 401


async def test_a_logout_is_refused_within_a_second(kizuna: Kizuna) -> None:
    ada = await login(kizuna, "ada@example.com")
    async with serving(kizuna.verifier()) as client:
        assert (await client.get("/me", headers=bearer(ada.token))).status_code == 200
        async with httpx.AsyncClient(base_url=kizuna.base_url) as api:
            assert (await api.post("/auth/logout", headers=bearer(ada.token))).status_code == 204
        await status_within(client, "/me", ada.token, 401)


async def test_a_session_revoked_by_the_operator_is_refused_within_a_second(
    kizuna: Kizuna,
) -> None:
    ada = await login(kizuna, "ada@example.com")
    other = await login(kizuna, "ada@example.com")
    async with serving(kizuna.verifier()) as client:
        assert (await client.get("/me", headers=bearer(ada.token))).status_code == 200
        await asyncio.to_thread(kizuna.cli, "sessions", "revoke", "--id", ada.session_id)
        await status_within(client, "/me", ada.token, 401)
        # Only that session.
        assert (await client.get("/me", headers=bearer(other.token))).status_code == 200


async def test_a_demotion_is_403_within_a_second(kizuna: Kizuna) -> None:
    root = await login(kizuna, "root@example.com")
    ada = await login(kizuna, "ada@example.com")
    async with (
        serving(kizuna.verifier()) as client,
        httpx.AsyncClient(base_url=kizuna.base_url, headers=bearer(root.token)) as admin,
    ):
        assert (await client.get("/edit", headers=bearer(ada.token))).status_code == 200
        demoted = await admin.patch(f"/api/admin/users/{ada.user_id}", json={"roles": []})
        assert demoted.status_code == 200, demoted.text
        try:
            await status_within(client, "/edit", ada.token, 403)
            # Still signed in, without the role.
            me = await client.get("/me", headers=bearer(ada.token))
            assert me.status_code == 200 and me.json()["roles"] == []
        finally:
            restored = await admin.patch(
                f"/api/admin/users/{ada.user_id}", json={"roles": ["editor"]}
            )
            assert restored.status_code == 200


async def test_a_disabled_user_is_refused_within_a_second(kizuna: Kizuna) -> None:
    root = await login(kizuna, "root@example.com")
    bob = await login(kizuna, "bob@example.com")
    async with (
        serving(kizuna.verifier()) as client,
        httpx.AsyncClient(base_url=kizuna.base_url, headers=bearer(root.token)) as admin,
    ):
        assert (await client.get("/me", headers=bearer(bob.token))).status_code == 200
        disabled = await admin.patch(f"/api/admin/users/{bob.user_id}", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
        await status_within(client, "/me", bob.token, 401)


async def test_without_the_feed_a_token_lives_until_it_expires(kizuna: Kizuna) -> None:
    """Revocation is opt-in: without the feed the verifier cannot know of a logout."""
    ada = await login(kizuna, "ada@example.com")
    async with httpx.AsyncClient(base_url=kizuna.base_url) as api:
        assert (await api.post("/auth/logout", headers=bearer(ada.token))).status_code == 204
    async with serving(kizuna.verifier(feed=False)) as client:
        assert (await client.get("/me", headers=bearer(ada.token))).status_code == 200
    async with serving(kizuna.verifier()) as client:
        assert (await client.get("/me", headers=bearer(ada.token))).status_code == 401


async def test_a_revoked_service_credential_fails_closed(kizuna: Kizuna) -> None:
    made = await asyncio.to_thread(kizuna.cli, "services", "create", "short-lived")
    credential = made.stdout.strip()
    ada = await login(kizuna, "ada@example.com")
    async with serving(kizuna.verifier(credential=credential)) as client:
        assert (await client.get("/me", headers=bearer(ada.token))).status_code == 200
        await asyncio.to_thread(kizuna.cli, "services", "revoke", "short-lived")
        began = time.monotonic()
        while (response := await client.get("/me", headers=bearer(ada.token))).status_code == 200:
            assert time.monotonic() - began < 2.0, "still accepted"
            await asyncio.sleep(0.05)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
