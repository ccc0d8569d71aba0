"""The route class of Kizuna's routers (``APIRouter(route_class=KizunaRoute)``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from kizuna.errors import Code
from kizuna.middleware import read_limited_body, with_standard_headers
from kizuna.problems import answer_for, problem_response


class KizunaRoute(APIRoute):
    """Kizuna's routes answer for themselves, in whatever app they are mounted: the body limit
    first, every error as problem+json from the catalogue, the standard headers on every
    answer. A host app's own exception handlers and middleware stay the host's."""

    answers_for_itself = True  # problems.document declares its problems in the schema

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            services = request.app.state.kizuna
            path = request.url.path
            body = await read_limited_body(
                request.headers, request.receive, services.settings.max_body_bytes
            )
            response: Response
            if body is None:
                response = problem_response(Code.payload_too_large)
            else:
                request._body = body  # what Request.body() returns from now on (Starlette)
                try:
                    response = await handler(request)
                except Exception as exc:
                    response = answer_for(path, exc)
            response.raw_headers = with_standard_headers(path, response.raw_headers)
            return response

        return answer
