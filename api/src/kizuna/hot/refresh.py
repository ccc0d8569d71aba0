"""``POST /auth/refresh``: rotate the refresh cookie (docs/protocol.md §6)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.requests import cookie_parser
from starlette.responses import Response

from kizuna import rotation
from kizuna.clientinfo import REQUEST_AGE_HEADER, client_info_of, waited_upstream
from kizuna.clock import from_epoch, iso, seconds_until
from kizuna.errors import Code
from kizuna.hot.endpoint import Endpoint, HotRequest
from kizuna.problems import problem_response
from kizuna.schemas import RefreshOut


async def refresh(request: HotRequest) -> Response:
    services = request.services
    settings = services.settings
    cookie = request.headers.get("cookie")
    token = cookie_parser(cookie).get(settings.refresh_cookie) if cookie else None
    client = client_info_of(request.scope, request.headers, settings.trusted_proxies)
    waited = waited_upstream(
        request.scope,
        request.headers.get(REQUEST_AGE_HEADER),
        settings.trusted_proxies,
        settings.refresh_max_request_age,
    )
    try:
        rotated = await rotation.rotate(services, token or None, client, waited=waited)
    except rotation.RefreshRefused as exc:
        refused = problem_response(Code(exc.code.value))
        services.cookies.clear_session(refused)  # every 401 here ends the browser's session
        return refused
    body = RefreshOut(
        access_token_expires_at=iso(from_epoch(rotated.access_expires_at)),
        refresh_token_expires_at=iso(rotated.refresh_expires_at),
    )
    response = JSONResponse(body.model_dump())
    services.cookies.set_session(
        response,
        access_token=rotated.access_token,
        refresh_token=rotated.refresh_token,
        refresh_max_age=seconds_until(rotated.refresh_expires_at),
    )
    return response


def endpoint() -> Endpoint:
    return Endpoint(
        method="POST",
        path="/auth/refresh",
        handler=refresh,
        operation_id="refresh_auth_refresh_post",
        summary="Refresh",
        tag="auth",
        response_model=RefreshOut,
        problems=(401, 413, 503),
    )
