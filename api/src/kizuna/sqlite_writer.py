"""The one thread that writes to the embedded store, committing units of work in groups.

Units of work (``Database.write``: rotations, mostly) wait in a queue, in order. The thread
takes everything that is waiting and runs it in one transaction, one after the other, as if
each had its own: each sees the writes of those before it, so the order of decisions is exactly
the order of arrival. If any of them raises, the whole group is rolled back and each is run
again in a transaction of its own, so that a failure stays with the unit that caused it.

Why: under load, every time this thread gives up the GIL (each SQLite call, the file lock,
waking the event loop) it waits to get it back from the busy event loop. One BEGIN/COMMIT, one
lock and one wake-up per group instead of per unit is what made a rotation cheaper than the
minimal baseline's inline SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_MOST_PER_GROUP = 64


class WriterLock:
    """One writer across processes too (``--workers N``): SQLite's own busy handler polls
    with sleeps of up to 100 ms, which turned two workers' lock fights into seconds of p99;
    a kernel file lock hands over the moment it is released."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass(slots=True)
class _Job:
    unit: Callable[[Any], Any]  # the unit of work, given a ``Tx``
    then: Callable[[Any], Any] | None  # applied to its result after commit, lock released
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


# (future, succeeded, result or exception)
_Outcome = tuple["asyncio.Future[Any]", bool, Any]


class SQLiteWriter:
    def __init__(
        self,
        *,
        lock: WriterLock,
        run_one: Callable[[Callable[[Any], Any]], Any],
        run_group: Callable[[list[Callable[[Any], Any]]], list[Any]],
        on_exit: Callable[[], None],
    ) -> None:
        """``run_one(unit)`` runs a unit of work in a transaction of its own and returns its
        result; ``run_group(units)`` runs the given units in one transaction and returns their
        results (raising if any raises); ``on_exit`` closes connections, in this thread."""
        self._lock = lock
        self._run_one = run_one
        self._run_group = run_group
        self._on_exit = on_exit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
        self._thread.start()

    async def submit(
        self, unit: Callable[[Any], Any], then: Callable[[Any], Any] | None = None
    ) -> Any:
        """Run ``unit`` (given a ``Tx``) in its turn. ``then(result)``, if given, runs in this
        thread too, once the transaction has committed and the write lock is released: work
        that needs the unit's result but not the lock (signing tokens)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_Job(unit, then, loop, future))
        return await future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    # -- the writer thread ------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < _MOST_PER_GROUP:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    batch.append(job)
                ran = self._run_batch(batch)
                make_way()
                finished = self._finished(batch, ran)
                make_way()
                self._settle(batch, finished)
        finally:
            self._on_exit()
            self._lock.close()

    def _run_batch(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        try:
            self._lock.acquire()
        except OSError as exc:
            return [(False, exc)] * len(batch)
        try:
            if len(batch) > 1:
                try:
                    return [(True, result) for result in self._run_group([j.unit for j in batch])]
                except Exception:  # noqa: S110 - each is run again alone, and fails alone
                    pass
            return [self._run_alone(job) for job in batch]
        finally:
            self._lock.release()

    @staticmethod
    def _finished(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> list[tuple[bool, Any]]:
        finished = []
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if ok and job.then is not None:
                try:
                    value = job.then(value)
                except Exception as exc:
                    ok, value = False, exc
            finished.append((ok, value))
        return finished

    def _run_alone(self, job: _Job) -> tuple[bool, Any]:
        try:
            return True, self._run_one(job.unit)
        except Exception as exc:
            return False, exc

    @staticmethod
    def _settle(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, settled in by_loop.items():
            # A loop that has closed has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, settled)


def make_way() -> None:
    """Let whatever waits for this core run first (a request handler of this process or
    another) before this thread goes on with its next piece of work. Measured here (Linux
    6.18, 2 cores, a hash running on the other core): a waking thread does not preempt the
    running one before the next scheduler tick (4 ms), so a page view that woke while this
    thread committed and then signed tokens waited for both; yielding between the two took
    the bench's page-view p99 during a burst of logins from ~0.9 ms to ~0.7 ms. A yield with
    nobody waiting costs a system call, about a microsecond."""
    with contextlib.suppress(AttributeError, OSError):  # not POSIX
        os.sched_yield()


def _deliver(settled: list[_Outcome]) -> None:
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
