"""Fuzzing the HTTP API against its own OpenAPI document (issue 8, "Fuzzing").

schemathesis generates requests for every operation of the schema that ``create_app`` builds
(the app object's schema, not ``/openapi.json``), both valid ones and ones that break the
schema, and sends them in process to the real app on a real SQLite store. Every answer must be
no server error (5xx) and must be what the schema documents: its status code, its content type,
its body and its headers. Three callers: no credentials at all, a user presenting a Bearer
access token, and an admin presenting the cookies a browser holds (access and refresh, kept up
to date from each answer's Set-Cookie, so refresh and logout are exercised for real).

The CI run is bounded (``KIZUNA_FUZZ_EXAMPLES`` examples per operation and caller, 25 by
default); a longer run is ``KIZUNA_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_schema.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kizuna import migrate
from kizuna.app import KizunaAPI, create_app
from kizuna.settings import Settings
from tests.conftest import PASSWORD, _harness, store_url
from tests.fuzzing import EXAMPLES

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]

USER_EMAIL = "fuzz-user@example.com"
ADMIN_EMAIL = "fuzz-admin@example.com"
ORIGIN = f"http://{asgi.HOST}"


@dataclass
class Caller:
    """Who sends the generated requests, and how it presents its credentials."""

    name: str
    email: str | None = None
    via: str = "none"  # "none", "bearer" or "cookies"
    cookies: dict[str, str] = field(default_factory=dict)

    def sign_in(self, app: KizunaAPI) -> None:
        if self.email is None:
            return
        with asgi.get_client(app) as client:
            response = client.post(
                f"{ORIGIN}/auth/login", json={"email": self.email, "password": PASSWORD}
            )
        assert response.status_code == 200, response.text
        self.cookies = {cookie.name: str(cookie.value) for cookie in response.cookies}

    def credentials(self) -> dict[str, Any]:
        if self.via == "bearer":
            return {"headers": {"Authorization": f"Bearer {self.cookies['access_token']}"}}
        if self.via == "cookies":
            return {"cookies": dict(self.cookies)}
        return {}

    def after(self, app: KizunaAPI, response: schemathesis.Response) -> None:
        """Keep the jar as a browser would; sign in again once the session has ended (the
        fuzzer may log out, change nothing it cannot, or revoke its own session)."""
        if self.email is None:
            return
        if self.via == "cookies":
            for name, morsel in _set_cookies(response).items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if response.status_code == 401 or "access_token" not in self.cookies:
            self.sign_in(app)


def _set_cookies(response: schemathesis.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for value in response.headers.get("set-cookie", []):
        jar.load(value)
    return jar


@dataclass
class Target:
    app: KizunaAPI
    client: requests.Session
    callers: dict[str, Caller]


def _prepare(data_dir: Path) -> Settings:
    settings = Settings(
        data_dir=data_dir,
        database_url=store_url(data_dir),
        log_json=True,
        log_level="critical",
        # A whole fuzz run comes from one address and guesses passwords all along: with the
        # default limits it would lock its own accounts out after ten guesses.
        login_fail_per_account=1_000_000,
        login_fail_per_ip=1_000_000,
        signup_per_ip=1_000_000,
        access_token_ttl=3600,
    )
    migrate.upgrade(settings)

    async def seed() -> None:
        async for harness in _harness(settings):
            await harness.user(USER_EMAIL, name="Fuzz")
            await harness.user(ADMIN_EMAIL, name="Root", roles=("admin",))

    asyncio.run(seed())
    return settings


# The schema of the app object itself; loading it needs no data dir and no running app.
schema = schemathesis.openapi.from_dict(create_app(Settings(log_level="critical")).openapi())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    settings = _prepare(tmp_path_factory.mktemp("fuzz") / "data")
    app = create_app(settings)
    callers = {
        "anonymous": Caller("anonymous"),
        "user": Caller("user", USER_EMAIL, "bearer"),
        "admin": Caller("admin", ADMIN_EMAIL, "cookies"),
    }
    for caller in callers.values():
        caller.sign_in(app)  # the first request starts the app (its lifespan) in schemathesis
    with asgi.get_client(app) as client:  # in process, to this very app
        yield Target(app, client, callers)
    asgi.shutdown_lifespans()


# What each operation can answer besides its success, from reading the routes: the fuzzer
# reaches most of these, and any it reaches must be in the schema.
ANSWERS = {
    ("POST", "/auth/register"): {400, 403, 409, 413, 422, 429, 503},
    ("POST", "/auth/login"): {400, 401, 413, 422, 429, 503},
    ("POST", "/auth/refresh"): {401, 503},
    ("POST", "/auth/logout"): {503},
    ("POST", "/auth/logout-all"): {401, 503},
    ("POST", "/auth/password"): {400, 401, 413, 422, 429, 503},
    ("GET", "/api/userinfo"): {401, 503},
    ("GET", "/api/sessions"): {401, 503},
    ("DELETE", "/api/sessions/{session_id}"): {401, 404, 503},
    ("GET", "/api/admin/users"): {401, 403, 422, 503},
    ("GET", "/api/admin/users/{user_id}"): {401, 403, 404, 503},
    ("GET", "/api/admin/users/{user_id}/events"): {401, 403, 404, 422, 503},
    ("PATCH", "/api/admin/users/{user_id}"): {400, 401, 403, 404, 413, 422, 503},
    ("GET", "/api/revocations"): {401, 422, 503},
    ("GET", "/readyz"): {503},
}


@pytest.mark.parametrize(("method", "path"), sorted(ANSWERS))
def test_every_problem_an_operation_answers_is_documented_as_problem_json(
    method: str, path: str
) -> None:
    operation = create_app(Settings(log_level="critical")).openapi()["paths"][path][method.lower()]
    documented = {int(status) for status in operation["responses"] if int(status) >= 400}
    missing = ANSWERS[(method, path)] - documented
    assert not missing, f"{method} {path} does not document {sorted(missing)}"
    for status in ANSWERS[(method, path)]:
        content = operation["responses"][str(status)]["content"]
        assert list(content) == ["application/problem+json"], (status, content)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def send_and_validate(case: schemathesis.Case, target: Target, who: str) -> None:
    caller = target.callers[who]
    response = case.call(base_url=ORIGIN, session=target.client, **caller.credentials())
    try:
        case.validate_response(response, checks=CHECKS)
    finally:
        caller.after(target.app, response)


@schema.parametrize()
@FUZZ
def test_anonymous_requests_get_documented_answers_and_no_server_error(
    case: schemathesis.Case, target: Target
) -> None:
    send_and_validate(case, target, "anonymous")


@schema.parametrize()
@FUZZ
def test_a_user_with_a_bearer_token_gets_documented_answers_and_no_server_error(
    case: schemathesis.Case, target: Target
) -> None:
    send_and_validate(case, target, "user")


@schema.parametrize()
@FUZZ
def test_an_admin_with_session_cookies_gets_documented_answers_and_no_server_error(
    case: schemathesis.Case, target: Target
) -> None:
    send_and_validate(case, target, "admin")
