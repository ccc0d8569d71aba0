"""FastAPI dependencies: services, caller info, and the signed-in principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kizuna.clientinfo import ClientInfo, client_info
from kizuna.liveness import SessionView
from kizuna.problems import Problem, invalid_token, unauthenticated
from kizuna.services import Services
from kizuna.tokens import AccessClaims, TokenError


# Dependencies are ``async def`` although nothing in them awaits: FastAPI runs a plain
# ``def`` dependency in a worker thread, a thread hop on every request.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_client(request: Request, services: ServicesDep) -> ClientInfo:
    return client_info(request, services.settings.trusted_proxies)


ClientDep = Annotated[ClientInfo, Depends(get_client)]


def presented_access_token(request: Request, services: Services) -> str | None:
    """``Authorization: Bearer`` first, else the access cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise invalid_token()
        return value.strip()
    return request.cookies.get(services.settings.access_cookie) or None


@dataclass(frozen=True)
class Principal:
    claims: AccessClaims
    session: SessionView

    @property
    def user_id(self) -> str:
        return self.claims.sub


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    token = presented_access_token(request, services)
    if token is None:
        raise unauthenticated()
    try:
        claims = services.access.verify(token)
    except TokenError as exc:
        raise invalid_token() from exc
    view = await services.directory.get(claims.sid)
    if view is None or not view.usable_by(claims.sub):
        raise invalid_token()
    return Principal(claims=claims, session=view)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: PrincipalDep) -> Principal:
    # Both the token and the account must say admin, so a demotion bites within a second.
    if "admin" not in principal.claims.roles or "admin" not in principal.session.roles:
        raise Problem(403, "forbidden", "This needs the admin role.")
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
