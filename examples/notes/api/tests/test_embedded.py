"""The second way, tried over HTTP: the notes API with Kizuna embedded (notes_api.embedded),
served by uvicorn on a free loopback port from the installed packages. One app signs users in
and serves their notes; a revoked session is refused by the notes routes within a second."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "NOTES_"))}
    env |= {"KIZUNA_DATA_DIR": str(data / "kizuna"), "KIZUNA_ALLOW_SIGNUP": "true",
            "NOTES_DB": str(data / "notes.db")}
    subprocess.run([BIN / "kizuna", "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    log = open(data / "server.log", "wb")  # noqa: SIM115 (kept open while it runs)
    proc = subprocess.Popen(
        [BIN / "uvicorn", "notes_api.embedded:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data / "server.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def sign_up(url: str, email: str) -> str:
    res = httpx.post(f"{url}/auth/register",
                     json={"email": email, "password": "embedded notes pass 1", "name": "E"})
    assert res.status_code == 201, res.text
    return res.cookies["access_token"]


def test_one_app_signs_in_and_serves_notes(server: str) -> None:
    token = sign_up(server, "embedded-a@example.com")
    bearer = {"authorization": f"Bearer {token}"}
    assert httpx.get(f"{server}/notes").status_code == 401
    made = httpx.post(f"{server}/notes", json={"title": "Embedded", "body": "one process"},
                      headers=bearer)
    assert made.status_code == 201
    listed = httpx.get(f"{server}/notes", headers=bearer).json()
    assert [n["title"] for n in listed["notes"]] == ["Embedded"]
    assert httpx.get(f"{server}/api/userinfo", headers=bearer).json()["email"] == (
        "embedded-a@example.com"
    )
    assert httpx.get(f"{server}/admin/totals", headers=bearer).status_code == 403


def test_a_revoked_session_is_refused_within_a_second(server: str) -> None:
    token = sign_up(server, "embedded-b@example.com")
    bearer = {"authorization": f"Bearer {token}"}
    assert httpx.get(f"{server}/notes", headers=bearer).status_code == 200
    assert httpx.post(f"{server}/auth/logout", headers=bearer).status_code == 204
    ended = time.monotonic()
    while httpx.get(f"{server}/notes", headers=bearer).status_code != 401:
        assert time.monotonic() - ended < 1.0, "still accepted a second after logout"
        time.sleep(0.02)
