"""Plain-ASGI fast lane for a successful ``GET /api/userinfo``, the hot path of every
server-rendered page.

It answers only when the caller turns out to be signed in, and it answers exactly what the
FastAPI route would (same handler for the body, same headers). Every other outcome (no or bad
token, revoked session, store failure, a request body, another method) falls through untouched
to the FastAPI app, so each error is still produced in one place. Only headers are read before
that decision, so nothing is consumed that the app would miss.
"""

from __future__ import annotations

import structlog
from pydantic import ValidationError
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from kizuna.clientinfo import client_info_of
from kizuna.deps import SETTLED_FAILURE, Principal, access_token_from, principal_from_token
from kizuna.errors import Code
from kizuna.middleware import read_body, replaying
from kizuna.problems import internal_error, is_store_failure, problem_response
from kizuna.routes.account import userinfo
from kizuna.routes.auth import login_response, refresh_response
from kizuna.schemas import LoginBody
from kizuna.services import Services
from kizuna.session_cache import SessionView

PATH = "/api/userinfo"
_MAX_BODIES = 4096

_Answer = tuple[list[tuple[bytes, bytes]], bytes]


_BODY = (b"content-length", b"transfer-encoding")


def _headers(scope: Scope, names: frozenset[bytes]) -> dict[str, str]:
    """The first value of each wanted header (as Starlette's ``Headers.get`` reads it); the
    two that announce a body are always among them."""
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        if key in names:
            found.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return found


def _has_body(headers: dict[str, str]) -> bool:
    """A request with a body is BodyLimit's to judge (413), not a bodiless lane's to skip."""
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


_USERINFO_HEADERS = frozenset((b"authorization", b"cookie", *_BODY))
_REFRESH_HEADERS = frozenset((b"cookie", b"x-forwarded-for", b"user-agent", *_BODY))


class UserinfoFastLane:
    """Outermost middleware; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Encoded answers by session view (a frozen, hashable dataclass): a repeat request
        # does no model or JSON work. A changed name or role makes a new view, hence a new key.
        self._answers: dict[SessionView, _Answer] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        answer = await self._answer(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        headers, body = answer
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope) -> _Answer | None:
        """The 200 answer for a signed-in caller, else None (the app decides)."""
        headers = _headers(scope, _USERINFO_HEADERS)
        if _has_body(headers):
            return None
        try:
            services: Services = scope["app"].state.services
        except (KeyError, AttributeError):
            return None  # not started: the app's own failure, whatever it is
        try:
            token = access_token_from(
                headers.get("authorization"),
                headers.get("cookie"),
                services.settings.access_cookie,
            )
            principal = await principal_from_token(services, token)
        except Exception as exc:
            # A 401 problem or a store failure (503): the app answers it, from this very
            # outcome rather than asking again (see deps.SETTLED_FAILURE).
            scope[SETTLED_FAILURE] = exc
            return None
        try:
            return self._answers.get(principal.session) or await self._render(principal)
        except Exception:
            return None  # unforeseen: the route answers, or reports it, as usual

    async def _render(self, principal: Principal) -> _Answer:
        # The route handler itself builds the body, and FastAPI's serializer for a response
        # model (pydantic's dump_json, by alias) encodes it: the same bytes by construction.
        body = (await userinfo(principal)).model_dump_json(by_alias=True).encode()
        # Response's own headers, then those StandardHeaders adds on /api/*.
        headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if len(self._answers) >= _MAX_BODIES:
            del self._answers[next(iter(self._answers))]  # the oldest
        answer = (headers, body)
        self._answers[principal.session] = answer
        return answer


REFRESH_PATH = "/auth/refresh"
log = structlog.get_logger("kizuna.errors")
_STANDARD = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))


class RefreshFastLane:
    """POST /auth/refresh without FastAPI's routing and dependency layers: the second hot path
    (every tab refreshes once per access-token lifetime). The answer, errors included, comes
    from the same function as the route's (``routes.auth.refresh_response``). A request with a
    body falls through (BodyLimit judges it), and so does any unforeseen failure before an answer
    is sent: the route then runs the rotation again, which the grace window makes idempotent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != REFRESH_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope, _REFRESH_HEADERS)
        if _has_body(headers):
            await self.app(scope, receive, send)
            return
        try:
            services: Services = scope["app"].state.services
            settings = services.settings
            cookie = headers.get("cookie")
            token = cookie_parser(cookie).get(settings.refresh_cookie) if cookie else None
            client = client_info_of(scope, headers, settings.trusted_proxies)
            response = await refresh_response(services, token or None, client)
        except Exception as exc:
            if not is_store_failure(exc):
                await self.app(scope, receive, send)
                return
            # Asking the store again through the route would only wait for it twice.
            log.warning("store_unavailable", path=REFRESH_PATH, error=type(exc).__name__)
            response = problem_response(Code.store_unavailable)
        response.raw_headers.extend(_STANDARD)
        await response(scope, receive, send)


LOGIN_PATH = "/auth/login"
_LOGIN_HEADERS = frozenset((b"content-type", b"cookie", b"x-forwarded-for", b"user-agent", *_BODY))


class LoginFastLane:
    """POST /auth/login without FastAPI's routing, dependency and validation layers: they
    cost a login about 0.35 ms of uninterrupted event-loop time (measured), which is what
    requests arriving meanwhile wait for. Not a hot path, but a burst of logins must not slow
    every page view down (the bench's "userinfo during logins" row).

    It handles only a JSON body of declared length within the limit that ``LoginBody``
    accepts; anything else goes to the app untouched, or with the body it has read handed on
    unchanged (a malformed body gets the app's own 422). The answer, errors included, comes
    from the route's own function (``routes.auth.login_response``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != LOGIN_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope, _LOGIN_HEADERS)
        length = _declared_json_length(headers)
        try:
            services: Services = scope["app"].state.services
        except (KeyError, AttributeError):
            length = None  # not started: the app's own failure, whatever it is
        if length is None or length > services.settings.max_body_bytes:
            await self.app(scope, receive, send)
            return
        # The server delivers no more than the declared length, which is within the limit.
        body = await read_body(receive, most=length) or b""
        try:
            login = LoginBody.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replaying(body, receive), send)
            return
        cookie = headers.get("cookie")
        client = client_info_of(scope, headers, services.settings.trusted_proxies)
        try:
            device = cookie_parser(cookie).get(services.settings.device_cookie) if cookie else None
            response = await login_response(services, login, device, client)
        except Exception as exc:
            # No falling through here: a second run could open a second session.
            if is_store_failure(exc):
                log.warning("store_unavailable", path=LOGIN_PATH, error=type(exc).__name__)
                response = problem_response(Code.store_unavailable)
            else:
                response = internal_error(LOGIN_PATH, exc)
        response.raw_headers.extend(_STANDARD)
        await response(scope, receive, send)


def _declared_json_length(headers: dict[str, str]) -> int | None:
    """The body length a request declares for a JSON body, else None (no JSON, or chunked)."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    length = headers.get("content-length", "")
    if media_type != "application/json" or "transfer-encoding" in headers:
        return None
    return int(length) if length.isdigit() else None
