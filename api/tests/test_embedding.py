"""Kizuna inside a host FastAPI app with its own routes, middleware, lifespan and error
handlers (``kizuna.embedding``): the host keeps all of them; its routes get Kizuna's users with
the same checks and the same revocation bound as Kizuna's own routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kizuna import accounts, migrate
from kizuna.deps import Principal
from kizuna.embedding import CurrentUser, Kizuna, OptionalUser, require_roles
from kizuna.settings import Settings
from tests.conftest import PASSWORD

EMAIL = "ada@example.com"
AdminUser = Annotated[Principal, Depends(require_roles("admin"))]


class Note(BaseModel):
    text: str


def host_app(kizuna: Kizuna, events: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("host started")
        app.state.greeting = "hello"
        yield
        events.append("host stopped")

    app = FastAPI(title="Notes", lifespan=lifespan)

    @app.exception_handler(HTTPException)
    async def host_errors(_request: Request, exc: HTTPException) -> Response:
        return JSONResponse(
            {"host_error": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.middleware("http")
    async def stamp(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        response = await call_next(request)
        response.headers["x-host"] = "notes"
        return response

    kizuna.install(app)

    @app.get("/api/notes")
    async def notes(user: CurrentUser, request: Request) -> dict[str, Any]:
        return {"owner": user.user_id, "greeting": request.app.state.greeting}

    @app.get("/hello")
    async def hello(user: OptionalUser) -> dict[str, Any]:
        return {"signed_in": user is not None}

    @app.post("/api/notes")
    async def add_note(note: Note, user: CurrentUser) -> dict[str, Any]:
        return {"owner": user.user_id, "text": note.text}

    @app.get("/api/reports")
    async def reports(
        admin: Annotated[Principal, Depends(require_roles("admin"))],
    ) -> dict[str, Any]:
        return {"admin": admin.user_id}

    return app


async def started(tmp_path: Path) -> tuple[FastAPI, Kizuna, list[str], Any]:
    settings = Settings(data_dir=tmp_path / "data")
    migrate.upgrade(settings)
    kizuna = Kizuna(settings)
    events: list[str] = []
    app = host_app(kizuna, events)
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    return app, kizuna, events, context


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://notes.test")


async def test_the_host_signs_in_with_kizuna_and_keeps_its_own_ways(tmp_path: Path) -> None:
    app, _, events, context = await started(tmp_path)
    try:
        assert events == ["host started"]
        user = await accounts.register(app.state.kizuna, email=EMAIL, password=PASSWORD, name="Ada")
        async with client(app) as browser:
            anonymous = await browser.get("/api/notes")
            assert anonymous.status_code == 401
            assert anonymous.json() == {"host_error": "unauthenticated"}  # the host's format
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert (await browser.get("/hello")).json() == {"signed_in": False}
            login = await browser.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
            assert login.status_code == 200 and login.headers["x-host"] == "notes"
            notes = await browser.get("/api/notes")
            assert notes.status_code == 200, notes.text
            assert notes.json() == {"owner": user.id, "greeting": "hello"}
            assert notes.headers["x-host"] == "notes"
            assert (await browser.get("/hello")).json() == {"signed_in": True}
            info = await browser.get("/api/userinfo")
            assert info.status_code == 200 and info.json()["email"] == EMAIL
            # Kizuna's own routes answer in Kizuna's words; the host's unknown paths in its own.
            bad = await browser.post("/auth/register", json={"email": 1})
            assert bad.headers["content-type"] == "application/problem+json"
            assert bad.json()["code"] == "validation_error"
            unknown = await browser.get("/nowhere")  # FastAPI's own answer, as before Kizuna
            assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
    finally:
        await context.__aexit__(None, None, None)
    assert events == ["host started", "host stopped"]


async def test_a_revoked_session_is_refused_by_the_hosts_routes_within_a_second(
    tmp_path: Path,
) -> None:
    app, _, _, context = await started(tmp_path)
    try:
        await accounts.register(app.state.kizuna, email=EMAIL, password=PASSWORD, name="Ada")
        async with client(app) as browser, client(app) as thief:
            await browser.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
            access = browser.cookies.get("access_token")
            bearer = {"Authorization": f"Bearer {access}"}
            assert (await thief.get("/api/notes", headers=bearer)).status_code == 200
            assert (await browser.post("/auth/logout")).status_code == 204
            started_at = time.monotonic()
            while (await thief.get("/api/notes", headers=bearer)).status_code == 200:
                assert time.monotonic() - started_at < 1.0, "revocation not seen within 1 s"
                await asyncio.sleep(0.05)
            refused = await thief.get("/api/notes", headers=bearer)
            assert refused.json() == {"host_error": "invalid_token"}
            assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    finally:
        await context.__aexit__(None, None, None)


async def test_roles_are_required_as_kizuna_requires_them(tmp_path: Path) -> None:
    app, _, _, context = await started(tmp_path)
    try:
        services = app.state.kizuna
        await accounts.register(services, email=EMAIL, password=PASSWORD, name="Ada")
        root = await accounts.register(
            services, email="root@example.com", password=PASSWORD, name="Root", roles=("admin",)
        )
        async with client(app) as ada, client(app) as admin:
            await ada.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
            await admin.post(
                "/auth/login", json={"email": "root@example.com", "password": PASSWORD}
            )
            refused = await ada.get("/api/reports")
            assert refused.status_code == 403 and refused.json() == {"host_error": "forbidden"}
            allowed = await admin.get("/api/reports")
            assert allowed.status_code == 200 and allowed.json() == {"admin": root.id}
    finally:
        await context.__aexit__(None, None, None)


async def test_the_hosts_openapi_document_has_both(tmp_path: Path) -> None:
    app, _, _, context = await started(tmp_path)
    try:
        paths = app.openapi()["paths"]
        assert {"/api/notes", "/hello", "/auth/login", "/auth/refresh", "/api/userinfo"} <= set(
            paths
        )
        assert "/api/admin/users" in paths and "/.well-known/jwks.json" in paths
        assert app.openapi()["info"]["title"] == "Notes"
        # Kizuna's routes declare their problems; the host's routes keep FastAPI's own 422.
        sessions = paths["/api/sessions"]["get"]["responses"]
        assert "application/problem+json" in sessions["401"]["content"]
        host_422 = paths["/api/notes"]["post"]["responses"]["422"]["content"]["application/json"]
        ref = host_422["schema"]["$ref"].rsplit("/", 1)[1]
        assert ref in app.openapi()["components"]["schemas"]
    finally:
        await context.__aexit__(None, None, None)
