"""Claiming a run directory before anything is written to it, and the file-system errors a run can meet, as one line.

A run claims its directory first: creates it if needed and takes its lock (see
:mod:`fomo_host.locking`). Problems with the path (a file where a directory should
be, a read-only or full file system, a name too long for the file system) are
found there, before any model is built, and stated as one line. If the run then
fails before it has written anything, the directory it created is removed again,
so a rejected start leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import re
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import FomoError
from .locking import LOCK_FILE, RunDirectoryLock

if TYPE_CHECKING:
    from .spec import RunSpec

SPEC_FILE = "spec.toml"
CHECKPOINT_DIR = "checkpoints"
"""The run's checkpoints (see :mod:`fomo_host.engine.checkpoint`)."""
_MANIFEST_NAME = re.compile(r"^(\d{5,})\.json$")


def checkpoint_generations(folder: Path) -> list[int]:
    """Committed checkpoints in a checkpoints folder (those with a manifest), newest first."""
    if not folder.is_dir():
        return []
    return sorted((int(match.group(1)) for path in folder.iterdir() if (match := _MANIFEST_NAME.match(path.name))), reverse=True)


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run has committed any checkpoint (intact or not); reads names only, so a launcher pays for no torch."""
    return bool(checkpoint_generations(run_dir / CHECKPOINT_DIR)) or (run_dir / "checkpoint.pt").is_file()


ENVIRONMENT_ERRNOS = frozenset(
    code
    for code in (
        errno.ENOSPC,
        getattr(errno, "EDQUOT", None),
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EIO,
        errno.ENAMETOOLONG,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EFBIG,
        getattr(errno, "ESTALE", None),
    )
    if code is not None
)
"""File-system errors that are the machine's state (full, read-only, denied), not a bug: stated in one line."""


def explain(exc: OSError, path: Path | str | None = None) -> str:
    """``path: reason`` for an OSError, with a hint for the common causes."""
    where = path if path is not None else exc.filename
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENAMETOOLONG:
        longest = max(Path(str(where)).parts, key=len) if where else ""
        reason = f"a name in the path is too long for the file system ({len(longest)} characters)"
    elif exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        reason = f"{reason}; free some space"
    return f"{where}: {reason}" if where else reason


def is_environment_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS


def path_kind(path: Path, option: str) -> str:
    """ "directory", "file" (anything else that exists) or "missing"; a path under a file, or one the system
    cannot even look up, is one line."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        raise FomoError(f"{option} {path}: {_file_in_the_way(path)} is a file, not a directory") from None
    except OSError as exc:
        raise FomoError(f"{option} {explain(exc, path)}") from None
    return "directory" if stat.S_ISDIR(status.st_mode) else "file"


def _file_in_the_way(path: Path) -> Path:
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path


def occupied(run_dir: Path) -> bool:
    """Whether a directory holds anything besides the lock file, unfinished writes and empty folders (what a start
    killed before it wrote its spec may leave)."""
    return any(occupied(entry) if entry.is_dir() else entry.name != LOCK_FILE and ".tmp-" not in entry.name for entry in run_dir.iterdir())


class RunDirectory:
    """A claimed run directory: it exists, and (on the main process) this process holds its lock."""

    def __init__(self, path: Path, lock: RunDirectoryLock | None, created: bool) -> None:
        self.path, self.lock, self.created = path, lock, created

    @classmethod
    def claim(cls, path: Path, resume: bool, option: str, main_process: bool = True) -> RunDirectory:
        """Create (a new run) or find (a resume) ``path`` and lock it; ``option`` names the flag in messages."""
        if not main_process:
            return cls(path, None, created=False)
        kind = path_kind(path, option)
        if resume:
            if kind != "directory":
                raise FomoError(f"{option} {path}: no such run directory")
            created = False
        else:
            if kind == "file":
                raise FomoError(f"{option} {path}: exists and is not a directory; give a directory")
            if kind == "directory" and occupied(path):
                # refused before the lock file is made: a refused start writes nothing (checked again under the lock)
                raise FomoError(
                    f"{path} exists and is not empty; continue it with: fomo-host run --resume {path}, or give another --output"
                )
            created = kind == "missing"
            try:
                path.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise FomoError(f"{option} {path}: {_file_in_the_way(path)} is a file, not a directory") from None
            except OSError as exc:
                raise FomoError(f"{option} {explain(exc, path)}") from None
        lock = RunDirectoryLock(path)
        try:
            lock.acquire()
        except OSError as exc:
            if created:
                _remove_if_empty(path)
            raise FomoError(f"{option} {explain(exc, path)}") from None
        claimed = cls(path, lock, created)
        if not resume and occupied(path):
            claimed.release(failed=False)
            raise FomoError(f"{path} exists and is not empty; continue it with: fomo-host run --resume {path}, or give another --output")
        remove_unfinished_writes(path)
        return claimed

    def release(self, failed: bool) -> None:
        """Let go of the lock; after a failed start that wrote nothing, remove what the claim created."""
        lock, self.lock = self.lock, None
        if lock is None:
            return
        if failed and self.created and not occupied(self.path):
            with contextlib.suppress(OSError):
                (self.path / LOCK_FILE).unlink()  # while still held: no other process can have it open and locked
            lock.release()
            _remove_if_empty(self.path)
            return
        lock.release()


def remove_unfinished_writes(run_dir: Path) -> None:
    """Temporary files of writes a kill interrupted (``NAME.tmp-PID-RANDOM``): only the lock holder may remove them."""
    for folder in (run_dir, *(child for child in run_dir.iterdir() if child.is_dir())):
        for leftover in folder.glob("*.tmp-*"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _remove_if_empty(path: Path) -> None:
    """Remove a directory this process created that holds only empty folders, its lock file and leftovers of
    unfinished writes; never a finished file."""
    if not path.is_dir() or occupied(path):
        return
    remove_unfinished_writes(path)
    with contextlib.suppress(OSError):
        (path / LOCK_FILE).unlink()
    for folder in sorted((entry for entry in path.rglob("*") if entry.is_dir()), key=lambda entry: len(entry.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


@contextlib.contextmanager
def environment_errors_as_one_line(run_dir: Path, resumable: Callable[[], bool]) -> Iterator[None]:
    """A full, read-only or vanished file system while the run works: one line saying what, and how to go on."""
    try:
        yield
    except OSError as exc:
        if not is_environment_error(exc):
            raise
        hint = f"; the last checkpoint is intact: once fixed, continue with: fomo-host run --resume {run_dir}" if resumable() else ""
        raise FomoError(f"cannot write {explain(exc)}{hint}") from None


def default_run_dir(spec: RunSpec) -> Path:
    """``output_dir/name-YYYYmmdd-HHMMSS``, with a counter if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}"
    counter = 1
    while path_kind(candidate, "run.output_dir/run.name:") != "missing":
        counter += 1
        candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}-{counter}"
    return candidate


def longest_default_run_dir(spec: RunSpec) -> Path:
    """The longest name :func:`default_run_dir` can give (with a counter), for checking the place before a run."""
    return spec.run.output_dir / f"{spec.run.name}-20260101-000000-99"


def choose_run_dir(spec: RunSpec, output: Path | None, resume: bool) -> Path:
    """The run directory: ``output`` (to resume, an existing run), or a fresh one under run.output_dir.

    Whether it can be used is decided when it is claimed (see :func:`fomo_host.running.run_in_process`).
    """
    if resume and output is None:
        raise FomoError("resuming needs the run directory")
    return output if output is not None else default_run_dir(spec)
