"""The FastAPI application."""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from kizuna import log, problems, services
from kizuna.fastlane import RefreshFastLane, UserinfoFastLane
from kizuna.middleware import BodyLimit, StandardHeaders
from kizuna.routes import account, admin, auth, wellknown
from kizuna.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    log.configure(level=settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services.build(settings)
        app.state.services = built
        await built.hasher.warm_up()
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's sight, and collect less often, so full collections do not stall requests.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        # Store work runs in threads; a thread busy in Python keeps the GIL for up to the
        # switch interval (5 ms by default) while the event loop waits to answer requests.
        sys.setswitchinterval(0.0001)
        try:
            yield
        finally:
            await built.close()

    app = FastAPI(
        title="Kizuna API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    problems.install(app)
    for router in (auth.router, account.router, admin.router, wellknown.router):
        app.include_router(router)
    # Added last = outermost: the standard headers also go on BodyLimit's own 413.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(StandardHeaders)
    # Outermost of all: a signed-in GET /api/userinfo is answered before any of the above.
    app.add_middleware(UserinfoFastLane)
    app.add_middleware(RefreshFastLane)
    return app
