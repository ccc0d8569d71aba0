"""``/api/admin/*``: user management for role ``admin``."""

from __future__ import annotations

import re

import structlog
from fastapi import APIRouter

from kizuna import accounts
from kizuna.clock import iso, utcnow
from kizuna.deps import AdminDep, ServicesDep
from kizuna.errors import Code
from kizuna.problems import Problem, problem_responses
from kizuna.routing import KizunaRoute
from kizuna.schemas import AdminUserOut, AdminUserPatch
from kizuna.store import NotFound
from kizuna.store import users as user_store
from kizuna.store.users import UserRecord

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=KizunaRoute)
log = structlog.get_logger("kizuna.admin")
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _out(user: UserRecord) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=list(user.roles),
        disabled=user.disabled,
        created_at=iso(user.created_at),
    )


@router.get("/users", response_model=list[AdminUserOut])
async def list_users(_admin: AdminDep, services: ServicesDep) -> list[AdminUserOut]:
    users = await services.db.read(user_store.list_all)
    return [_out(user) for user in users]


@router.patch(
    "/users/{user_id}", response_model=AdminUserOut, responses=problem_responses(404, 422)
)
async def update_user(
    user_id: str, body: AdminUserPatch, admin: AdminDep, services: ServicesDep
) -> AdminUserOut:
    roles = body.validated_roles()
    if roles is not None and not all(_ROLE.fullmatch(role) for role in roles):
        raise Problem(Code.validation_error, detail="Roles are lower-case words.")

    now = utcnow()
    try:
        user = await services.db.write(
            lambda tx: user_store.update(
                tx, user_id=user_id, now=now, roles=roles, disabled=body.disabled
            )
        )
    except NotFound:
        raise Problem(Code.not_found, detail="No such user.") from None
    out = _out(user)
    if body.disabled:
        await accounts.revoke_user(services, user_id=user_id, reason="user_disabled")
    services.session_cache.forget_user(user_id)
    log.info(
        "user_updated",
        user_id=user_id,
        by=admin.user_id,
        roles=roles,
        disabled=body.disabled,
    )
    return out
