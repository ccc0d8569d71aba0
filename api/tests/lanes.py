"""Helpers for the tests of the fast lanes: the same app without one lane (the reference
answers), and routes made to fail with a telltale answer (so any other answer is a lane's)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from kizuna.app import create_app
from kizuna.errors import Code
from kizuna.problems import Problem
from tests.conftest import BASE_URL, Harness


def app_without(harness: Harness, lane: Any) -> FastAPI:
    """The same app without ``lane``, on the same services."""
    app = create_app(harness.services.settings)
    app.lanes.remove(lane)
    app.state.services = harness.services
    return app


def client_without(harness: Harness, lane: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app_without(harness, lane))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


ROUTE_USED = "The FastAPI route answered."


def fail_routes_through(harness: Harness, dependency: Any) -> None:
    """Every route that depends on ``dependency`` now answers a 500 saying ``ROUTE_USED``."""

    async def nope() -> None:
        raise Problem(Code.internal_error, detail=ROUTE_USED)

    harness.app.dependency_overrides[dependency] = nope


def cookie_attributes(response: httpx.Response) -> dict[str, str]:
    """Each cookie set, by name, with everything but its value."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        out[name] = rest.split(";", 1)[1]
    return out
