"""FastAPI dependencies: services, caller info, and the signed-in principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from starlette.requests import cookie_parser

from kizuna.clientinfo import ClientInfo, client_info
from kizuna.errors import Code
from kizuna.problems import Problem
from kizuna.services import Services
from kizuna.session_cache import SessionView
from kizuna.tokens import AccessClaims, TokenError

log = structlog.get_logger("kizuna.security")


# Dependencies are ``async def`` although nothing in them awaits: FastAPI runs a plain
# ``def`` dependency in a worker thread, a thread hop on every request.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.kizuna
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_client(request: Request, services: ServicesDep) -> ClientInfo:
    return client_info(request, services.settings.trusted_proxies)


ClientDep = Annotated[ClientInfo, Depends(get_client)]


def access_token_from(
    authorization: str | None, cookie_header: str | None, cookie_name: str
) -> str | None:
    """``Authorization: Bearer`` first, else the access cookie. Takes the raw header values so
    that the userinfo endpoint (plain ASGI, see ``kizuna.hot``) reads tokens by the same rules."""
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Problem(Code.invalid_token)
        return value.strip()
    if not cookie_header:
        return None
    # Starlette's own parser, as behind ``Request.cookies``.
    return cookie_parser(cookie_header).get(cookie_name) or None


def presented_access_token(request: Request, services: Services) -> str | None:
    """``Authorization: Bearer`` first, else the access cookie. Read from the ASGI scope in one
    pass (the first of each, as ``request.headers.get``): asked on every authenticated request
    of a host app's routes, where a ``Headers`` object and two scans showed in the bench."""
    authorization: str | None = None
    cookie: str | None = None
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"cookie" and cookie is None:
            cookie = value.decode("latin-1")
    return access_token_from(authorization, cookie, services.settings.access_cookie)


@dataclass(frozen=True)
class Principal:
    claims: AccessClaims
    session: SessionView

    @property
    def user_id(self) -> str:
        return self.claims.sub

    def holds(self, role: str) -> bool:
        """In the token and in the account as it is now, so a demotion bites within a second."""
        return role in self.claims.roles and role in self.session.roles


async def principal_from_token(services: Services, token: str | None) -> Principal:
    """The one rule for "access token → principal": raises ``Problem`` (401) for a missing,
    bad, expired or revoked token; a store failure propagates as is (→ 503, never a 401)."""
    if token is None:
        raise Problem(Code.unauthenticated)
    try:
        claims = services.access_tokens.verify(token)
    except TokenError as exc:
        raise Problem(Code.invalid_token) from exc
    view = await services.session_cache.get(claims.sid)
    if view is None or not view.usable_by(claims.sub):
        raise Problem(Code.invalid_token)
    return Principal(claims=claims, session=view)


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    return await principal_from_token(services, presented_access_token(request, services))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: PrincipalDep, request: Request, client: ClientDep) -> Principal:
    if not principal.holds("admin"):
        log.warning(
            "admin_forbidden",
            security=True,
            user_id=principal.user_id,
            session_id=principal.claims.sid,
            method=request.method,
            path=request.url.path,
            ip=client.ip,
        )
        raise Problem(Code.forbidden)
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
