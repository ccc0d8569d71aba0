"""What ``kizuna serve`` does to its own process, and nobody else's: an application that
imports Kizuna (``create_app`` in a host app) is left as it was.

- The interpreter's switch interval goes from 5 ms to 0.1 ms: store work runs in threads, and a
  thread busy in Python keeps the GIL for up to that interval while the event loop waits to
  answer requests.
- Once the app has started, everything built so far (it lives as long as the process) is
  frozen out of the garbage collector's sight, and young collections happen less often: full
  collections over start-up objects took 50 to 270 ms and made the p99 spikes.

Off with ``KIZUNA_PROCESS_TUNING=false``.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

_SWITCH_INTERVAL = 0.0001
_GC_THRESHOLD = (50_000, 20, 100)


def tuned(app: FastAPI) -> FastAPI:
    """``app``, whose lifespan tunes this process once its start-up has finished."""
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        async with inner(started) as state:
            sys.setswitchinterval(_SWITCH_INTERVAL)
            gc.collect()
            gc.freeze()
            gc.set_threshold(*_GC_THRESHOLD)
            yield state

    app.router.lifespan_context = lifespan
    return app
