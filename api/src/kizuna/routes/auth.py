"""``/auth/*``: sessions come and go here; every answer is no-store."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response, status

from kizuna import accounts
from kizuna.accounts import InvalidCredentials
from kizuna.deps import ClientDep, PrincipalDep, ServicesDep, presented_access_token
from kizuna.errors import Code
from kizuna.password_policy import WeakPassword
from kizuna.problems import Problem, problem_responses
from kizuna.routing import KizunaRoute
from kizuna.schemas import LoginOut, PasswordBody, RegisterBody
from kizuna.services import Services
from kizuna.session_response import device_of, session_response
from kizuna.store.users import EmailTaken
from kizuna.throttle import Throttled
from kizuna.tokens import TokenError

router = APIRouter(prefix="/auth", tags=["auth"], route_class=KizunaRoute)
log = structlog.get_logger("kizuna.auth")


def _too_many(retry_after: int) -> Problem:
    return Problem(Code.too_many_attempts, headers={"Retry-After": str(retry_after)})


def _weak(exc: WeakPassword) -> Problem:
    return Problem(Code.weak_password, detail=exc.reason)


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
    device_id, fresh = device_of(request.cookies.get(services.settings.device_cookie))
    new = await accounts.start_session(services, user=user, device_id=device_id, client=client)
    log.info(
        "login_succeeded", user_id=user.id, session_id=new.session_id, ip=client.ip, via="register"
    )
    return session_response(services, new, status_code=201, fresh_device=fresh)


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
