"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from kizuna import hot, problems, services
from kizuna.hot.endpoint import HotEndpoints
from kizuna.middleware import BodyLimit, StandardHeaders
from kizuna.routes import account, admin, auth, wellknown
from kizuna.settings import Settings, load_settings


class KizunaAPI(FastAPI):
    """FastAPI with the hot endpoints (``kizuna.hot``) in front of its whole middleware stack,
    not inside it, so that they also skip the layers FastAPI itself puts outermost (error
    middleware, telemetry); they apply the body limit and the standard headers themselves.
    Every other request goes to the full stack."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot_endpoints = hot.endpoints()

    def build_middleware_stack(self) -> ASGIApp:
        return HotEndpoints(super().build_middleware_stack(), self.hot_endpoints)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            hot.document(super().openapi(), self.hot_endpoints)
        return super().openapi()


def create_app(settings: Settings | None = None) -> KizunaAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services.build(settings)
        app.state.services = built
        await built.hasher.warm_up()
        try:
            yield
        finally:
            await built.close()

    app = KizunaAPI(
        title="Kizuna API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The schema maps the attack surface: served only when asked for (development).
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    problems.install(app)
    for router in (auth.router, account.router, admin.router, wellknown.router):
        app.include_router(router)
    # Added last = outermost: the standard headers also go on BodyLimit's own 413.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(StandardHeaders)
    return app
