"""An exclusive lock on a run directory, held by one process for the run's whole life.

Two ``fomo-host run`` processes writing one directory (a second start on the same
``--output``, a ``--resume`` while the run still goes) would interleave their
records and checkpoints. The lock is an OS file lock (``flock``) on a file inside
the directory: the kernel releases it when the process ends in any way (even
SIGKILL), so a crashed run never leaves a stale lock behind. Under ``accelerate
launch`` only the main process takes it; the other processes of the run neither
write the run's files nor need it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import FomoError

LOCK_FILE = ".lock"


class RunInUseError(FomoError):
    """Another process holds the run directory's lock."""


class RunDirectoryLock:
    """``flock`` on ``run_dir/.lock``; the file also says who holds it, for the refusal message."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunInUseError` at once (never wait: the other run may last days)."""
        if self._descriptor is not None:
            return
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(descriptor)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = describe_holder(self.path)
                message = f"{self.run_dir} is in use by another fomo-host run ({holder}); wait for it to end, or stop it"
                raise RunInUseError(message) from None
            raise
        self._descriptor = descriptor
        # who holds the lock is for the refusal message; writing it also finds a full disk before the run starts
        try:
            write_holder(descriptor)
        except OSError:
            self.release()
            raise

    def release(self) -> None:
        if self._descriptor is None:
            return
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        finally:
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self) -> RunDirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


@contextmanager
def waiting_lock(path: Path, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold ``flock`` on ``path`` (created if missing), waiting for another process that holds it; ``on_wait`` is told
    who that is once, before the wait.

    For work that several processes may start at once and only one should do (pretraining a shared base model):
    the others wait, then find its result. The kernel releases the lock when its holder ends in any way, so a
    crashed holder never keeps the others waiting.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            on_wait(describe_holder(path))
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        write_holder(descriptor)
        yield
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock


def write_holder(descriptor: int) -> None:
    """Write who holds a lock into its file (this process, host and time), for :func:`describe_holder`."""
    holding = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(holding).encode(), 0)


def describe_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the run directory's lock (``pid N on HOST, since ...``), or None when no process runs it.

    Probes with a shared lock on a read-only descriptor, so looking never writes the lock file and never
    blocks a run that starts at the same moment for longer than the probe.
    """
    path = run_dir / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return describe_holder(path)
        raise
    else:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)
