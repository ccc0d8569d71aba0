"""The load generator of ``run.py``; always runs in its own process, never in a server's.

It speaks HTTP/1.1 itself over keep-alive connections (asyncio + uvloop + httptools' response
parser, all installed with ``uvicorn[standard]``): one connection per simulated client, no pool
locks, no cookie jar. A general-purpose client costs more CPU per request than the servers under
test (httpx 0.28 tops out near 1,000 req/s on one connection here and falls to a few hundred
with 32 concurrent ones), and on a 2-core machine the generator's CPU is taken from the
servers; the leaner the generator, the more the numbers say about the servers.

Input: one JSON object on stdin (``op`` = ``login`` | ``load`` | ``burst``). Output: one JSON
object on stdout. Cookies are handled by hand: ``refresh_token`` is Secure with
Path=/auth/refresh, which no jar would send over plain http.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None  # type: ignore[assignment]

REQUEST_TIMEOUT = 30.0
USER_AGENT = "kizuna-bench/1"


class HttpError(Exception):
    pass


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def cookies(self) -> dict[str, str]:
        """Name → value of every Set-Cookie (attributes dropped; deletions give '')."""
        out: dict[str, str] = {}
        for name, value in self.headers:
            if name == b"set-cookie":
                pair = value.decode("latin-1").split(";", 1)[0]
                cname, _, cvalue = pair.partition("=")
                out[cname.strip()] = cvalue.strip().strip('"')
        return out


class _Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection, one request in flight at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Reply] | None = None
        self.open = False
        self.keep_alive = True
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(HttpError(f"bad response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = []
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        reply = Reply(self.parser.get_status_code(), self._headers, b"".join(self._body))
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(reply)

    def send(self, raw: bytes) -> asyncio.Future[Reply]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter


class Connection:
    """A keep-alive connection that reconnects when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._proto: _Protocol | None = None

    async def request(self, raw: bytes) -> Reply:
        proto = self._proto
        if proto is None or not proto.open or not proto.keep_alive:
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            loop = asyncio.get_running_loop()
            _, proto = await loop.create_connection(_Protocol, self.host, self.port)
            self._proto = proto
        try:
            return await asyncio.wait_for(proto.send(raw), REQUEST_TIMEOUT)
        except BaseException:
            if proto.transport is not None:
                proto.transport.close()
            self._proto = None
            raise

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


def build(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def userinfo_request(host: str, access_token: str, path: str = "/api/userinfo") -> bytes:
    return build("GET", path, host, {"Authorization": f"Bearer {access_token}"})


def refresh_request(host: str, refresh_token: str) -> bytes:
    return build("POST", "/auth/refresh", host, {"Cookie": f"refresh_token={refresh_token}"})


def login_request(host: str, email: str, password: str) -> bytes:
    body = json.dumps({"email": email, "password": password}).encode()
    return build("POST", "/auth/login", host, {"Content-Type": "application/json"}, body)


# -- measurement ----------------------------------------------------------------------------


@dataclass
class Window:
    """Collects latencies of requests that completed inside [start, end)."""

    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def record(self, sent: float, done: float, status: int | str) -> None:
        if not (self.start <= done < self.end):
            return
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if isinstance(status, int) and 200 <= status < 300:
            self.latencies.append((done - sent) * 1000.0)
        else:
            self.errors += 1

    def summary(self) -> dict[str, Any]:
        span = self.end - self.start
        ok = sorted(self.latencies)
        return {
            "ok": len(ok),
            "errors": self.errors,
            "statuses": self.statuses,
            "seconds": round(span, 3),
            "rps": len(ok) / span if span > 0 else 0.0,
            "p50_ms": quantile(ok, 0.50),
            "p90_ms": quantile(ok, 0.90),
            "p99_ms": quantile(ok, 0.99),
            "max_ms": ok[-1] if ok else None,
        }


def quantile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank quantile."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-q * len(sorted_values) // 1)))  # ceil(q * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


# -- operations -----------------------------------------------------------------------------


async def op_login(spec: dict[str, Any]) -> dict[str, Any]:
    """Open ``count`` sessions (each a login on its own device) and return their tokens."""
    host, port = spec["host"], spec["port"]
    hostname = f"{host}:{port}"
    count, concurrency = int(spec["count"]), int(spec.get("concurrency", 8))
    raw = login_request(hostname, spec["email"], spec["password"])
    sessions: list[dict[str, str]] = []
    failures: list[str] = []
    todo = iter(range(count))

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            for _ in todo:
                reply = await conn.request(raw)
                cookies = reply.cookies()
                if reply.status != 200 or not cookies.get("refresh_token"):
                    failures.append(f"{reply.status} {reply.body[:200]!r}")
                    continue
                sessions.append(
                    {"access": cookies["access_token"], "refresh": cookies["refresh_token"]}
                )
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"sessions": sessions, "failures": failures}


async def op_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed loop: ``clients`` connections, each sending its next request as soon as the
    previous one is answered, for ``warmup`` + ``duration`` seconds; only the ``duration``
    part is measured. Refresh clients rotate their own session's cookie and never give up a
    request in flight (a lost answer would cost the session, refresh tokens are single-use)."""
    host, port = spec["host"], spec["port"]
    hostname = f"{host}:{port}"
    kind = spec["kind"]
    clients = int(spec["clients"])
    sessions: list[dict[str, str]] = spec["sessions"]
    if kind == "refresh" and len(sessions) < clients:
        raise SystemExit(f"refresh needs one session per client: {len(sessions)} < {clients}")
    now = time.perf_counter()
    window = Window(
        now + float(spec["warmup"]), now + float(spec["warmup"]) + float(spec["duration"])
    )
    dead: list[str] = []

    async def client(index: int) -> None:
        conn = Connection(host, port)
        session = sessions[index % len(sessions)]
        if kind == "userinfo":
            raw = userinfo_request(hostname, session["access"], spec.get("path", "/api/userinfo"))
        try:
            while time.perf_counter() < window.end:
                if kind == "refresh":
                    raw = refresh_request(hostname, session["refresh"])
                sent = time.perf_counter()
                try:
                    reply = await conn.request(raw)
                except (HttpError, OSError, TimeoutError) as exc:
                    window.record(sent, time.perf_counter(), type(exc).__name__)
                    await asyncio.sleep(0.01)
                    continue
                window.record(sent, time.perf_counter(), reply.status)
                if kind == "refresh":
                    if reply.status != 200:
                        dead.append(f"{reply.status} {reply.body[:200]!r}")
                        session["refresh"] = ""
                        return  # its session is over; the error is counted
                    cookies = reply.cookies()
                    session["refresh"] = cookies.get("refresh_token", "")
                    if cookies.get("access_token"):
                        session["access"] = cookies["access_token"]
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    result = window.summary()
    result["clients"] = clients
    result["dead_sessions"] = dead[:5]
    if kind == "refresh":
        result["sessions"] = sessions
    return result


async def op_burst(spec: dict[str, Any]) -> dict[str, Any]:
    """Userinfo latency at a fixed, moderate request rate, alone ("idle") and while
    ``logins.concurrency`` clients post logins back to back (bounded by ``logins.max`` per
    phase) ("burst"). The two phases alternate ``rounds`` times and each one's latencies are
    pooled: slow drifts of a shared machine then touch both alike, and a p99 over several
    thousand requests is steadier than one over a single phase's.
    The rate is paced (not closed-loop) so that the comparison shows stalls of the event loop
    rather than the queueing of a saturated server."""
    host, port = spec["host"], spec["port"]
    hostname = f"{host}:{port}"
    clients, rate = int(spec["clients"]), float(spec["rate"])
    duration, warmup = float(spec["duration"]), float(spec["warmup"])
    sessions: list[dict[str, str]] = spec["sessions"]
    interval = clients / rate
    login_spec = spec["logins"]
    conns = [Connection(host, port) for _ in range(clients)]
    pooled: dict[str, list[tuple[Window, Window, int]]] = {}

    async def paced(index: int, window: Window, until: float) -> None:
        conn = conns[index]
        raw = userinfo_request(hostname, sessions[index % len(sessions)]["access"])
        due = time.perf_counter() + interval * index / clients
        while due < until:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            try:
                reply = await conn.request(raw)
                window.record(sent, time.perf_counter(), reply.status)
            except (HttpError, OSError, TimeoutError) as exc:
                window.record(sent, time.perf_counter(), type(exc).__name__)
            due += interval

    async def phase(name: str) -> None:
        with_logins = name == "burst"
        start = time.perf_counter()
        window = Window(start + warmup, start + warmup + duration)
        logins = Window(start + warmup, start + warmup + duration)
        stop_logins = window.end
        budget = [int(login_spec["max"])]
        # Each login client signs in to one of the accounts, round robin: at most ten checks
        # of one account's password may be in flight at once (the throttle counts them first).
        raw_logins = [
            login_request(hostname, email, login_spec["password"])
            for email in login_spec["emails"]
        ]

        async def login_client(index: int) -> None:
            raw_login = raw_logins[index % len(raw_logins)]
            conn = Connection(host, port)
            try:
                while time.perf_counter() < stop_logins and budget[0] > 0:
                    budget[0] -= 1
                    sent = time.perf_counter()
                    try:
                        reply = await conn.request(raw_login)
                        logins.record(sent, time.perf_counter(), reply.status)
                    except (HttpError, OSError, TimeoutError) as exc:
                        logins.record(sent, time.perf_counter(), type(exc).__name__)
            finally:
                conn.close()

        tasks = [paced(i, window, window.end) for i in range(clients)]
        if with_logins:
            tasks += [login_client(i) for i in range(int(login_spec["concurrency"]))]
        await asyncio.gather(*tasks)
        sent = int(login_spec["max"]) - budget[0] if with_logins else 0
        pooled.setdefault(name, []).append((window, logins, sent))

    out: dict[str, Any] = {"clients": clients, "rate": rate}
    try:
        for _ in range(int(spec.get("rounds", 1))):
            for name in spec.get("phases", ["idle", "burst"]):
                await phase(name)
    finally:
        for conn in conns:
            conn.close()
    for name, parts in pooled.items():
        out[name] = merged([window for window, _, _ in parts]).summary()
        out[name]["rounds"] = len(parts)
        if name == "burst":
            out[name]["logins"] = merged([logins for _, logins, _ in parts]).summary()
            out[name]["logins_sent"] = sum(sent for _, _, sent in parts)
    return out


def merged(windows: list[Window]) -> Window:
    """One window holding the requests of several, spanning their summed length."""
    span = sum(w.end - w.start for w in windows)
    out = Window(0.0, span)
    for w in windows:
        out.latencies.extend(w.latencies)
        out.errors += w.errors
        for key, count in w.statuses.items():
            out.statuses[key] = out.statuses.get(key, 0) + count
    return out


OPS = {"login": op_login, "load": op_load, "burst": op_burst}


def main() -> None:
    spec = json.load(sys.stdin)
    coro = OPS[spec["op"]](spec)
    result = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
