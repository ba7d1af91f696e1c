"""The one check of a place a command will write, before it writes anything: ``run``, ``sweep``, ``report``, ``export``
(and ``validate``, for the run directory a spec would get) and the loggers' stores call :func:`check_output_path`.

It looks without creating anything: a file where a directory belongs (or the other way round), a
file on the way (``out/report`` under a file ``out``), a read-only place, a name too long for the
file system, a file system with no space left. Each is one line naming the option and the path, so
a refused command leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Literal

from .errors import FomoError

MIN_FREE_BYTES = 1 << 20
"""Less free space than this (1 MiB) is a full file system: not even a run's spec, lock and first records fit."""
Expect = Literal["directory", "file"]


class OutputPathError(FomoError):
    """A place a command was asked to write cannot be written; one line."""


def _limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return default


def _existing_ancestor(path: Path) -> tuple[Path, list[str]]:
    """The deepest part of ``path`` that exists (a directory, or the file in the way) and the names below it."""
    missing: list[str] = []
    current = path
    while True:
        try:
            os.stat(current)
            return current, missing
        except FileNotFoundError:
            pass
        except NotADirectoryError:
            pass  # a file on the way: found below, walking up
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
        if current.parent == current:
            return current, missing
        missing.insert(0, current.name)
        current = current.parent


def check_output_path(path: Path | str, option: str, expect: Expect = "directory", overwrite: bool = True) -> None:
    """Refuse in one line (:class:`OutputPathError`) a place that cannot take what a command will write there.

    ``expect``: whether ``path`` is to be a directory (created if missing) or a file (its folder created if missing).
    ``overwrite``: whether an existing file at ``path`` may be replaced (a file) or an existing directory used.
    Nothing is created; what can still go wrong later (the disk fills while writing) is the writer's to handle.
    """
    text = str(path)
    if not text or "\0" in text:
        raise OutputPathError(f"{option} {text!r}: not a path (empty, or with a NUL character)")
    path = Path(os.path.abspath(os.path.expanduser(text)))
    where = f"{option} {path}" if option else str(path)
    ancestor, missing = _existing_ancestor(path)
    if not ancestor.is_dir():
        if missing:
            raise OutputPathError(f"{where}: {ancestor} is a file, not a directory")
        if expect == "directory":
            raise OutputPathError(f"{where}: exists and is not a directory; give a directory")
        if not stat.S_ISREG(os.stat(ancestor).st_mode):
            raise OutputPathError(f"{where}: exists and is not a regular file")
        if not overwrite:
            raise OutputPathError(f"{where}: exists; pass --force to overwrite it")
        folder = ancestor.parent
    elif not missing:
        if expect == "file":
            raise OutputPathError(f"{where}: exists and is a directory; give a file name")
        if not overwrite:
            raise OutputPathError(f"{where}: exists; give another place")
        folder = ancestor
    else:
        folder = ancestor
    name_max = _limit(folder, "PC_NAME_MAX", 255)
    too_long = next((name for name in missing if len(os.fsencode(name)) > name_max), None)
    if too_long is not None:
        raise OutputPathError(
            f"{where}: a name in the path is too long for the file system ({len(os.fsencode(too_long))} bytes, at most {name_max})"
        )
    path_max = _limit(folder, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(path))) >= path_max:
        raise OutputPathError(f"{where}: the path is too long for the file system ({len(os.fsencode(str(path)))} bytes)")
    try:
        status = os.statvfs(folder)
    except OSError as exc:
        raise OutputPathError(f"{where}: cannot look at {folder}: {exc.strerror}") from None
    if status.f_flag & os.ST_RDONLY:
        raise OutputPathError(f"{where}: {folder} is on a read-only file system")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where}: {folder} is not writable by this user")
    if status.f_bavail * status.f_frsize < MIN_FREE_BYTES:
        raise OutputPathError(f"{where}: no space left on the file system of {folder}; free some space")
