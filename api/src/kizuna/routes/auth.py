"""``/auth/*``: sessions come and go here; every answer is no-store."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from kizuna import accounts, rotation
from kizuna.accounts import InvalidCredentials, NewSession
from kizuna.clientinfo import ClientInfo
from kizuna.clock import from_epoch, iso, seconds_until
from kizuna.cookies import new_device_id, valid_device_id
from kizuna.deps import ClientDep, PrincipalDep, ServicesDep, presented_access_token
from kizuna.errors import Code
from kizuna.password_hasher import HashingBusy
from kizuna.password_policy import WeakPassword
from kizuna.problems import Problem, problem_response, problem_responses, response_of
from kizuna.schemas import LoginBody, LoginOut, PasswordBody, RefreshOut, RegisterBody, UserOut
from kizuna.services import Services
from kizuna.store.users import EmailTaken
from kizuna.throttle import Throttled
from kizuna.tokens import TokenError

router = APIRouter(prefix="/auth", tags=["auth"])
log = structlog.get_logger("kizuna.auth")


def _too_many(retry_after: int) -> Problem:
    return Problem(Code.too_many_attempts, headers={"Retry-After": str(retry_after)})


def _weak(exc: WeakPassword) -> Problem:
    return Problem(Code.weak_password, detail=exc.reason)


def _session_response(
    services: Services, new: NewSession, *, status_code: int, fresh_device: bool
) -> JSONResponse:
    body = LoginOut(
        user=UserOut(
            id=new.user.id, email=new.user.email, name=new.user.name, roles=list(new.user.roles)
        ),
        session_id=new.session_id,
        access_token_expires_at=iso(from_epoch(new.access_expires_at)),
        refresh_token_expires_at=iso(new.refresh_expires_at),
    )
    response = JSONResponse(body.model_dump(), status_code=status_code)
    services.cookies.set_session(
        response,
        access_token=new.access_token,
        refresh_token=new.refresh_token,
        refresh_max_age=seconds_until(new.refresh_expires_at),
    )
    if fresh_device:
        services.cookies.set_device(response, new.device_id)
    return response


def _device(current: str | None) -> tuple[str, bool]:
    """The browser's device id if it sent a valid one, else a new one (and True)."""
    if current is not None and valid_device_id(current):
        return current, False
    return new_device_id(), True


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=LoginOut,
    responses=problem_responses(403, 409, 429, 503),
)
async def register(
    body: RegisterBody, request: Request, services: ServicesDep, client: ClientDep
) -> Response:
    if not services.settings.allow_signup:
        raise Problem(Code.signup_closed)
    try:
        user = await accounts.sign_up(
            services,
            email=str(body.email),
            password=body.password,
            name=body.name or "",
            client=client,
        )
    except Throttled as exc:
        raise _too_many(exc.retry_after) from None
    except WeakPassword as exc:
        raise _weak(exc) from None
    except EmailTaken:
        raise Problem(Code.email_taken) from None
    device_id, fresh = _device(request.cookies.get(services.settings.device_cookie))
    new = await accounts.start_session(services, user=user, device_id=device_id, client=client)
    log.info(
        "login_succeeded", user_id=user.id, session_id=new.session_id, ip=client.ip, via="register"
    )
    return _session_response(services, new, status_code=201, fresh_device=fresh)


@router.post("/login", response_model=LoginOut, responses=problem_responses(401, 429, 503))
async def login(
    body: LoginBody, request: Request, services: ServicesDep, client: ClientDep
) -> Response:
    return await login_response(
        services, body, request.cookies.get(services.settings.device_cookie), client
    )


async def login_response(
    services: Services, body: LoginBody, device_cookie: str | None, client: ClientInfo
) -> Response:
    """The whole answer to a well-formed POST /auth/login; shared with the plain-ASGI lane."""
    try:
        user, attempt = await accounts.authenticate(
            services, email=body.email, password=body.password, client=client
        )
    except Throttled as exc:
        return response_of(_too_many(exc.retry_after))
    except InvalidCredentials:
        return problem_response(Code.invalid_credentials)
    except HashingBusy:
        return problem_response(Code.server_busy)
    device_id, fresh = _device(device_cookie)
    new = await accounts.start_session(
        services, user=user, device_id=device_id, client=client, attempt=attempt
    )
    log.info("login_succeeded", user_id=user.id, session_id=new.session_id, ip=client.ip)
    return _session_response(services, new, status_code=200, fresh_device=fresh)


@router.post("/refresh", response_model=RefreshOut, responses=problem_responses(401, 503))
async def refresh(request: Request, services: ServicesDep, client: ClientDep) -> Response:
    return await refresh_response(
        services, request.cookies.get(services.settings.refresh_cookie), client
    )


async def refresh_response(services: Services, token: str | None, client: ClientInfo) -> Response:
    """The whole answer to POST /auth/refresh; shared with the plain-ASGI lane (fastlane.py)."""
    try:
        rotated = await rotation.rotate(services, token, client)
    except rotation.RefreshRefused as exc:
        response = problem_response(Code(exc.code.value))
        services.cookies.clear_session(response)
        return response
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


def _session_id_of_request(request: Request, services: Services) -> tuple[str | None, str]:
    """Logout finds the session from the refresh cookie if sent, else from a validly signed
    access token (expired is fine, and so is a key retired since: logging out is always
    allowed). Returns the session id, if any, and where it was found."""
    refresh_token = request.cookies.get(services.settings.refresh_cookie)
    if refresh_token:
        try:
            return services.refresh_tokens.verify(
                refresh_token, verify_exp=False
            ).sid, "refresh_token"
        except TokenError:
            pass
    try:
        access_token = presented_access_token(request, services)
    except Problem:
        return None, "malformed_authorization"
    if not access_token:
        return None, "no_token"
    try:
        return services.access_tokens.session_of(access_token), "access_token"
    except TokenError as exc:
        return None, f"access_token_{exc.reason.replace(' ', '_')}"


@router.post("/logout", status_code=204, responses=problem_responses(503))
async def logout(request: Request, services: ServicesDep, client: ClientDep) -> Response:
    session_id, found_by = _session_id_of_request(request, services)
    revoked = False
    if session_id is not None:
        revoked = bool(
            await accounts.revoke_sessions(services, session_ids=[session_id], reason="logout")
        )
    # Every logout says what it ended, or why it could end nothing.
    log.info("logout", session_id=session_id, found_by=found_by, revoked=revoked, ip=client.ip)
    response = Response(status_code=204)
    services.cookies.clear_session(response)
    return response


@router.post("/logout-all", status_code=204)
async def logout_all(principal: PrincipalDep, services: ServicesDep) -> Response:
    await accounts.revoke_user(services, user_id=principal.user_id, reason="logout_all")
    log.info("logout_all", user_id=principal.user_id)
    response = Response(status_code=204)
    services.cookies.clear_session(response)
    return response


@router.post("/password", status_code=204, responses=problem_responses(429, 503))
async def change_password(
    body: PasswordBody, principal: PrincipalDep, services: ServicesDep, client: ClientDep
) -> Response:
    try:
        await accounts.change_password(
            services,
            user_id=principal.user_id,
            keep_session_id=principal.claims.sid,
            current_password=body.current_password,
            new_password=body.new_password,
            client=client,
        )
    except Throttled as exc:
        raise _too_many(exc.retry_after) from None
    except InvalidCredentials:
        raise Problem(Code.invalid_credentials) from None
    except WeakPassword as exc:
        raise _weak(exc) from None
    return Response(status_code=204)
