"""Checksums of the files a run resumes from, so that damaged bytes stop a resume instead of changing its results.

``torch.load`` and safetensors read whatever bytes a file holds: a flipped bit in a
checkpoint or in a stored weight file would resume and silently give other
numbers. Every checkpoint therefore comes with a manifest: the SHA-256 and size of
each file it depends on, written after those files are complete, and checked
before a resume reads any of them. A file that no longer matches is named in one
line.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FomoError

CHUNK_BYTES = 4 << 20


class IntegrityError(FomoError):
    """A file does not match the checksum recorded when it was written."""


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    bytes: int

    def as_record(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FileDigest:
        return cls(str(record["sha256"]), int(record["bytes"]))


_digest_cache: dict[tuple[str, int, int, int], FileDigest] = {}
"""Digests by (path, inode, size, modification time): a weight file kept across many checkpoints is hashed once."""


def digest(path: Path) -> FileDigest:
    """SHA-256 and size of a file, read in chunks (memory stays flat for any file size)."""
    status = path.stat()
    key = (str(path.resolve()), status.st_ino, status.st_size, status.st_mtime_ns)
    cached = _digest_cache.get(key)
    if cached is not None:
        return cached
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            hasher.update(chunk)
    result = FileDigest(hasher.hexdigest(), status.st_size)
    _digest_cache[key] = result
    return result


def fresh_digest(path: Path) -> FileDigest:
    """A digest read from the disk now, never from the cache: what verification must see."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            hasher.update(chunk)
            size += len(chunk)
    return FileDigest(hasher.hexdigest(), size)


def digests(root: Path, relative_paths: list[str]) -> dict[str, dict[str, Any]]:
    """``{relative path: {sha256, bytes}}`` for a manifest."""
    return {name: digest(root / name).as_record() for name in relative_paths}


def verify(root: Path, files: dict[str, dict[str, Any]], required: set[str]) -> None:
    """Every listed file that exists must match its digest; ``required`` ones must exist.

    A listed file that is gone is allowed unless required: a merger deletes history
    it no longer needs, and a resume that does need it fails on reading it. A file that
    exists and differs is never allowed: damaged bytes, or a file rewritten after the
    checkpoint, either of which would change the resumed run's results.
    """
    for name in sorted(files, key=lambda n: (n not in required, n)):
        path = root / name
        if not path.is_file():
            if name in required:
                raise IntegrityError(f"{path} is missing")
            continue
        expected = FileDigest.from_record(files[name])
        actual = fresh_digest(path)
        if actual.bytes != expected.bytes:
            raise IntegrityError(f"{path} is damaged: {actual.bytes:,} bytes, the checkpoint recorded {expected.bytes:,}")
        if actual.sha256 != expected.sha256:
            raise IntegrityError(f"{path} is damaged: its SHA-256 does not match the one recorded when it was written")


def fsync_directory(path: Path) -> None:
    """Make renames inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def user_file_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 less the umask: 0o644 under 022), for files written by libraries
    that create them more privately: people share what fomo-host writes for them."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)  # no /proc: read it by setting it, and put it back at once
        os.umask(umask)
    return 0o666 & ~umask


def unique_temporary(path: Path) -> Path:
    """A temporary name next to ``path`` that no other process or thread uses.

    Several processes of one run (``accelerate launch``) may write the same file at
    once; a shared temporary name lets one rename the other's half-written file.
    """
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
