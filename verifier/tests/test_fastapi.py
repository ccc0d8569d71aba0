"""``kizuna_verifier.fastapi`` in a host app that has its own lifespan and exception handler,
requests sent in process (httpx's ASGI transport), keys and feed from the fake Kizuna."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from kizuna_verifier import Verifier
from kizuna_verifier.fastapi import (
    CurrentUser,
    OptionalUser,
    current_user,
    install,
    require_roles,
)
from tests.conftest import FakeKizuna, Issuer, MakeVerifier


def host_app(events: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("host started")
        yield {"greeting": "hello"}
        events.append("host stopped")

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(HTTPException)
    async def worded(request: Request, exc: HTTPException) -> JSONResponse:
        # The host words every refusal its own way; the verifier's headers are kept.
        refusal = getattr(request.state, "kizuna_refusal", None)
        return JSONResponse(
            {"error": exc.detail, "why": refusal}, status_code=exc.status_code, headers=exc.headers
        )

    @app.get("/me")
    async def me(user: CurrentUser, request: Request) -> dict[str, Any]:
        return {"user": user.user_id, "roles": list(user.roles), "host": request.app.state.greeting}

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, Any]:
        return {"user": None if user is None else user.user_id}

    @app.get("/admin", dependencies=[Depends(require_roles("admin"))])
    async def admin() -> dict[str, str]:
        return {"ok": "admin"}

    @app.get("/both")
    async def both(user: Any = Depends(require_roles("admin", "editor"))) -> dict[str, str]:
        return {"user": user.user_id}

    return app


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=app)
        # The host lifespan's state comes through install's wrapper (the ASGI transport
        # does not hand lifespan state to requests: put it on the app).
        assert state is not None
        app.state.greeting = state["greeting"]
        async with httpx.AsyncClient(transport=transport, base_url="http://rs.test") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_routes_see_the_principal_and_refusals_are_http_exceptions(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    events: list[str] = []
    app = host_app(events)
    install(app, make_verifier())
    async with running(app) as client:
        ok = await client.get("/me", headers=bearer(issuer.token(sub="ada")))
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"user": "ada", "roles": ["editor"], "host": "hello"}

        missing = await client.get("/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json() == {"error": "unauthenticated", "why": "no_token"}

        for headers, why in (
            (bearer(issuer.token(iss="https://evil.test")), "wrong_issuer"),
            (bearer("not.a.token"), "malformed"),
            ({"Authorization": "Basic YWRhOnB3"}, "malformed_authorization"),
            ({"Authorization": "Bearer "}, "malformed_authorization"),
        ):
            refused = await client.get("/me", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            # The client learns "invalid_token"; the reason is for the host's logs only.
            assert refused.json() == {"error": "invalid_token", "why": why}

        # A token in a cookie is not looked at: resource servers take Bearer only.
        cookie = await client.get("/me", headers={"Cookie": f"access_token={issuer.token()}"})
        assert cookie.status_code == 401
    assert events == ["host started", "host stopped"]


async def test_optional_user(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    app = host_app([])
    install(app, make_verifier())
    async with running(app) as client:
        assert (await client.get("/maybe")).json() == {"user": None}
        signed = await client.get("/maybe", headers=bearer(issuer.token(sub="ada")))
        assert signed.json() == {"user": "ada"}
        bad = await client.get("/maybe", headers=bearer(issuer.token(exp=1)))
        assert bad.status_code == 401


async def test_require_roles(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    app = host_app([])
    install(app, make_verifier())
    async with running(app) as client:
        admin = bearer(issuer.token(roles=["admin", "editor"]))
        editor = bearer(issuer.token(roles=["editor"]))
        assert (await client.get("/admin", headers=admin)).status_code == 200
        assert (await client.get("/both", headers=admin)).json() == {"user": "user-1"}
        forbidden = await client.get("/admin", headers=editor)
        assert forbidden.status_code == 403
        assert forbidden.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
        assert forbidden.json() == {"error": "forbidden", "why": "missing_role"}
        assert (await client.get("/both", headers=editor)).status_code == 403
        assert (await client.get("/admin")).status_code == 401
    with pytest.raises(ValueError):
        require_roles("")


async def test_an_unreachable_issuer_is_503_with_retry_after(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    kizuna.jwks_status = 500
    app = host_app([])
    install(app, make_verifier())
    async with running(app) as client:
        response = await client.get("/me", headers=bearer(issuer.token()))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"error": "verifier_unavailable", "why": "unavailable:keys"}


async def test_the_lifespan_runs_the_feed_and_closes_the_verifier(
    issuer: Issuer, kizuna: FakeKizuna, make_verifier: MakeVerifier
) -> None:
    app = host_app([])
    verifier = make_verifier(feed=True)
    install(app, verifier)
    assert app.state.kizuna_verifier is verifier
    async with running(app) as client:
        token = issuer.token(sid="s")
        assert (await client.get("/me", headers=bearer(token))).status_code == 200
        kizuna.feed.add("session", session_id="s")
        assert verifier.revocation is not None
        for _ in range(100):
            if (await client.get("/me", headers=bearer(token))).status_code == 401:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("revocation not seen")
        assert verifier._own_client is not None
    # Closed with the app: no feed task, no HTTP client.
    assert verifier.revocation._task is None
    assert verifier._own_client is None


def test_install_once(make_verifier: MakeVerifier) -> None:
    app = FastAPI()
    install(app, make_verifier())
    with pytest.raises(RuntimeError, match="already"):
        install(app, make_verifier())


async def test_a_dependency_without_install_says_so(issuer: Issuer) -> None:
    app = FastAPI()
    scope = {"type": "http", "app": app, "headers": [(b"authorization", b"Bearer x.y.z")]}
    with pytest.raises(RuntimeError, match="install"):
        await current_user(Request(scope))


def test_install_changes_nothing_but_the_app(make_verifier: MakeVerifier) -> None:
    import jwt

    before = dict(jwt.api_jws._jws_global_obj._algorithms)
    app = FastAPI()
    handlers, middleware = dict(app.exception_handlers), list(app.user_middleware)
    verifier: Verifier = make_verifier()
    install(app, verifier)
    assert app.exception_handlers == handlers and app.user_middleware == middleware
    assert dict(jwt.api_jws._jws_global_obj._algorithms) == before
