"""Structured logs: one JSON event per line. Never pass a password or a token value."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog


class _StdoutLines:
    """Writes each rendered event as one line to whatever ``sys.stdout`` is at the time
    (tests and embedding tools swap it), flushed at once: logs are read live."""

    def msg(self, message: bytes | str) -> None:
        out = sys.stdout
        if isinstance(message, bytes) and hasattr(out, "buffer"):
            out.buffer.write(message + b"\n")  # one write: lines never interleave
            out.buffer.flush()
            return
        text = message.decode() if isinstance(message, bytes) else message
        out.write(text + "\n")
        out.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _lines(*_args: Any) -> _StdoutLines:
    return _StdoutLines()


def configure(*, level: str = "info", json: bool = True) -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    # Every refresh logs an event: orjson costs about half of the standard library's encoder.
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=orjson.dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_lines,
        cache_logger_on_first_use=True,
    )
