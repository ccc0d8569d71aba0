"""Helpers for the contract tests: raw Set-Cookie parsing, problem+json checks, revocation."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# Things that must never reach a client: internals of Python, SQLAlchemy and the store.
LEAKS = (
    "Traceback",
    'File "',
    "sqlalchemy",
    "sqlite",
    "aiosqlite",
    "OperationalError",
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "kizuna.db",
    "/src/kizuna",
)


@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    # Attribute names lower-cased; flags (HttpOnly, Secure) map to "".
    attrs: dict[str, str] = field(default_factory=dict)

    def attr(self, name: str) -> str | None:
        return self.attrs.get(name.lower())

    def has_flag(self, name: str) -> bool:
        return name.lower() in self.attrs

    @property
    def max_age(self) -> int:
        raw = self.attr("max-age")
        assert raw is not None, f"{self.name}: no Max-Age"
        return int(raw)


def parse_set_cookie(header: str) -> SetCookie:
    pair, *parts = header.split(";")
    name, sep, value = pair.partition("=")
    assert sep, f"malformed Set-Cookie: {header!r}"
    attrs: dict[str, str] = {}
    for part in parts:
        key, _, val = part.strip().partition("=")
        if key:
            attrs[key.strip().lower()] = val.strip()
    return SetCookie(name=name.strip(), value=value.strip().strip('"'), attrs=attrs)


def set_cookies(response: httpx.Response) -> dict[str, SetCookie]:
    """Every cookie the response sets or deletes, by name; each name at most once."""
    out: dict[str, SetCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = parse_set_cookie(header)
        assert cookie.name not in out, f"{cookie.name} set twice in one response"
        out[cookie.name] = cookie
    return out


def assert_iso_utc(value: Any) -> datetime:
    assert isinstance(value, str) and ISO_UTC.fullmatch(value), f"not ISO 8601 UTC: {value!r}"
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None and moment.utcoffset() == UTC.utcoffset(None)
    return moment


def assert_no_leak(response: httpx.Response) -> None:
    text = response.text
    for leak in LEAKS:
        assert leak.lower() not in text.lower(), f"response leaks {leak!r}: {text[:300]}"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with the stable ``code``, and nothing internal in it."""
    assert response.status_code == status, (response.status_code, response.text)
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == "application/problem+json", media_type
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["code"] == code, body
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], body
    assert_no_leak(response)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def access_cookie(client: httpx.AsyncClient) -> str:
    value = client.cookies.get("access_token", path="/")
    assert value, "no access cookie in the jar"
    return value


async def assert_revoked_within(
    client: httpx.AsyncClient, token: str, *, seconds: float = 1.0
) -> None:
    """The access token (not expired) gets 401 invalid_token at the API within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get("/api/userinfo", headers=bearer(token))
        if response.status_code == 401:
            assert_problem(response, 401, "invalid_token")
            return
        assert response.status_code == 200, response.text
        assert time.monotonic() < deadline, f"token still accepted after {seconds} s"
        await asyncio.sleep(0.05)
