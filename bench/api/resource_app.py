"""The integration bench's resource server: a FastAPI app that verifies Kizuna's access tokens
with the ``kizuna-verifier`` package (``docs/integrate.md``, way 2), following Kizuna's
revocation feed, with one business route served twice: ``/api/notes`` behind ``CurrentUser``
and ``/api/open`` without auth (the baseline), answering the same JSON.

Environment: ``BENCH_KIZUNA_URL`` (the Kizuna app that issued the tokens),
``BENCH_SERVICE_CREDENTIAL`` (for the feed), ``BENCH_VERIFIER_CACHE`` ("default", or a size;
"0" verifies every request's signature)."""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI
from kizuna_verifier import RevocationFeed, Verifier
from kizuna_verifier.fastapi import CurrentUser, install
from notes_body import OWNER, nobody, notes_of

kizuna = os.environ["BENCH_KIZUNA_URL"].rstrip("/")
cache = os.environ.get("BENCH_VERIFIER_CACHE", "default")

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
install(
    app,
    Verifier(
        issuer="kizuna",
        audience="kizuna-web",
        jwks_url=f"{kizuna}/.well-known/jwks.json",
        revocation=RevocationFeed(
            url=f"{kizuna}/api/revocations", credential=os.environ["BENCH_SERVICE_CREDENTIAL"]
        ),
        **({} if cache == "default" else {"cache_size": int(cache)}),
    ),
)



@app.get("/api/open")
async def notes_open() -> dict[str, object]:
    return notes_of(OWNER)


@app.get("/api/notes")
async def notes(user: CurrentUser) -> dict[str, object]:
    return notes_of(user.user_id)


@app.get("/api/noop")
async def notes_noop(owner: str = Depends(nobody)) -> dict[str, object]:
    return notes_of(owner)
