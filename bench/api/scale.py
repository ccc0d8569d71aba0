"""Refresh and userinfo latency with 10 k and with 1 M stored sessions on PostgreSQL, in the
same run, and the purge at that size (``kizuna purge``).

    .venv/bin/python bench/api/scale.py              # ~11-13 minutes (the 1 M fill: 2-5)
    .venv/bin/python bench/api/scale.py --quick      # 20 k instead of 1 M, smoke run

It starts a throwaway PostgreSQL on loopback (``api/tests/postgres.py``), makes two databases
with ``run.py``'s ``prepare_store``, and fills each with stored sessions of other users,
generated inside PostgreSQL in one ``INSERT … SELECT`` per table (bounded: a few minutes for a
million): per session two refresh-token records (one rotated, one current); one session in
eight revoked a month ago, with its change-feed entry. Then one ``kizuna serve`` per database
(periodic purge off), and ``run.py``'s load generator: for each kind, the cells alternate
10 k / 1 M, ``--rounds`` times, so both see the same machine; the table gives the median of the
rounds and the 1 M / 10 k ratio (target ≤ 1.2×). Then the statements of both endpoints and a
purge batch under ``EXPLAIN (ANALYZE, BUFFERS)`` on each database. Last, in the 1 M database:
rotation with no purge, then rotation while ``kizuna purge`` deletes the ended sessions (about
500 k rows), and the purge's rows per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from run import (
    EMAIL,
    HOST,
    KIZUNA,
    PATIENCE,
    Noise,
    Server,
    clean_env,
    free_port,
    load,
    login_sessions,
    prepare_store,
    start,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "api"))

from tests.postgres import create_database, postgres_server  # noqa: E402

FILLER_USERS = 1000
ENDED_EVERY = 8  # one stored session in this many was revoked a month ago

# Generated in PostgreSQL: ids are UUIDs made of md5 of a counter; times relative to now (UTC,
# the store keeps naive UTC).
FILL_USERS = """
INSERT INTO users (id, email, name, password_hash, roles, disabled, created_at,
                   password_changed_at, updated_at)
SELECT md5('u' || i)::uuid::text, 'filler-' || i || '@example.com', 'Filler', 'x', '[]'::json,
       false, t.now - interval '60 days', t.now - interval '60 days', t.now - interval '60 days'
FROM generate_series(1, $1::int) AS i, (SELECT now() AT TIME ZONE 'utc' AS now) AS t
"""
FILL_SESSIONS = """
INSERT INTO sessions (id, user_id, device_id, user_agent, ip, created_at, last_used_at,
                      expires_at, revoked_at, revoke_reason)
SELECT md5('s' || i)::uuid::text, md5('u' || (i % $2::int + 1))::uuid::text, md5('d' || i),
       'bench filler', '127.0.0.1', c.created, c.created + interval '1 hour',
       c.created + interval '90 days',
       CASE WHEN i % $3::int = 0 THEN t.now - interval '30 days' END,
       CASE WHEN i % $3::int = 0 THEN 'logout' END
FROM generate_series(1, $1::int) AS i, (SELECT now() AT TIME ZONE 'utc' AS now) AS t,
     LATERAL (SELECT t.now - (i % 2592000) * interval '1 second' - interval '31 days' AS created)
     AS c
"""
FILL_TOKENS = """
INSERT INTO refresh_tokens (id, session_id, user_id, device_id, issued_at, expires_at,
                            rotated_at, replaced_by, revoked_at, revoke_reason, key_id)
SELECT md5('t' || i || '-' || k)::uuid::text, md5('s' || i)::uuid::text,
       md5('u' || (i % $2::int + 1))::uuid::text, md5('d' || i),
       c.issued, c.issued + interval '30 days',
       CASE WHEN k = 0 THEN c.issued + interval '5 minutes' END,
       CASE WHEN k = 0 THEN md5('t' || i || '-1')::uuid::text END,
       CASE WHEN i % $3::int = 0 THEN t.now - interval '30 days' END,
       CASE WHEN i % $3::int = 0 THEN 'logout' END,
       'k'
FROM generate_series(1, $1::int) AS i, generate_series(0, 1) AS k,
     (SELECT now() AT TIME ZONE 'utc' AS now) AS t,
     LATERAL (SELECT t.now - (i % 86400) * interval '1 second' + k * interval '5 minutes'
              AS issued) AS c
"""
FILL_CHANGES = """
INSERT INTO changes (kind, key, at)
SELECT 'session', md5('s' || i)::uuid::text, t.now - interval '30 days'
FROM generate_series($2::int, $1::int, $2::int) AS i, (SELECT now() AT TIME ZONE 'utc' AS now) AS t
"""


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def fill(url: str, sessions: int) -> float:
    """Stored sessions of filler users; returns the seconds it took."""
    import asyncpg

    started = time.monotonic()
    connection = await asyncpg.connect(asyncpg_url(url))
    try:
        await connection.execute(FILL_USERS, FILLER_USERS)
        args = (sessions, FILLER_USERS, ENDED_EVERY)
        await connection.execute(FILL_SESSIONS, *args)
        await connection.execute(FILL_TOKENS, *args)
        await connection.execute(FILL_CHANGES, sessions, ENDED_EVERY)
        # Vacuumed and analysed now, so that autovacuum does not take the machine during the
        # cells after a bulk insert of millions of rows.
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return time.monotonic() - started


async def table_rows(url: str) -> dict[str, int]:
    import asyncpg

    connection = await asyncpg.connect(asyncpg_url(url))
    try:
        return {
            name: int(await connection.fetchval(f"SELECT count(*) FROM {name}"))  # noqa: S608
            for name in ("sessions", "refresh_tokens", "changes")
        }
    finally:
        await connection.close()


# What a refresh, a userinfo miss and a purge batch read, as PostgreSQL runs them: the same
# statements as the store's (``store/refresh_tokens.py``, ``store/sessions.py``,
# ``store/changes.py``), for one stored session picked at random. Buffers touched and server
# time do not depend on the machine's other load, unlike the HTTP latencies.
PLANS = {
    "refresh: token lookup": (
        "SELECT * FROM refresh_tokens JOIN sessions ON sessions.id = refresh_tokens.session_id "
        "JOIN users ON users.id = sessions.user_id WHERE refresh_tokens.id = $1",
        "token",
    ),
    "refresh: session's current token": (
        "SELECT * FROM refresh_tokens WHERE session_id = $1 AND rotated_at IS NULL "
        "AND revoked_at IS NULL ORDER BY issued_at DESC LIMIT 1",
        "session",
    ),
    "userinfo: session and user": (
        "SELECT * FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.id = $1",
        "session",
    ),
    "userinfo: change-feed poll": (
        "SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT 1000",
        "seq",
    ),
    "purge: one batch of 1,000 records": (
        "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens "
        "WHERE revoked_at < $1 ORDER BY revoked_at LIMIT 1000)",
        "week_ago",
    ),
}


async def plans(url: str, sessions: int, samples: int = 20) -> dict[str, dict[str, float]]:
    """Median shared buffers touched and server milliseconds per statement (EXPLAIN ANALYZE,
    each in a transaction rolled back)."""
    import random

    import asyncpg

    connection = await asyncpg.connect(asyncpg_url(url))
    out: dict[str, dict[str, float]] = {}
    try:
        newest = int(await connection.fetchval("SELECT max(seq) FROM changes"))
        for name, (sql, kind) in PLANS.items():
            buffers, ms = [], []
            for _ in range(samples if kind != "week_ago" else 3):
                i = random.randint(1, sessions)  # noqa: S311 - not a secret
                arg: Any = {
                    "token": f"{uuid_of('t' + str(i) + '-1')}",
                    "session": f"{uuid_of('s' + str(i))}",
                    "seq": newest,
                    "week_ago": None,
                }[kind]
                transaction = connection.transaction()
                await transaction.start()
                try:
                    if kind == "week_ago":
                        arg = await connection.fetchval(
                            "SELECT (now() AT TIME ZONE 'utc') - interval '7 days'"
                        )
                    plan = await connection.fetchval(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, arg
                    )
                finally:
                    await transaction.rollback()
                top = json.loads(plan)[0]
                node = top["Plan"]
                buffers.append(node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0))
                ms.append(float(top["Execution Time"]))
            out[name] = {"buffers": statistics.median(buffers), "ms": statistics.median(ms)}
    finally:
        await connection.close()
    return out


def uuid_of(text: str) -> str:
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(text.encode()).hexdigest()))  # noqa: S324 - as the fill


def postgres_group(port: int) -> int | None:
    """The process group of the PostgreSQL server on ``port`` (its backends share it), so the
    noise measurement counts it as part of this run."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            if b"postgres" not in cmdline[0] or str(port).encode() not in b" ".join(cmdline):
                continue
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[2])
        except OSError:
            continue
    return None


class Store:
    def __init__(self, label: str, sessions: int, url: str, workdir: Path) -> None:
        self.label = label
        self.sessions = sessions
        self.url = url
        self.env = {
            "KIZUNA_DATA_DIR": str(workdir / label),
            "KIZUNA_DATABASE_URL": url,
            "KIZUNA_PURGE_INTERVAL": "0",  # the purge is measured on its own, below
            "KIZUNA_LOG_LEVEL": "warning",
        }
        self.server: Server | None = None
        self.clients: list[dict[str, str]] = []
        self.plans: dict[str, dict[str, float]] = {}


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def purge_while_rotating(
    store: Store, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A rotation cell whose measured window starts once ``kizuna purge`` is under way."""
    server = store.server
    assert server is not None
    PATIENCE.retries = 0  # the purge happens once: a noisy cell cannot be redone
    started = time.monotonic()
    command = subprocess.Popen(
        [KIZUNA, "purge"],
        env=clean_env({**store.env, "KIZUNA_LOG_LEVEL": "info"}),  # for the "purge" line
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
    )
    time.sleep(args.purge_lead)  # the command starts up (imports, connections)
    spec = argparse.Namespace(warmup=1.0, duration=args.purge_window)
    during = load(server, "refresh", args.clients, store.clients, spec)
    stdout, stderr = command.communicate(timeout=900)
    took = time.monotonic() - started
    if command.returncode != 0:
        raise SystemExit(f"kizuna purge failed:\n{stderr[-3000:]}")
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+): (\d+)$", stdout, re.MULTILINE)}
    deleted = sum(counts.values())
    # The purge's own time (its log line), without the command's start-up.
    logged = [json.loads(line) for line in stdout.splitlines() if '"event":"purge"' in line]
    seconds = float(logged[0]["seconds"]) if logged else took
    return during, {
        "counts": counts,
        "rows": deleted,
        "seconds": seconds,
        "command_seconds": took,
        "rows_per_s": deleted / seconds if seconds else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 k instead of 1 M, short cells")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5, help="10 k / 1 M alternations per kind")
    parser.add_argument("--purge-window", type=float, default=15.0)
    parser.add_argument(
        "--purge-lead", type=float, default=4.0, help="seconds for `kizuna purge` to start"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.large, args.duration, args.rounds, args.purge_window = 20_000, 3.0, 1, 4.0
    PATIENCE.wait, PATIENCE.retries = 5.0, 1
    PATIENCE.until = time.monotonic() + 900

    workdir = Path(tempfile.mkdtemp(prefix="kizuna-bench-scale-"))
    started = time.monotonic()
    pg_port = free_port()
    with postgres_server(pg_port) as admin_url:
        group = postgres_group(pg_port)
        stores = [
            Store("10k", args.small, create_database(admin_url), workdir),
            Store(
                "1M" if not args.quick else "20k", args.large, create_database(admin_url), workdir
            ),
        ]
        fills: dict[str, float] = {}
        for store in stores:
            prepare_store(workdir, store.env, [EMAIL])
            fills[store.label] = asyncio.run(fill(store.url, store.sessions))
            store.plans = asyncio.run(plans(store.url, store.sessions))
            print(
                f"   {store.label}: {store.sessions:,} sessions filled in "
                f"{fills[store.label]:.0f} s",
                file=sys.stderr,
            )
        try:
            for store in stores:
                port = free_port()
                store.server = start(
                    f"kizuna-{store.label}",
                    [KIZUNA, "serve", "--host", HOST, "--port", str(port)],
                    store.env,
                    workdir,
                    port,
                )
            for store in stores:
                assert store.server is not None
                wait_ready(store.server, "/readyz")
                store.clients = login_sessions(store.server, args.clients)
            Noise.groups = {s.server.proc.pid for s in stores if s.server} | (
                {group} if group else set()
            )
            cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for round_ in range(args.rounds):
                for kind in ("userinfo", "refresh"):
                    order = stores if round_ % 2 == 0 else stores[::-1]
                    for store in order:
                        assert store.server is not None
                        r = load(store.server, kind, args.clients, store.clients, args)
                        cells.setdefault((kind, store.label), []).append(r)
                        print(
                            f"   {kind} {store.label}: {r['rps']:.0f}/s p50 "
                            f"{fmt(r['p50_ms'])} p99 {fmt(r['p99_ms'])} ms, "
                            f"{r['errors']} errors, other CPU {r['other_cpu']:.0%}",
                            file=sys.stderr,
                        )

            large = stores[1]
            assert large.server is not None
            before_purge = asyncio.run(table_rows(large.url))
            quiet = load(
                large.server,
                "refresh",
                args.clients,
                large.clients,
                argparse.Namespace(warmup=1.0, duration=args.purge_window),
            )
            during, purge = purge_while_rotating(large, args, workdir)
            after_purge = asyncio.run(table_rows(large.url))
        finally:
            for store in stores:
                if store.server is not None:
                    store.server.stop()
    elapsed = time.monotonic() - started

    small_label, large_label = stores[0].label, stores[1].label
    print(
        f"\nKizuna scale bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"PostgreSQL on loopback, 1 worker, {args.clients} clients, {args.duration:g} s per "
        f"cell, median of {args.rounds} round(s); {elapsed:.0f} s in all"
        f"{' (QUICK: smoke run)' if args.quick else ''}\n"
    )
    print(
        f"| endpoint | {small_label} p50 ms | {small_label} p99 ms | {large_label} p50 ms "
        f"| {large_label} p99 ms | p50 ratio | p99 ratio | target | result | errors |"
    )
    print("|" + "---|" * 10)
    verdicts = []
    for kind, label in (("userinfo", "GET /api/userinfo"), ("refresh", "POST /auth/refresh")):
        small, big = cells[(kind, small_label)], cells[(kind, large_label)]
        p50s, p99s = median([c["p50_ms"] for c in small]), median([c["p99_ms"] for c in small])
        p50l, p99l = median([c["p50_ms"] for c in big]), median([c["p99_ms"] for c in big])
        r50, r99 = ratio(p50l, p50s), ratio(p99l, p99s)
        ok = r50 is not None and r99 is not None and r50 <= 1.2 and r99 <= 1.2
        errors = sum(c["errors"] for c in small + big)
        # A smoke run (CI, 20 k) checks that everything answers; its ratios are for reading.
        verdicts.append((ok or args.quick) and errors == 0)
        print(
            f"| {label} | {fmt(p50s)} | {fmt(p99s)} | {fmt(p50l)} | {fmt(p99l)} "
            f"| {fmt(r50)}× | {fmt(r99)}× | ≤ 1.2× | {'pass' if ok else '**FAIL**'} "  # noqa: RUF001
            f"| {errors} |"
        )
    print(
        f"\n| statement (EXPLAIN ANALYZE, median) | {small_label} buffers | {small_label} ms "
        f"| {large_label} buffers | {large_label} ms |"
    )
    print("|---|---|---|---|---|")
    for name in PLANS:
        a, b = stores[0].plans[name], stores[1].plans[name]
        print(f"| {name} | {a['buffers']:g} | {a['ms']:.3f} | {b['buffers']:g} | {b['ms']:.3f} |")
    print(
        f"\nStored before the purge ({large_label}): {before_purge['sessions']:,} sessions, "
        f"{before_purge['refresh_tokens']:,} refresh-token records, "
        f"{before_purge['changes']:,} feed entries; after: {after_purge['sessions']:,}, "
        f"{after_purge['refresh_tokens']:,}, {after_purge['changes']:,}.\n"
    )
    print("| rotation (POST /auth/refresh) | req/s | p50 ms | p99 ms | max ms | errors |")
    print("|---|---|---|---|---|---|")
    for name, r in (("no purge", quiet), ("while the purge runs", during)):
        print(
            f"| {name} | {r['rps']:,.0f} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} "
            f"| {fmt(r['max_ms'])} | {r['errors']} |"
        )
    counts = ", ".join(f"{k} {v:,}" for k, v in purge["counts"].items() if v)
    print(
        f"\nPurge: {purge['rows']:,} rows ({counts}) in {purge['seconds']:.1f} s = "
        f"{purge['rows_per_s']:,.0f} rows/s ({purge['command_seconds']:.1f} s for the whole "
        f"`kizuna purge` command), while {args.clients} clients rotated; "
        f"fill: {', '.join(f'{k} {v:.0f} s' for k, v in fills.items())}."
    )
    if purge["command_seconds"] < args.purge_lead + 1.0 + args.purge_window:
        print("(the purge ended before the measured window did: part of the window had no purge)")
    noisy = max(c["other_cpu"] for group_ in cells.values() for c in group_)
    print(f"\nmost CPU taken by other processes during a cell: {noisy:.0%}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cells": {f"{k[0]} {k[1]}": v for k, v in cells.items()},
                    "quiet": quiet,
                    "during": during,
                    "purge": purge,
                    "plans": {store.label: store.plans for store in stores},
                },
                indent=2,
                default=str,
            )
        )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(verdicts) and during["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
