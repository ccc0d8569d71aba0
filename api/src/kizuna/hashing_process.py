"""A process that hashes passwords (argon2id), and the server's end of its pipe.

The server talks to each hashing process over its stdin/stdout, one JSON line per request and
per answer, straight from the event loop: no thread in the server takes part. (A
``ProcessPoolExecutor`` wakes two threads of its own per call; measured on the bench's burst
of logins, its manager thread alone took about 0.4 ms of CPU, under the GIL, per login.)

Password hashing gets a few of the machine's cores (``hash_cores``, by default all but one):
hashing processes run at the lowest priority, only on those cores, and hash only while holding
one of as many machine-wide *slots* (kernel file locks in the data dir). With one hashing
process per worker, N workers would otherwise hash on every core at once, and page views on
that machine would wait for a core. Measured on two cores: one argon2 process beside the
server left page-view p99 unchanged, two raised it four- to sixfold.

A hashing process ends when its server does, even one killed outright: its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A request line holds a password and a stored hash, each far below this.
_LINE_LIMIT = 1 << 20


def default_slots() -> int:
    """Hashes at once on this machine: one core fewer than it has, and at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@dataclass(frozen=True)
class Slots:
    """``count`` lock files named ``hash-slot-<i>.lock`` in ``directory``."""

    directory: Path
    count: int

    def path(self, index: int) -> Path:
        return self.directory / f"hash-slot-{index}.lock"


class HashingProcessDied(RuntimeError):
    """The hashing process ended (killed, out of memory) before it answered."""


class HashingProcess:
    """One hashing process; requests to it are answered one at a time, in order."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._turn = asyncio.Lock()
        self.waiting = 0  # requests sent or queued, for the least-loaded choice
        self.dead = False

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    async def start(cls, slots: Slots) -> HashingProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kizuna.hashing_process",
            str(slots.directory),
            str(slots.count),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        return cls(process)

    async def call(self, request: dict[str, str]) -> Any:
        """The answer's value; ``HashingProcessDied`` if the process is gone."""
        self.waiting += 1
        try:
            async with self._turn:
                return await self._exchange(json.dumps(request).encode() + b"\n")
        finally:
            self.waiting -= 1

    async def _exchange(self, line: bytes) -> Any:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        if self.dead:
            raise HashingProcessDied("the hashing process has ended")
        try:
            stdin.write(line)
            await stdin.drain()
            answer = await stdout.readline()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            self.dead = True
            raise HashingProcessDied("the hashing process has ended") from exc
        if not answer:
            self.dead = True
            raise HashingProcessDied("the hashing process has ended")
        reply = json.loads(answer)
        if "error" in reply:
            raise RuntimeError(f"hashing failed: {reply['error']}")
        return reply["value"]

    async def close(self) -> None:
        """End the process (it exits when its stdin closes) and wait for it."""
        self.dead = True
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()


# -- the hashing process itself --------------------------------------------------------------


@contextlib.contextmanager
def _slot(slots: Slots, files: list[int]) -> Iterator[None]:
    """Hold one of the machine's hashing slots: a free one if there is one, else wait for
    this process's own (the slots are few, and a hash is short)."""
    own = os.getpid() % slots.count
    order = [own, *(i for i in range(slots.count) if i != own)]
    held = None
    for index in order:
        try:
            fcntl.flock(files[index], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        held = files[index]
        break
    if held is None:
        held = files[own]
        fcntl.flock(held, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)


def _confine(cores: int) -> None:
    """Run on the last ``cores`` of the cores this process may use, leaving the others to
    request handling. Priority alone does not do that: measured here (Linux 6.18, 2 cores), a
    page-view thread that woke on a core running a hash waited for the next scheduler tick
    (up to 4 ms) whether the hash ran at nice 19 or SCHED_IDLE, even with the other core idle;
    confined, the hash keeps to its core and the server's threads settle on the others."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        allowed = sorted(os.sched_getaffinity(0))
        if cores < len(allowed):
            os.sched_setaffinity(0, allowed[-cores:])


def _answer(hasher: Any, request: dict[str, str]) -> dict[str, Any]:
    if request.get("op") == "hash":
        return {"value": hasher.hash(request["password"])}
    if request.get("op") == "verify":
        password, stored = request["password"], request["stored"]
        try:
            return {"value": hasher.verify(password, stored)}
        except Exception:  # a corrupt stored hash is a failed login, not a 500
            return {"value": False}
    return {"error": "unknown request"}


def main(argv: list[str]) -> None:
    # Imported here: the server's end of the pipe needs none of it.
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    slots = Slots(Path(argv[0]), int(argv[1]))
    # Ctrl-C in a terminal reaches the whole process group; this process ends with its
    # server instead (stdin closes), so that no request is cut off half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Not Linux, or not allowed: run at normal priority. (SCHED_IDLE was measured too: no
    # better for page views, and it can starve logins on a busy machine.)
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    _confine(slots.count)
    files = [os.open(slots.path(i), os.O_RDWR | os.O_CREAT, 0o600) for i in range(slots.count)]
    # argon2id with OWASP's parameters: 19 MiB, 2 passes, 1 lane.
    hasher = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19_456, parallelism=1),))
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            with _slot(slots, files):
                reply = _answer(hasher, request)
        except (ValueError, KeyError, TypeError, AttributeError):
            reply = {"error": "malformed request"}
        try:
            out.write(json.dumps(reply).encode() + b"\n")
            out.flush()
        except BrokenPipeError:
            break


if __name__ == "__main__":
    main(sys.argv[1:])
