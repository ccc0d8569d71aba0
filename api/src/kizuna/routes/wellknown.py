"""Public keys and health checks."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kizuna.deps import ServicesDep
from kizuna.errors import Code
from kizuna.problems import problem_response, problem_responses
from kizuna.routing import KizunaRoute
from kizuna.store import health

router = APIRouter(tags=["meta"], route_class=KizunaRoute)


@router.get("/.well-known/jwks.json")
async def jwks(services: ServicesDep) -> JSONResponse:
    # Cacheable, but never longer than a retired key stays published.
    max_age = min(services.settings.jwks_max_age, services.settings.access_token_ttl)
    return JSONResponse(
        services.keyring.jwks(), headers={"Cache-Control": f"public, max-age={max_age}"}
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None, responses=problem_responses(503))
async def readyz(services: ServicesDep) -> JSONResponse:
    try:
        await services.db.read(health.ping)
    except Exception:
        return problem_response(Code.store_unavailable)
    return JSONResponse({"status": "ready"})
