"""``/api/revocations``: the revocation feed for resource servers that verify access tokens
themselves (``kizuna-verifier``). Read with a service credential only, never a user's token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from kizuna import revocation_feed
from kizuna.deps import ServicesDep
from kizuna.errors import BEARER, Code
from kizuna.problems import Problem, problem_responses
from kizuna.routing import KizunaRoute
from kizuna.schemas import RevocationFeedOut
from kizuna.store.revocations import RevocationEntry

router = APIRouter(prefix="/api", tags=["revocations"], route_class=KizunaRoute)

_MAX_SEQ = 2**63 - 1  # the store's sequence is a BIGINT; beyond it is no number of ours


async def service_secret(request: Request) -> str:
    """The ``Authorization: Bearer`` credential, read before the query is validated so that a
    caller without one learns nothing else. Cookies are never looked at: this is not a user."""
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise Problem(
            Code.service_credential_invalid,
            detail="Send a service credential as Authorization: Bearer.",
            headers={"WWW-Authenticate": BEARER},
        )
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Problem(Code.service_credential_invalid)
    return value.strip()


def _wire(entry: RevocationEntry) -> dict[str, Any]:
    if entry.kind == "user":
        return {
            "seq": entry.seq,
            "kind": "user",
            "user_id": entry.key,
            "disabled": entry.disabled,
            "roles": entry.roles,
        }
    return {"seq": entry.seq, "kind": "session", "session_id": entry.key}


@router.get("/revocations", response_model=RevocationFeedOut, responses=problem_responses(401, 503))
async def revocations(
    secret: Annotated[str, Depends(service_secret)],
    services: ServicesDep,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=_MAX_SEQ,
            description="The `seq` of the previous answer. Without it: where a new reader "
            "starts, with the entries that may still matter to a live token.",
        ),
    ] = None,
) -> JSONResponse:
    """The revocation feed, in commit order: revoked sessions, and users whose state changed
    (disabled, roles) with their state now. Authenticated by a service credential
    (``kizuna services create``) as ``Authorization: Bearer``; a user's token is refused."""
    page = await revocation_feed.read_feed(services, secret=secret, after=after)
    if page is None:
        raise Problem(Code.service_credential_invalid)
    # Built by hand rather than through the response model: polled several times a second by
    # every verifier, and the model would only re-check what the store just answered.
    return JSONResponse(
        {
            "seq": page.seq,
            "more": page.more,
            "retain_seconds": revocation_feed.retain_seconds(services),
            "entries": [_wire(entry) for entry in page.entries],
        }
    )
