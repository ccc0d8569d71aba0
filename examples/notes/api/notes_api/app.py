"""The notes API as a resource server: Kizuna runs as its own service; this app verifies its
access tokens with ``kizuna-verifier`` and follows its revocation feed, so a session revoked in
Kizuna is refused here within a second.

    NOTES_KIZUNA_URL=http://127.0.0.1:8000 NOTES_SERVICE_CREDENTIAL=kzs_... \\
        uvicorn notes_api.app:app --port 8001

Settings (environment): ``NOTES_KIZUNA_URL`` (Kizuna's API), ``NOTES_SERVICE_CREDENTIAL``
(from ``kizuna services create notes``; without it tokens are good until they expire),
``NOTES_ISSUER``/``NOTES_AUDIENCE`` (Kizuna's ``KIZUNA_ISSUER``/``KIZUNA_AUDIENCE``),
``NOTES_DB`` (the notes' SQLite file).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from kizuna_verifier import RevocationFeed, Verifier
from kizuna_verifier.fastapi import current_user, install, require_roles

from notes_api.routes import notes_router
from notes_api.store import Notes

kizuna_url = os.environ.get("NOTES_KIZUNA_URL", "http://127.0.0.1:8000").rstrip("/")
credential = os.environ.get("NOTES_SERVICE_CREDENTIAL")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.notes = Notes(Path(os.environ.get("NOTES_DB", "notes.db")))
    await app.state.notes.open()
    yield
    await app.state.notes.close()


app = FastAPI(title="Notes API", lifespan=lifespan)
install(
    app,
    Verifier(
        issuer=os.environ.get("NOTES_ISSUER", "kizuna"),
        audience=os.environ.get("NOTES_AUDIENCE", "kizuna-web"),
        jwks_url=f"{kizuna_url}/.well-known/jwks.json",
        revocation=RevocationFeed(url=f"{kizuna_url}/api/revocations", credential=credential)
        if credential
        else None,
    ),
)
app.include_router(notes_router(current_user, require_roles("admin")))


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
