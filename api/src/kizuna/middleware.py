"""Pure ASGI middleware: body-size limit and the response headers every answer needs."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kizuna.errors import Code
from kizuna.problems import problem_response

_NO_STORE_PREFIXES = ("/auth/", "/api/")


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
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
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
        no_store = scope["path"].startswith(_NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not (no_store and k.lower() == b"cache-control")
                ]
                if no_store:
                    headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
