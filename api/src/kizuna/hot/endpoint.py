"""What a hot endpoint is, and the layer that dispatches to them (outermost in the app)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kizuna.errors import Code
from kizuna.middleware import read_limited_body, with_standard_headers
from kizuna.problems import answer_for, internal_error, problem_response
from kizuna.services import Services


@dataclass(frozen=True, slots=True)
class HotRequest:
    scope: Scope
    headers: Headers
    services: Services
    body: bytes


class Finished(Response):
    """A response whose headers are final (standard headers included): built once and sent
    as it is, many times (the userinfo answers)."""

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


Handler = Callable[[HotRequest], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint, declared once: where it answers, how, and what the OpenAPI document says
    of it (a FastAPI route would say the same; it is never built)."""

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    response_model: type[BaseModel]
    problems: tuple[int, ...]
    body_model: type[BaseModel] | None = None


class HotEndpoints:
    """Answers the hot endpoints' requests in full; hands every other request to ``app``."""

    def __init__(self, app: ASGIApp, endpoints: tuple[Endpoint, ...]) -> None:
        self.app = app
        self._by_path = {endpoint.path: endpoint for endpoint in endpoints}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._by_path.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        response = await self._answer(endpoint, scope, receive)
        if not isinstance(response, Finished):
            response.raw_headers = with_standard_headers(scope["path"], response.raw_headers)
        await response(scope, receive, send)

    async def _answer(self, endpoint: Endpoint, scope: Scope, receive: Receive) -> Response:
        if scope["method"] != endpoint.method:
            return problem_response(Code.method_not_allowed, headers={"Allow": endpoint.method})
        try:
            services: Services = scope["app"].state.kizuna
        except (KeyError, AttributeError) as exc:
            return internal_error(endpoint.path, exc)  # not started
        headers = Headers(scope=scope)
        body = await read_limited_body(headers, receive, services.settings.max_body_bytes)
        if body is None:
            return problem_response(Code.payload_too_large)
        try:
            return await endpoint.handler(HotRequest(scope, headers, services, body))
        except Exception as exc:
            return answer_for(endpoint.path, exc)
