"""``/api/userinfo`` and ``/api/sessions``: the signed-in user's own data."""

from __future__ import annotations

from fastapi import APIRouter, Response

from kizuna import accounts
from kizuna.clock import iso, utcnow
from kizuna.deps import PrincipalDep, ServicesDep
from kizuna.errors import Code
from kizuna.problems import Problem, problem_responses
from kizuna.routing import KizunaRoute
from kizuna.schemas import SessionOut
from kizuna.store import sessions as session_store

router = APIRouter(prefix="/api", tags=["account"], route_class=KizunaRoute)


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(principal: PrincipalDep, services: ServicesDep) -> list[SessionOut]:
    now = utcnow()
    rows = await services.db.read(
        lambda tx: session_store.list_live(tx, user_id=principal.user_id, now=now)
    )
    return [
        SessionOut(
            id=row.id,
            device_id=row.device_id,
            user_agent=row.user_agent,
            ip=row.ip,
            created_at=iso(row.created_at),
            last_used_at=iso(row.last_used_at),
            current=row.id == principal.claims.sid,
        )
        for row in rows
    ]


@router.delete("/sessions/{session_id}", status_code=204, responses=problem_responses(404))
async def revoke_session(
    session_id: str, principal: PrincipalDep, services: ServicesDep
) -> Response:
    mine = await services.db.read(lambda tx: session_store.live_ids(tx, user_id=principal.user_id))
    # Someone else's session id and an unknown one look the same: 404.
    if session_id not in mine:
        raise Problem(Code.not_found, detail="No such session.")
    await accounts.revoke_sessions(services, session_ids=[session_id], reason="revoked_by_user")
    return Response(status_code=204)
