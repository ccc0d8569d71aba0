"""The refresh baseline: the least a refresh-token rotation can do. Verify an ES256 refresh JWT
with PyJWT, one conditional UPDATE (single use) and one INSERT (the successor) in SQLite, sign a
new access + refresh pair, set the two cookies. No session or user lookup, no reuse detection,
no grace window, no logging.

Its own SQLite file (WAL) and ES256 key live in ``$MINROT_DIR`` (``run.py`` writes the key
before starting it, so that several workers share it). ``POST /auth/login`` opens a session
without a password: it exists only to hand the load generator its first refresh tokens.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DIR = Path(os.environ["MINROT_DIR"])
KEY = serialization.load_pem_private_key((DIR / "key.pem").read_bytes(), password=None)
PUB = KEY.public_key()
ACCESS_TTL, REFRESH_TTL = 300, 2_592_000

db = sqlite3.connect(DIR / "minrot.db", isolation_level=None, check_same_thread=False)
db.execute("PRAGMA busy_timeout=30000")
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute(
    "CREATE TABLE IF NOT EXISTS refresh_tokens (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,"
    " user_id TEXT NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " rotated_at INTEGER)"
)
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(sid: str, sub: str, *, replaces: str | None) -> JSONResponse | None:
    now, jti = int(time.time()), str(uuid.uuid4())
    db.execute("BEGIN IMMEDIATE")
    if replaces is not None:
        won = db.execute(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE id = ? AND rotated_at IS NULL",
            (now, replaces),
        ).rowcount
        if won != 1:
            db.execute("ROLLBACK")
            return None
    db.execute(
        "INSERT INTO refresh_tokens (id, session_id, user_id, issued_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (jti, sid, sub, now, now + REFRESH_TTL),
    )
    db.execute("COMMIT")
    claims = {"iss": "minrot", "sub": sub, "sid": sid, "iat": now}
    access = jwt.encode(
        {**claims, "jti": str(uuid.uuid4()), "exp": now + ACCESS_TTL},
        KEY,  # type: ignore[arg-type]
        algorithm="ES256",
        headers={"typ": "at+jwt"},
    )
    refresh = jwt.encode(
        {**claims, "jti": jti, "exp": now + REFRESH_TTL},
        KEY,  # type: ignore[arg-type]
        algorithm="ES256",
        headers={"typ": "rt+jwt"},
    )
    response = JSONResponse(
        {
            "access_token_expires_at": iso(now + ACCESS_TTL),
            "refresh_token_expires_at": iso(now + REFRESH_TTL),
        }
    )
    response.set_cookie("access_token", access, max_age=REFRESH_TTL, httponly=True, secure=True)
    response.set_cookie(
        "refresh_token",
        refresh,
        max_age=REFRESH_TTL,
        path="/auth/refresh",
        httponly=True,
        secure=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@app.post("/auth/refresh")
async def refresh(request: Request) -> JSONResponse:
    try:
        claims = jwt.decode(
            request.cookies.get("refresh_token", ""),
            PUB,  # type: ignore[arg-type]
            algorithms=["ES256"],
            options={"require": ["exp", "sub", "sid", "jti"]},
        )
    except jwt.PyJWTError:
        return JSONResponse({"code": "refresh_token_invalid"}, status_code=401)
    response = issue(claims["sid"], claims["sub"], replaces=claims["jti"])
    if response is None:
        return JSONResponse({"code": "refresh_token_reused"}, status_code=401)
    return response


@app.post("/auth/login")
async def login() -> JSONResponse:
    response = issue(str(uuid.uuid4()), "bench-user", replaces=None)
    assert response is not None
    return response


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}
