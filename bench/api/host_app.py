"""The embedded-mode bench's host app: a FastAPI app of "a team's own", with Kizuna installed
by ``Kizuna().install(app)`` as ``docs/integrate.md`` shows, a middleware and an exception
handler of its own, and one business route served twice: ``/api/notes`` behind
``CurrentUser`` and ``/api/notes/open`` without auth (the ratio's baseline). Both answer the
same JSON. Served by ``integrate.py`` with the uvicorn settings of ``kizuna serve``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from kizuna.embedding import CurrentUser, Kizuna

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
Kizuna().install(app)

_NOTES: list[dict[str, object]] = [
    {"id": i, "title": f"Note {i}", "body": "Remember the milk."} for i in range(3)
]


class HostError(Exception):
    pass


@app.exception_handler(HostError)
async def host_error(_request: Request, _exc: HostError) -> JSONResponse:
    return JSONResponse({"error": "host"}, status_code=418)


@app.middleware("http")
async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers["x-host-app"] = "1"
    return response


@app.get("/api/notes/open")
async def notes_open() -> dict[str, object]:
    return {"owner": "5b0e7c2e-2f5c-4c1e-9f4e-0a8d6c3b9e21", "notes": _NOTES}


@app.get("/api/notes")
async def notes(user: CurrentUser) -> dict[str, object]:
    return {"owner": user.user_id, "notes": _NOTES}
