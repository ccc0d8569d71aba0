"""The embedded-mode bench's host app: a FastAPI app of "a team's own", with Kizuna installed
by ``Kizuna().install(app)`` as ``docs/integrate.md`` shows, a middleware (pure ASGI) and an
exception handler of its own, and two baselines of its own that go through the same stack:

- ``/api/notes`` behind ``CurrentUser`` and ``/api/notes/open`` without auth (same JSON);
- ``/bare/userinfo``: the body of ``bare_app.py`` (the shape of ``/api/userinfo``), no auth.

Served by ``integrate.py`` with the uvicorn settings of ``kizuna serve``."""

from __future__ import annotations

from bare_app import _BODY
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kizuna.embedding import CurrentUser, Kizuna
from notes_body import OWNER, nobody, notes_of


class HostHeader:
    """The host's own middleware: a header on every answer, Kizuna's included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-host-app", b"1")]
            await send(message)

        await self.app(scope, receive, send_with_header)


app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
app.add_middleware(HostHeader)
Kizuna().install(app)



class HostError(Exception):
    pass


@app.exception_handler(HostError)
async def host_error(_request: Request, _exc: HostError) -> JSONResponse:
    return JSONResponse({"error": "host"}, status_code=418)


@app.get("/bare/userinfo")
async def bare_userinfo() -> dict[str, object]:
    return _BODY


@app.get("/api/notes/open")
async def notes_open() -> dict[str, object]:
    return notes_of(OWNER)


@app.get("/api/notes")
async def notes(user: CurrentUser) -> dict[str, object]:
    return notes_of(user.user_id)


@app.get("/api/notes/noop")
async def notes_noop(owner: str = Depends(nobody)) -> dict[str, object]:
    return notes_of(owner)
