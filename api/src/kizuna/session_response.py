"""The answer that opens a session (a login, or a sign-up): its body and its cookies."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from kizuna.accounts import NewSession
from kizuna.clock import from_epoch, iso, seconds_until
from kizuna.cookies import new_device_id, valid_device_id
from kizuna.schemas import LoginOut, UserOut
from kizuna.services import Services


def session_response(
    services: Services, new: NewSession, *, status_code: int, fresh_device: bool
) -> JSONResponse:
    body = LoginOut(
        user=UserOut(
            id=new.user.id, email=new.user.email, name=new.user.name, roles=list(new.user.roles)
        ),
        session_id=new.session_id,
        access_token_expires_at=iso(from_epoch(new.access_expires_at)),
        refresh_token_expires_at=iso(new.refresh_expires_at),
    )
    response = JSONResponse(body.model_dump(), status_code=status_code)
    services.cookies.set_session(
        response,
        access_token=new.access_token,
        refresh_token=new.refresh_token,
        refresh_max_age=seconds_until(new.refresh_expires_at),
    )
    if fresh_device:
        services.cookies.set_device(response, new.device_id)
    return response


def device_of(current: str | None) -> tuple[str, bool]:
    """The browser's device id if it sent a valid one, else a new one (and True)."""
    if current is not None and valid_device_id(current):
        return current, False
    return new_device_id(), True
