"""Kizuna's tokens in a FastAPI app, with the names ``kizuna.embedding`` uses::

    from fastapi import Depends, FastAPI
    from kizuna_verifier import Verifier
    from kizuna_verifier.fastapi import CurrentUser, install, require_roles

    app = FastAPI(lifespan=your_lifespan)
    install(app, Verifier(issuer=..., audience=..., jwks_url=...))

    @app.get("/notes")
    async def notes(user: CurrentUser): ...                    # 401 without a valid token

    @app.get("/admin", dependencies=[Depends(require_roles("admin"))])
    async def admin(): ...                                     # 403 without the role

The token is read from ``Authorization: Bearer`` only. Refusals are ``HTTPException``s, so the
app's own exception handlers word them: 401 with ``WWW-Authenticate: Bearer
error="invalid_token"`` (RFC 6750; a bare ``Bearer`` when no token was sent), 403 with
``error="insufficient_scope"``, 503 with ``Retry-After`` when the keys or the revocation feed
cannot be reached. Which check refused a token is put in ``request.state.kizuna_refusal`` for
the app's logs; the client is not told.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request

from kizuna_verifier._errors import InvalidToken, Unavailable
from kizuna_verifier._verifier import Principal, Verifier

STATE = "kizuna_verifier"  # app.state.kizuna_verifier
_UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}
_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_FORBIDDEN = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


def install(app: FastAPI, verifier: Verifier) -> None:
    """Puts ``verifier`` on ``app.state`` and runs it (keys, revocation feed, HTTP client)
    around the app's own lifespan: started before it, closed after it. Changes nothing
    process-wide and adds no middleware or exception handler."""
    if getattr(app.state, STATE, None) is not None:
        raise RuntimeError("a Kizuna verifier is installed on this app already")
    setattr(app.state, STATE, verifier)
    host_lifespan: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        async with verifier, host_lifespan(started) as state:
            yield state

    app.router.lifespan_context = lifespan


def verifier_of(request: Request) -> Verifier:
    verifier: Verifier | None = getattr(request.app.state, STATE, None)
    if verifier is None:
        raise RuntimeError("call kizuna_verifier.fastapi.install(app, verifier) first")
    return verifier


def _bearer(request: Request) -> str | None:
    # Straight from the ASGI scope (names are lower-case there): no Headers object per request.
    header: str | None = None
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        request.state.kizuna_refusal = "malformed_authorization"
        raise HTTPException(401, detail="invalid_token", headers=_INVALID)
    return token


async def _verified(request: Request, token: str) -> Principal:
    try:
        return await verifier_of(request).verify(token)
    except InvalidToken as exc:
        request.state.kizuna_refusal = exc.reason.value
        raise HTTPException(401, detail="invalid_token", headers=_INVALID) from None
    except Unavailable as exc:
        request.state.kizuna_refusal = f"unavailable:{exc.reason}"
        raise HTTPException(
            503, detail="verifier_unavailable", headers={"Retry-After": str(exc.retry_after)}
        ) from None


async def current_user(request: Request) -> Principal:
    """The caller's principal; 401 without a token or with one that is refused."""
    token = _bearer(request)
    if token is None:
        request.state.kizuna_refusal = "no_token"
        raise HTTPException(401, detail="unauthenticated", headers=_UNAUTHENTICATED)
    return await _verified(request, token)


async def optional_user(request: Request) -> Principal | None:
    """The caller's principal, or None when no token was sent (a bad one is still 401)."""
    token = _bearer(request)
    return None if token is None else await _verified(request, token)


def require_roles(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must hold every one of ``roles`` (403 otherwise). With
    the revocation feed, roles are those of the token that the user still has."""
    if not all(isinstance(role, str) and role for role in roles):
        raise ValueError("roles are non-empty strings")

    async def check(request: Request) -> Principal:
        principal = await current_user(request)
        if not principal.holds(*roles):
            request.state.kizuna_refusal = "missing_role"
            raise HTTPException(403, detail="forbidden", headers=_FORBIDDEN)
        return principal

    return check


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]

__all__ = [
    "CurrentUser",
    "OptionalUser",
    "current_user",
    "install",
    "optional_user",
    "require_roles",
    "verifier_of",
]
