"""The notes API with Kizuna's auth API embedded in the same app (one API server, as in
Kizuna's own picture): ``/auth/*``, ``/api/userinfo``, ``/api/sessions``, the admin API and the
JWKS come from ``Kizuna().install(app)``; the notes routes are the same as in ``app.py``.

    KIZUNA_DATA_DIR=./data kizuna db upgrade
    KIZUNA_DATA_DIR=./data uvicorn notes_api.embedded:app --port 8000

Needs the server package: ``pip install 'notes-api[embedded]'``.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from kizuna.embedding import Kizuna, current_user, require_roles

from notes_api.routes import notes_router
from notes_api.store import Notes


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.notes = Notes(Path(os.environ.get("NOTES_DB", "notes.db")))
    await app.state.notes.open()
    yield
    await app.state.notes.close()


app = FastAPI(title="Notes API (with Kizuna embedded)", lifespan=lifespan)
Kizuna().install(app)
app.include_router(notes_router(current_user, require_roles("admin")))
