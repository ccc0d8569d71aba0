"""How fast does a revocation reach every API replica, and what does the change-feed polling
cost the database? (The question behind Redis's place in Kizuna, docs/architecture.md.)

    .venv/bin/python bench/api/replicas.py              # 8 replicas, 50 revocations (~2 min)
    .venv/bin/python bench/api/replicas.py --quick      # 8 replicas, 10 revocations

It starts a real PostgreSQL on loopback in a throwaway directory (``api/tests/postgres.py``),
then ``kizuna serve`` replicas (one worker each, one shared data dir for the signing keys, one
database, no Redis) on free 127.0.0.1 ports, and keeps a light load on every replica: one
signed-in client per replica asking ``GET /api/userinfo`` every 50 ms (for the one-replica
window, the same clients all on the one replica: the same traffic on 1 process or on N).

1. **Cost, 1 replica then N**: over a window of light load, userinfo latency (p50/p99) seen by
   the load clients, and the database's transactions per second and scans of the ``changes``
   table per second (``pg_stat_database.xact_commit``, ``pg_stat_user_tables``; PostgreSQL
   flushes these counters about once a second, so short windows are ±1 s of counts).
2. **Revocation**: ``--revocations`` times: sign a session in on one replica, have every
   replica serve it once (so every one has it cached), sign it out on one replica (taking
   turns), then ask every replica for ``GET /api/userinfo`` with the revoked token every
   ``--probe-ms`` until it answers 401. The time from the logout's answer to each replica's
   first 401 is recorded (bounded: ``--give-up`` seconds).

Prints a markdown table. Loopback only; every process it starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "api"))

from run import KIZUNA, PASSWORD, Server, free_port, prepare_store, start, wait_ready
from tests.postgres import create_database, postgres_server

HOST = "127.0.0.1"
LOAD_EVERY = 0.05  # seconds between one load client's requests


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the database's own counters -----------------------------------------------------------


def pg_counters(url: str) -> tuple[int, int]:
    """(transactions committed in this database, scans of the ``changes`` table) so far."""
    rest = url.split("@", 1)[1]
    host_port, name = rest.split("/", 1)
    host, port = host_port.split(":")
    query = (
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
        " (SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
        "  WHERE relname = 'changes')"
    )
    done = subprocess.run(
        ["psql", "-h", host, "-p", port, "-U", "kizuna", "-d", name, "-Atc", query],
        capture_output=True,
        text=True,
        check=True,
    )
    xacts, scans = done.stdout.strip().split("|")
    return int(xacts), int(scans)


# -- clients -------------------------------------------------------------------------------


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/auth/login", json={"email": email, "password": PASSWORD}
    )
    response.raise_for_status()
    # From the Set-Cookie line itself: the cookie is Secure, and this is plain HTTP.
    for line in response.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        if name == "access_token":
            return {
                "access_token": rest.split(";", 1)[0],
                "session_id": response.json()["session_id"],
            }
    raise RuntimeError("no access token in the login's answer")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def light_load(
    client: httpx.AsyncClient, token: str, stats: Stats, stop: asyncio.Event
):
    """One signed-in client: a userinfo request every LOAD_EVERY seconds, until ``stop``."""
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await client.get("/api/userinfo", headers=bearer(token))
            if response.status_code == 200:
                stats.latencies.append(time.monotonic() - started)
            else:
                stats.errors += 1
        except httpx.HTTPError:
            stats.errors += 1
        next_at += LOAD_EVERY
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def until_refused(
    client: httpx.AsyncClient, token: str, since: float, probe: float, give_up: float
) -> float:
    """Seconds from ``since`` until this replica refuses ``token`` (``give_up`` if never)."""
    while True:
        response = await client.get("/api/userinfo", headers=bearer(token))
        now = time.monotonic()
        if response.status_code == 401:
            return now - since
        if response.status_code != 200:
            raise RuntimeError(
                f"userinfo answered {response.status_code}: {response.text}"
            )
        if now - since >= give_up:
            return give_up
        await asyncio.sleep(probe)


# -- the run -------------------------------------------------------------------------------


@dataclass
class Phase:
    replicas: int
    seconds: float
    stats: Stats
    xacts_per_s: float
    scans_per_s: float


async def measure_cost(
    clients: list[httpx.AsyncClient], tokens: list[str], db_url: str, seconds: float
) -> Phase:
    stats = Stats()
    stop = asyncio.Event()
    loads = [
        asyncio.create_task(light_load(c, t, stats, stop))
        for c, t in zip(clients, tokens, strict=True)
    ]
    await asyncio.sleep(2.0)  # past start-up polls and the first cache fills
    stats.latencies.clear()
    x0, s0 = await asyncio.to_thread(pg_counters, db_url)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    x1, s1 = await asyncio.to_thread(pg_counters, db_url)
    elapsed = time.monotonic() - t0
    stop.set()
    await asyncio.gather(*loads)
    return Phase(
        len(set(map(id, clients))),
        elapsed,
        stats,
        (x1 - x0) / elapsed,
        (s1 - s0) / elapsed,
    )


async def measure_revocations(
    clients: list[httpx.AsyncClient],
    load_tokens: list[str],
    emails: list[str],
    args: argparse.Namespace,
) -> tuple[list[list[float]], Stats]:
    """Per revocation, the delay of each replica (index = replica)."""
    stats = Stats()
    stop = asyncio.Event()
    loads = [
        asyncio.create_task(light_load(c, t, stats, stop))
        for c, t in zip(clients, load_tokens, strict=True)
    ]
    delays: list[list[float]] = []
    rng = random.Random(11)
    try:
        for i in range(args.revocations):
            home = clients[i % len(clients)]
            # A fresh client per session: its cookie jar holds only this session.
            async with httpx.AsyncClient(
                base_url=str(home.base_url), timeout=30
            ) as own:
                session = await login(own, emails[i % len(emails)])
            token = session["access_token"]
            warm = await asyncio.gather(
                *(c.get("/api/userinfo", headers=bearer(token)) for c in clients)
            )
            assert all(r.status_code == 200 for r in warm), [
                r.status_code for r in warm
            ]
            # Revocations land at random points of the replicas' polling cycles.
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            ending = clients[(i + 3) % len(clients)]
            out = await ending.post("/auth/logout", headers=bearer(token))
            assert out.status_code == 204, out.text
            since = time.monotonic()
            delays.append(
                list(
                    await asyncio.gather(
                        *(
                            until_refused(
                                c, token, since, args.probe_ms / 1000, args.give_up
                            )
                            for c in clients
                        )
                    )
                )
            )
    finally:
        stop.set()
        await asyncio.gather(*loads)
    return delays, stats


def start_replica(workdir: Path, env: dict[str, str], index: int) -> Server:
    port = free_port()
    argv = [KIZUNA, "serve", "--host", HOST, "--port", str(port), "--workers", "1"]
    return start(f"replica-{index}", argv, env, workdir, port)


async def run(args: argparse.Namespace, workdir: Path, db_url: str) -> str:
    env = {
        "KIZUNA_DATA_DIR": str(workdir / "data"),
        "KIZUNA_DATABASE_URL": db_url,
        "KIZUNA_LOG_LEVEL": "warning",
        "KIZUNA_SESSION_CACHE_TTL": str(args.ttl),
    }
    emails = [f"bench-{i}@example.com" for i in range(args.replicas)]
    prepare_store(workdir, env, emails)
    servers: list[Server] = []
    clients: list[httpx.AsyncClient] = []
    try:
        servers.append(start_replica(workdir, env, 0))
        wait_ready(servers[0], "/readyz")
        clients.append(
            httpx.AsyncClient(base_url=f"http://{HOST}:{servers[0].port}", timeout=30)
        )
        load_tokens = []
        for i in range(args.replicas):
            async with httpx.AsyncClient(
                base_url=str(clients[0].base_url), timeout=30
            ) as own:
                load_tokens.append((await login(own, emails[i]))["access_token"])
        # The same traffic (one client per replica to be) on one replica, then spread over N.
        one = await measure_cost(
            clients * args.replicas, load_tokens, db_url, args.window
        )
        for i in range(1, args.replicas):
            servers.append(start_replica(workdir, env, i))
        for server in servers[1:]:
            wait_ready(server, "/readyz")
            clients.append(
                httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}", timeout=30)
            )
        many = await measure_cost(clients, load_tokens, db_url, args.window)
        delays, during = await measure_revocations(clients, load_tokens, emails, args)
    finally:
        for client in clients:
            await client.aclose()
        for server in servers:
            server.stop()
    return report(args, one, many, delays, during)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(
    args: argparse.Namespace,
    one: Phase,
    many: Phase,
    delays: list[list[float]],
    during: Stats,
) -> str:
    lines = [
        (
            f"Revocation across {args.replicas} replicas (PostgreSQL, change-feed polling, "
            f"KIZUNA_SESSION_CACHE_TTL={args.ttl}; light load: one userinfo every "
            f"{LOAD_EVERY * 1000:.0f} ms per replica; probes every {args.probe_ms} ms)"
        ),
        "",
        (
            "| load | replicas | userinfo p50 ms | userinfo p99 ms | requests | errors "
            "| DB transactions/s | `changes` scans/s |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in (one, many):
        lat = phase.stats.latencies
        lines.append(
            f"| light, {phase.seconds:.0f} s | {phase.replicas} | {ms(quantile(lat, 0.5))} "
            f"| {ms(quantile(lat, 0.99))} | {len(lat)} | {phase.stats.errors} "
            f"| {phase.xacts_per_s:.1f} | {phase.scans_per_s:.1f} |"
        )
    lat = during.latencies
    lines.append(
        f"| light + probes + revocations | {len(delays[0]) if delays else 0} "
        f"| {ms(quantile(lat, 0.5))} | {ms(quantile(lat, 0.99))} | {len(lat)} "
        f"| {during.errors} | | |"
    )
    all_delays = [d for row in delays for d in row]
    # The replica that served the logout forgets the session at once; the others poll.
    others = [
        d
        for i, row in enumerate(delays)
        for r, d in enumerate(row)
        if r != (i + 3) % len(row)
    ]
    per_replica_max = (
        [max(row[r] for row in delays) for r in range(len(delays[0]))] if delays else []
    )
    lines += [
        "",
        (
            "| revoked token refused after the logout's answer | n | p50 ms | p99 ms | max ms "
            f"| over 1 s | gave up ({args.give_up} s) |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for name, values in (
        ("every replica", all_delays),
        ("replicas other than the logout's", others),
    ):
        lines.append(
            f"| {name} | {len(values)} | {ms(quantile(values, 0.5))} | {ms(quantile(values, 0.99))} "
            f"| {ms(max(values))} | {sum(v > 1.0 for v in values)} "
            f"| {sum(v >= args.give_up for v in values)} |"
        )
    lines += [
        "",
        "Worst delay per replica (ms): " + ", ".join(ms(v) for v in per_replica_max),
        f"Mean over every replica: {ms(statistics.fmean(all_delays))} ms.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--revocations", type=int, default=50)
    parser.add_argument(
        "--window", type=float, default=15.0, help="seconds per cost window"
    )
    parser.add_argument("--probe-ms", type=int, default=20)
    parser.add_argument("--give-up", type=float, default=3.0)
    parser.add_argument(
        "--ttl", type=float, default=0.5, help="KIZUNA_SESSION_CACHE_TTL"
    )
    parser.add_argument(
        "--quick", action="store_true", help="10 revocations, 8 s windows"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.revocations, args.window = 10, 8.0
    with tempfile.TemporaryDirectory(prefix="kizuna-replicas-") as tmp:
        workdir = Path(tmp)
        with postgres_server(free_port()) as admin_url:
            db_url = create_database(admin_url)
            print(asyncio.run(run(args, workdir, db_url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
