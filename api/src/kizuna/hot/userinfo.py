"""``GET /api/userinfo``: who is signed in, for every server-rendered page (docs/protocol.md §4)."""

from __future__ import annotations

from starlette.responses import Response

from kizuna.clock import iso
from kizuna.deps import access_token_from, principal_from_token
from kizuna.hot.endpoint import Endpoint, Finished, HotRequest
from kizuna.middleware import with_standard_headers
from kizuna.schemas import SessionBrief, UserInfo
from kizuna.session_cache import SessionView

_MOST_CACHED = 4096
PATH = "/api/userinfo"


def user_info(view: SessionView) -> UserInfo:
    return UserInfo(
        sub=view.user_id,
        email=view.email,
        name=view.name,
        roles=list(view.roles),
        session=SessionBrief(
            id=view.session_id,
            device_id=view.device_id,
            created_at=iso(view.created_at),
            expires_at=iso(view.expires_at),
        ),
    )


class Userinfo:
    """The handler, with the encoded answers it gave, by session view (a frozen, hashable
    dataclass): a repeat request does no model or JSON work, and a changed name or role makes a
    new view, hence a new key."""

    def __init__(self) -> None:
        self._answers: dict[SessionView, Finished] = {}

    async def __call__(self, request: HotRequest) -> Response:
        services = request.services
        # A refusal is a Problem, answered by the dispatcher (HotEndpoints).
        token = access_token_from(
            request.headers.get("authorization"),
            request.headers.get("cookie"),
            services.settings.access_cookie,
        )
        principal = await principal_from_token(services, token)
        answer = self._answers.get(principal.session)
        if answer is None:
            body = user_info(principal.session).model_dump_json(by_alias=True).encode()
            headers = [
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"content-type", b"application/json"),
            ]
            answer = Finished(body, with_standard_headers(PATH, headers))
            if len(self._answers) >= _MOST_CACHED:
                del self._answers[next(iter(self._answers))]  # the oldest
            self._answers[principal.session] = answer
        return answer


def endpoint() -> Endpoint:
    """A new endpoint (with an empty answer cache) for one app."""
    return Endpoint(
        method="GET",
        path=PATH,
        handler=Userinfo(),
        operation_id="userinfo_api_userinfo_get",
        summary="Userinfo",
        tag="account",
        response_model=UserInfo,
        problems=(401, 413, 503),
    )
