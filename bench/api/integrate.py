"""Benchmark of Kizuna inside other people's apps (docs/integrate.md), against baselines
measured in the same run:

    .venv/bin/python bench/api/integrate.py            # full run (~2 minutes)
    .venv/bin/python bench/api/integrate.py --quick    # smoke run, verdicts not meaningful

Servers (subprocesses on free 127.0.0.1 ports, the uvicorn settings of ``kizuna serve``, one
worker each):

- ``host_app.py``: a host FastAPI app with Kizuna embedded (``Kizuna().install(app)``), its
  own middleware and exception handler, a business route with ``CurrentUser`` and the same
  route without auth, and a bare route with ``/api/userinfo``'s answer;
- ``bare_app.py``: the bare ``GET /api/userinfo`` of ``run.py``;
- ``resource_app.py`` twice: a resource server verifying the host's tokens with the
  ``kizuna-verifier`` package (JWKS from the host app), with its verification cache and with
  the cache off (every request a full signature check), each with an open route of the same
  shape as its baseline.

Each scenario alternates baseline and measured cells so both see the same machine; see
``bench/README.md`` ("Integration") for the rows and targets.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    Row,
    Server,
    clean_env,
    free_port,
    loadgen,
    login_sessions,
    patiently,
    prepare_store,
    progress,
    start,
    table,
    uvicorn_argv,
    wait_ready,
)


def start_servers(workdir: Path, signing_alg: str) -> dict[str, Server]:
    data = workdir / "kizuna"
    env = {"KIZUNA_DATA_DIR": str(data), "KIZUNA_SIGNING_ALG": signing_alg}
    prepare_store(workdir, env, [EMAIL])
    credential = subprocess.run(
        [KIZUNA, "services", "create", "bench-notes"],
        env=clean_env(env), check=True, cwd=workdir, capture_output=True, text=True,
    ).stdout
    secret = next(word for word in credential.split() if word.startswith("kzs_"))

    servers: dict[str, Server] = {}
    try:
        port = free_port()
        servers["host"] = start("host", uvicorn_argv("host_app:app", port, 1), env, workdir, port)
        port = free_port()
        servers["bare"] = start("bare", uvicorn_argv("bare_app:app", port, 1), {}, workdir, port)
        wait_ready(servers["host"], "/readyz")
        issuer = f"http://{HOST}:{servers['host'].port}"
        for name, cache in (("verifier", "default"), ("verifier-uncached", "0")):
            port = free_port()
            servers[name] = start(
                name,
                uvicorn_argv("resource_app:app", port, 1),
                {
                    "BENCH_KIZUNA_URL": issuer,
                    "BENCH_VERIFIER_CACHE": cache,
                    "BENCH_SERVICE_CREDENTIAL": secret,
                },
                workdir,
                port,
            )
        wait_ready(servers["bare"], "/api/userinfo")
        wait_ready(servers["verifier"], "/api/open")
        wait_ready(servers["verifier-uncached"], "/api/open")
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def cell(server: Server, path: str, clients: int, sessions: list[dict[str, str]],
         args: argparse.Namespace) -> dict[str, Any]:
    def measure() -> dict[str, Any]:
        return loadgen({
            "op": "load", "host": HOST, "port": server.port, "kind": "userinfo", "path": path,
            "clients": clients, "sessions": sessions, "warmup": args.warmup,
            "duration": args.duration,
        })

    return patiently(measure)


def compare(rows: list[Row], clients: int, sessions: list[dict[str, str]],
            args: argparse.Namespace, base: tuple[str, Server, str],
            measured: tuple[str, Server, str], floor: float) -> None:
    base_name, base_server, base_path = base
    name, server, path = measured
    b = cell(base_server, base_path, clients, sessions, args)
    m = cell(server, path, clients, sessions, args)
    ratio = m["rps"] / b["rps"] if b["rps"] else None
    rows.append(Row(base_name, 1, str(clients), b))
    rows.append(Row(name, 1, str(clients), m, ratio, f"≥ {floor:g}× baseline",  # noqa: RUF001
                    ratio is not None and ratio >= floor and m["errors"] == 0))
    progress(rows[-2:])


def reference(rows: list[Row], clients: int, sessions: list[dict[str, str]],
              args: argparse.Namespace, name: str, server: Server, path: str) -> None:
    """A row for the record, against the baseline row two above it (no target)."""
    r = cell(server, path, clients, sessions, args)
    base = rows[-2].result["rps"]
    rows.append(Row(name, 1, str(clients), r, r["rps"] / base if base else None))
    progress(rows[-1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--clients", default="32", help="comma-separated (default 32)")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per cell")
    parser.add_argument("--budget", type=float, default=180.0,
                        help="seconds after which nobody waits for quiet or redoes a cell")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--signing-alg", default="ES256", choices=["ES256", "RS256", "EdDSA"],
                        help="Kizuna's KIZUNA_SIGNING_ALG (what an uncached check costs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.duration, args.warmup = "16", 1.5, 0.5
        PATIENCE.wait, PATIENCE.retries = 2.0, 0
    PATIENCE.until = time.monotonic() + args.budget
    clients_list = [int(c) for c in str(args.clients).split(",")]

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="kizuna-bench-integrate-"))
    servers = start_servers(workdir, args.signing_alg)
    Noise.groups = {server.proc.pid for server in servers.values()}
    rows: list[Row] = []
    try:
        sessions = login_sessions(servers["host"], max(clients_list))
        host, bare = servers["host"], servers["bare"]
        for clients in clients_list:
            compare(rows, clients, sessions, args,
                    ("host: /api/notes/open, no auth (baseline)", host, "/api/notes/open"),
                    ("host: /api/notes with CurrentUser", host, "/api/notes"), 0.8)
            reference(rows, clients, sessions, args,
                      "host: the same behind a do-nothing dependency (FastAPI's floor)", host,
                      "/api/notes/noop")
            compare(rows, clients, sessions, args,
                    ("host: /bare/userinfo, no auth (baseline)", host, "/bare/userinfo"),
                    ("host: embedded GET /api/userinfo", host, "/api/userinfo"), 0.85)
            # For the record: what the host's own stack (FastAPI routing, its middleware)
            # costs against bare_app.py's single route. No target: not Kizuna's cost.
            b = cell(bare, "/api/userinfo", clients, sessions, args)
            rows.append(Row("bare_app.py GET (for reference)", 1, str(clients), b))
            progress(rows[-1:])
            for name, floor, label in (("verifier", 0.85, "cached"),
                                       ("verifier-uncached", 0.5, "uncached")):
                server = servers[name]
                compare(rows, clients, sessions, args,
                        (f"resource server ({label}): /api/open, no auth (baseline)", server,
                         "/api/open"),
                        (f"resource server ({label}): /api/notes with CurrentUser", server,
                         "/api/notes"), floor)
                if label == "cached":
                    reference(rows, clients, sessions, args,
                              "resource server: the same behind a do-nothing dependency "
                              "(FastAPI's floor)", server, "/api/noop")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(
        f"\nKizuna integration bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, tokens {args.signing_alg}, {args.duration:g} s per cell"
        f"{' (QUICK: smoke run, verdicts not meaningful)' if args.quick else ''}, "
        f"{elapsed:.0f} s in all\n"
    )
    print(table(rows))
    if args.strict and any(row.passed is False for row in rows):
        return 1
    return 2 if any(row.result["ok"] == 0 for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
