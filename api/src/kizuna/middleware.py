"""The body-size limit and the response headers every answer needs: the policy, and the pure
ASGI middleware that applies it to FastAPI's routes (the hot endpoints apply the same
functions themselves, see ``kizuna.hot``)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kizuna.errors import Code
from kizuna.problems import problem_response

_NO_STORE_PREFIXES = ("/auth/", "/api/")
_STANDARD = frozenset((b"x-content-type-options", b"referrer-policy"))


async def read_body(receive: Receive, *, most: int) -> bytes | None:
    """The whole request body, or None once it exceeds ``most`` bytes. A client that goes
    away leaves what it had sent."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > most:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def declared_too_large(declared: str | None, most: int) -> bool:
    """A Content-Length over the limit, or one that is not a length at all."""
    if declared is None:
        return False
    try:
        return int(declared) > most
    except ValueError:
        return True


async def read_limited_body(headers: Headers, receive: Receive, most: int) -> bytes | None:
    """The request's whole body, or None when it is over ``most`` bytes (declared or sent).
    A request that announces no body is not read at all."""
    declared = headers.get("content-length")
    if declared is None and "transfer-encoding" not in headers:
        return b""
    if declared_too_large(declared, most):
        return None
    return await read_body(receive, most=most)


def with_standard_headers(
    path: str, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` with what every answer carries: nosniff, no referrer, and no-store (in
    place of any other Cache-Control) on /auth/* and /api/*."""
    no_store = path.startswith(_NO_STORE_PREFIXES)
    replaced = _STANDARD | {b"cache-control"} if no_store else _STANDARD
    out = [(k, v) for k, v in headers if k.lower() not in replaced]
    if no_store:
        out.append((b"cache-control", b"no-store"))
    out.append((b"x-content-type-options", b"nosniff"))
    out.append((b"referrer-policy", b"no-referrer"))
    return out


def replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for an app behind a layer that has read the body already."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimit:
    """413 for bodies over the limit, declared or streamed, before any handler reads them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if declared_too_large(declared, self.max_bytes):
                await self._reject(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No length declared (chunked): read it all, within the limit, then replay it.
        body = await read_body(receive, most=self.max_bytes)
        if body is None:
            await self._reject(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(Code.payload_too_large)
        await response(scope, receive, send)


class StandardHeaders:
    """no-store on /auth/* and /api/*; nosniff and no referrer everywhere."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_standard_headers(path, list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)
