"""Kizuna inside another FastAPI app :

    from fastapi import FastAPI
    from kizuna.embedding import Kizuna

    kizuna = Kizuna()                    # settings from KIZUNA_* variables, or Kizuna(settings)
    app = FastAPI(lifespan=my_lifespan)  # the host app, as it was
    kizuna.install(app)                  # /auth/*, /api/userinfo, /api/sessions, admin,
                                         # /api/revocations, JWKS

    @app.get("/api/notes")
    async def notes(user: CurrentUser) -> list[Note]: ...     # from kizuna.embedding

``install`` adds Kizuna's routers (whose routes answer their own errors, see ``routing.py``),
the hot endpoints as a middleware of the host app, Kizuna's start-up and shut-down around the
host's lifespan, and Kizuna's operations in the host's OpenAPI document. It changes nothing
process-wide and registers no exception handler: the host's handlers, middleware and lifespan
keep working. The dependencies refuse with ``HTTPException`` (401 with ``WWW-Authenticate``,
403, 503), which the host's handlers format as it formats its own errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.middleware import Middleware

from kizuna import hot, problems, services
from kizuna.deps import Principal, presented_access_token, principal_from_token
from kizuna.errors import CATALOGUE
from kizuna.hot.endpoint import Endpoint, HotEndpoints
from kizuna.problems import Problem, is_store_failure
from kizuna.purge import PeriodicPurge
from kizuna.routes import account, admin, auth, revocations, wellknown
from kizuna.settings import Settings, load_settings

ROUTERS = (auth.router, account.router, admin.router, revocations.router, wellknown.router)


def _refusal(problem: Problem) -> HTTPException:
    entry = CATALOGUE[problem.code]
    headers = {**dict(entry.headers), **problem.headers}
    return HTTPException(entry.status, detail=problem.code.value, headers=headers or None)


class Kizuna:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.hot_endpoints: tuple[Endpoint, ...] = hot.endpoints()

    # -- mounting -------------------------------------------------------------------------

    def install(self, app: FastAPI, *, hot_endpoints: bool = True) -> None:
        """``hot_endpoints=False``: the caller puts ``self.hot_endpoints`` in front itself
        (Kizuna's own app does, outermost: ``app.KizunaAPI``)."""
        for router in ROUTERS:
            app.include_router(router)
        if hot_endpoints:
            # Innermost of the host's middleware, whenever the host adds its own: they all
            # see the hot endpoints' requests and answers, as they see every other route's.
            app.user_middleware.append(Middleware(HotEndpoints, endpoints=self.hot_endpoints))
        host_lifespan: Callable[[Any], AbstractAsyncContextManager[Any]] = (
            app.router.lifespan_context
        )

        @asynccontextmanager
        async def lifespan(started: Any) -> AsyncIterator[Any]:
            async with self.lifespan(started), host_lifespan(started) as state:
                yield state

        app.router.lifespan_context = lifespan
        host_openapi = app.openapi
        documented: list[dict[str, Any]] = []

        def openapi() -> dict[str, Any]:
            schema = host_openapi()
            if not any(schema is done for done in documented):
                hot.document(schema, self.hot_endpoints)
                problems.document(app, schema)
                documented[:] = [schema]
            return schema

        app.openapi = openapi  # type: ignore[method-assign]

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        built = services.build(self.settings)
        app.state.kizuna = built
        await built.hasher.warm_up()
        purger = PeriodicPurge(built)  # store hygiene, every KIZUNA_PURGE_INTERVAL
        purger.start()
        try:
            yield
        finally:
            await purger.stop()
            await built.close()


# -- dependencies for the host's routes ---------------------------------------------------


async def _principal(request: Request) -> Principal:
    kizuna_services = request.app.state.kizuna
    try:
        token = presented_access_token(request, kizuna_services)
        return await principal_from_token(kizuna_services, token)
    except Problem as problem:
        raise _refusal(problem) from None
    except Exception as exc:
        if is_store_failure(exc):
            raise HTTPException(
                503, detail="store_unavailable", headers={"Retry-After": "1"}
            ) from exc
        raise


async def current_user(request: Request) -> Principal:
    """The signed-in user (Bearer or the access cookie): the same checks, and the same
    revocation bound (within a second), as Kizuna's own routes."""
    return await _principal(request)


async def optional_user(request: Request) -> Principal | None:
    """The signed-in user, or None when no token was presented at all (a bad one is still
    refused)."""
    if presented_access_token(request, request.app.state.kizuna) is None:
        return None
    return await _principal(request)


def require_roles(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the signed-in user, who must hold every role, in the token and in the
    account as it is now (a demotion bites within a second)."""

    async def check(request: Request) -> Principal:
        principal = await _principal(request)
        if not all(principal.holds(role) for role in roles):
            raise HTTPException(403, detail="forbidden")
        return principal

    return check


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
