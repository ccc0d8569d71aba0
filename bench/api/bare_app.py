"""The userinfo baseline: one bare FastAPI GET answering the same JSON shape as kizuna's
``GET /api/userinfo``, with no auth, no store and no middleware. Served by ``run.py`` with the
same uvicorn settings as ``kizuna serve``."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

_BODY: dict[str, object] = {
    "sub": "5b0e7c2e-2f5c-4c1e-9f4e-0a8d6c3b9e21",
    "email": "bench-000@example.com",
    "name": "Bench User",
    "roles": [],
    "session": {
        "id": "0d6f1a52-8a3e-4b7f-a1c2-7e9b5d4f3a10",
        "device_id": "q3Xk9v2LmN8pR4sT6wY1zA0bC5dE7fGh",
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-04-01T00:00:00Z",
    },
}


@app.get("/api/userinfo")
async def userinfo() -> dict[str, object]:
    return _BODY
