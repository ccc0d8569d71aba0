"""The FastAPI application."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from kizuna import problems
from kizuna.embedding import Kizuna
from kizuna.hot.endpoint import HotEndpoints
from kizuna.middleware import BodyLimit, StandardHeaders
from kizuna.settings import Settings


class KizunaAPI(FastAPI):
    """FastAPI with the hot endpoints (``kizuna.hot``) in front of its whole middleware stack,
    not inside it, so that they also skip the layers FastAPI itself puts outermost (error
    middleware, telemetry); they apply the body limit and the standard headers themselves.
    Every other request goes to the full stack."""

    def __init__(self, kizuna: Kizuna, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot_endpoints = kizuna.hot_endpoints

    def build_middleware_stack(self) -> ASGIApp:
        return HotEndpoints(super().build_middleware_stack(), self.hot_endpoints)


def create_app(settings: Settings | None = None) -> KizunaAPI:
    """Kizuna's own app: the embedding (``kizuna.embedding``) in an app of its own."""
    kizuna = Kizuna(settings)
    app = KizunaAPI(
        kizuna,
        title="Kizuna API",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        # The schema maps the attack surface: served only when asked for (development).
        openapi_url="/openapi.json" if kizuna.settings.api_docs else None,
    )
    kizuna.install(app, hot_endpoints=False)
    problems.install(app)
    # Added last = outermost: the standard headers also go on BodyLimit's own 413.
    app.add_middleware(BodyLimit, max_bytes=kizuna.settings.max_body_bytes)
    app.add_middleware(StandardHeaders)
    return app
