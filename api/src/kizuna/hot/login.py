"""``POST /auth/login``: email and password → a new session on this device (protocol.md §4)."""

from __future__ import annotations

import structlog
from pydantic import ValidationError
from starlette.requests import cookie_parser
from starlette.responses import Response

from kizuna import accounts
from kizuna.accounts import InvalidCredentials
from kizuna.clientinfo import client_info_of
from kizuna.errors import Code
from kizuna.hot.endpoint import Endpoint, HotRequest
from kizuna.problems import problem_response, validation_problem
from kizuna.schemas import LoginBody, LoginOut
from kizuna.session_response import device_of, session_response
from kizuna.throttle import Throttled

log = structlog.get_logger("kizuna.auth")


async def login(request: HotRequest) -> Response:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        return validation_problem([{"msg": "A JSON body is required."}], within=("body",))
    try:
        body = LoginBody.model_validate_json(request.body)
    except ValidationError as exc:
        return validation_problem(exc.errors(), within=("body",))
    services = request.services
    client = client_info_of(request.scope, request.headers, services.settings.trusted_proxies)
    try:
        user, attempt = await accounts.authenticate(
            services, email=body.email, password=body.password, client=client
        )
    except Throttled as exc:
        return problem_response(
            Code.too_many_attempts, headers={"Retry-After": str(exc.retry_after)}
        )
    except InvalidCredentials:
        return problem_response(Code.invalid_credentials)
    cookie = request.headers.get("cookie")
    device_cookie = cookie_parser(cookie).get(services.settings.device_cookie) if cookie else None
    device_id, fresh = device_of(device_cookie)
    new = await accounts.start_session(
        services, user=user, device_id=device_id, client=client, attempt=attempt
    )
    log.info("login_succeeded", user_id=user.id, session_id=new.session_id, ip=client.ip)
    return session_response(services, new, status_code=200, fresh_device=fresh)


def endpoint() -> Endpoint:
    return Endpoint(
        method="POST",
        path="/auth/login",
        handler=login,
        operation_id="login_auth_login_post",
        summary="Login",
        tag="auth",
        body_model=LoginBody,
        response_model=LoginOut,
        problems=(400, 401, 413, 422, 429, 503),
    )
