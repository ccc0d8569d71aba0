"""The three cookies of docs/protocol.md §2, set and deleted with their exact attributes."""

from __future__ import annotations

import re
import secrets

from starlette.responses import Response

from kizuna.settings import Settings

DEVICE_TTL = 400 * 24 * 3600  # the longest Max-Age browsers honour
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9._-]*")


def new_device_id() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


def valid_device_id(value: str | None) -> bool:
    return bool(value) and _DEVICE_ID.fullmatch(value or "") is not None


class SessionCookies:
    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def _set(
        self, response: Response, name: str, value: str, *, max_age: int, path: str, samesite: str
    ) -> None:
        # Written directly rather than through http.cookies: every value here is a JWT or a
        # device id (URL-safe characters, checked below) and names are checked at start-up, so
        # no quoting is ever needed, and this runs on every login and refresh.
        if not _COOKIE_VALUE.fullmatch(value):
            raise ValueError("cookie value needs quoting")
        parts = [f"{name}={value}", f"Max-Age={max(0, max_age)}", f"Path={path}"]
        if self.s.cookie_domain:
            parts.append(f"Domain={self.s.cookie_domain}")
        parts.append(f"SameSite={samesite}")
        parts.append("HttpOnly")
        if self.s.cookie_secure:
            parts.append("Secure")
        response.headers.append("set-cookie", "; ".join(parts))

    def set_session(
        self, response: Response, *, access_token: str, refresh_token: str, refresh_max_age: int
    ) -> None:
        # The access cookie lives as long as the refresh cookie: an expired JWT in it means
        # "try a refresh", no cookie means "anonymous".
        self._set(
            response,
            self.s.access_cookie,
            access_token,
            max_age=refresh_max_age,
            path="/",
            samesite="Lax",
        )
        self._set(
            response,
            self.s.refresh_cookie,
            refresh_token,
            max_age=refresh_max_age,
            path=self.s.refresh_cookie_path,
            samesite="Strict",
        )
        response.headers["Cache-Control"] = "no-store"

    def set_device(self, response: Response, device_id: str) -> None:
        self._set(
            response, self.s.device_cookie, device_id, max_age=DEVICE_TTL, path="/", samesite="Lax"
        )

    def clear_session(self, response: Response) -> None:
        self._set(response, self.s.access_cookie, "", max_age=0, path="/", samesite="Lax")
        self._set(
            response,
            self.s.refresh_cookie,
            "",
            max_age=0,
            path=self.s.refresh_cookie_path,
            samesite="Strict",
        )
        response.headers["Cache-Control"] = "no-store"
