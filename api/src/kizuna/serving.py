"""``kizuna serve``: uvicorn worker processes, each with a listening socket of its own.

uvicorn's own ``--workers`` shares one listening socket between the workers, and whichever
wakes first accepts every connection waiting: measured on the bench, 128 keep-alive clients
landed all on one worker of two in one run in four, which then served them alone at the
speed of one worker. Here each worker binds the address with ``SO_REUSEPORT`` and the kernel
spreads new connections evenly over the workers' sockets.

Any process of the same user could join such a group, a second ``kizuna serve`` by mistake
included, and quietly take a share of the connections. So the supervisor first claims the
address in the abstract Unix socket namespace (machine-wide, released when it dies), then
holds the port itself (bound, not listening, so it never receives a connection): either
being taken is an immediate error. It replaces a worker that dies, stops every worker on
SIGTERM or SIGINT, and gives up if workers keep dying as they start.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

APP = "kizuna.serving:served_app"
_STOP_GRACE = 30.0  # seconds a worker has to finish its requests before it is killed
_EARLY_DEATH = 10.0  # a worker that dies this soon after its start did not start
_EARLY_DEATHS_ALLOWED = 3
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ServeError(RuntimeError):
    pass


def served_app() -> Any:
    """The app as ``kizuna serve`` runs it (uvicorn's factory): logging configured for the
    process, which is tuned as a process of its own (``kizuna.process_tuning``) unless
    ``KIZUNA_PROCESS_TUNING`` is false. ``create_app`` alone does neither."""
    from kizuna import log
    from kizuna.app import create_app
    from kizuna.process_tuning import tuned
    from kizuna.settings import load_settings

    settings = load_settings()
    log.configure(level=settings.log_level, json=settings.log_json)
    app = create_app(settings)
    return tuned(app) if settings.process_tuning else app


def uvicorn_options(log_level: str) -> dict[str, Any]:
    return {
        "factory": True,
        "access_log": False,
        "proxy_headers": False,  # X-Forwarded-For is judged by KIZUNA_TRUSTED_PROXIES instead
        "server_header": False,
        "log_level": log_level,
    }


def reuse_port_supported() -> bool:
    # Elsewhere SO_REUSEPORT exists but does not spread connections (BSD, macOS).
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _end_with(parent: int) -> None:
    """SIGTERM this worker when its supervisor dies, even killed outright (SIGKILL runs no
    handler that could stop the workers); then uvicorn shuts down as on any SIGTERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(host: str, port: int, log_level: str, supervisor: int) -> None:
    import uvicorn

    _end_with(supervisor)
    sock = _socket(host, port)
    sock.listen(2048)
    config = uvicorn.Config(APP, host=host, port=port, **uvicorn_options(log_level))
    uvicorn.Server(config).run(sockets=[sock])


def _claim(host: str, port: int) -> socket.socket:
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0kizuna-serve {host} {port}")
    except OSError:
        claim.close()
        raise ServeError(f"another kizuna serve is listening on {host}:{port}") from None
    return claim


def serve(*, host: str, port: int, workers: int, log_level: str) -> None:
    """Run ``workers`` worker processes until SIGTERM or SIGINT."""
    claim = _claim(host, port)
    try:
        holder = _socket(host, port)
    except OSError as exc:
        claim.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(
            target=_worker,
            args=(host, port, log_level, os.getpid()),
            name="kizuna-worker",
            daemon=False,
        )
        process.start()
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    early_deaths = 0
    try:
        while not stopping:
            wait([process.sentinel for process, _ in running], timeout=0.5)
            for index, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                early_deaths = early_deaths + 1 if time.monotonic() - started < _EARLY_DEATH else 0
                if early_deaths >= _EARLY_DEATHS_ALLOWED:
                    raise ServeError(
                        f"workers keep exiting as they start (last exit code {process.exitcode})"
                    )
                print(
                    f"kizuna: worker {process.pid} exited ({process.exitcode}); starting another",
                    file=sys.stderr,
                    flush=True,
                )
                running[index] = start()
    finally:
        _stop_all([process for process, _ in running])
        holder.close()
        claim.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(processes: list[BaseProcess]) -> None:
    """SIGTERM (uvicorn finishes the requests in flight), then SIGKILL after a grace period."""
    for process in processes:
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    deadline = time.monotonic() + _STOP_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
