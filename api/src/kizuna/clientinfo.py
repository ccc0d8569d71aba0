"""Who is calling: the client's address (X-Forwarded-For believed only from trusted proxies)
and its user agent."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Scope

from kizuna.settings import IPNetwork

_MAX_UA = 512


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    user_agent: str


def _trusted(address: str, proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_ip(peer: str, forwarded_for: str | None, proxies: Sequence[IPNetwork]) -> str:
    """Walk X-Forwarded-For from the right while the hop is a trusted proxy; the first
    untrusted hop is the client. An untrusted peer's header is ignored entirely."""
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    current = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage in the header: stop believing it here
        current = hop
        if not _trusted(hop, proxies):
            break
    return current


def client_info_from(
    peer: str, forwarded_for: str | None, user_agent: str, proxies: Sequence[IPNetwork]
) -> ClientInfo:
    return ClientInfo(ip=client_ip(peer, forwarded_for, proxies), user_agent=user_agent[:_MAX_UA])


def client_info_of(
    scope: Scope, headers: Mapping[str, str], proxies: Sequence[IPNetwork]
) -> ClientInfo:
    """The same, from a raw ASGI scope and its headers (the fast lanes)."""
    peer = scope.get("client")
    return client_info_from(
        peer[0] if peer else "",
        headers.get("x-forwarded-for"),
        headers.get("user-agent", ""),
        proxies,
    )


REQUEST_AGE_HEADER = "kizuna-request-age"


def waited_upstream(
    scope: Scope, header: str | None, proxies: Sequence[IPNetwork], cap: float
) -> float:
    """Seconds a trusted proxy (the web tier) says the request had already waited when it
    reached us (``Kizuna-Request-Age``, whole milliseconds), at most ``cap``. From anyone
    else, or malformed: 0, so the request is judged by when it arrived here."""
    peer = scope.get("client")
    if not header or not peer or not _trusted(peer[0], proxies):
        return 0.0
    value = header.strip()
    if not value.isascii() or not value.isdigit():
        return 0.0
    if len(value) > 12:  # beyond any real wait; do not make a huge int of it
        return cap
    return min(int(value) / 1000.0, cap)


def client_info(request: Request, proxies: Sequence[IPNetwork]) -> ClientInfo:
    return client_info_from(
        request.client.host if request.client else "",
        request.headers.get("x-forwarded-for"),
        request.headers.get("user-agent", ""),
        proxies,
    )
