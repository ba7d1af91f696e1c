"""Where each sample of a WebDataset tar shard lies: its members' offsets, read once and cached beside the decoded images.

A shard is indexed by reading its member headers only (data is skipped with a
seek), with WebDataset's grouping rules: a sample is the run of consecutive
regular files sharing a key (the name up to the first dot of its last path
part), each member named by the rest, lower-cased; names like ``__meta__`` are
skipped. The index is how samples are read by offset (random access, for
streaming) and how a damaged shard is caught: a shard cut inside a member, or
cut between two samples (it then lacks the two zero blocks that end every tar
archive, and would otherwise read as a shorter shard), is an error naming it.

Indexes are cached as JSON under ``<cache_dir>/fomo-datasets/shard-index/``,
keyed by the shard's path and checked against its size and modification time
on every use, so an edited or replaced shard is indexed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK = 512
END_OF_ARCHIVE = 2 * BLOCK
INDEX_VERSION = "1"
KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
META_NAME = re.compile(r"__[^/]*__($|/)")


class DamagedShard(Exception):
    """A shard that cannot be read as a whole; the message says where and why."""


@dataclass(frozen=True)
class Member:
    offset: int
    size: int


@dataclass
class ShardIndex:
    """The samples of one shard, in order: each a key and its members by extension."""

    path: Path
    size: int
    mtime_ns: int
    keys: list[str]
    members: list[dict[str, Member]]

    def __len__(self) -> int:
        return len(self.keys)

    def read(self, sample: int, extension: str) -> bytes:
        member = self.members[sample][extension]
        with open(self.path, "rb") as handle:
            handle.seek(member.offset)
            return handle.read(member.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": INDEX_VERSION,
            "path": str(self.path),
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "samples": [
                [key, {ext: [m.offset, m.size] for ext, m in members.items()}] for key, members in zip(self.keys, self.members, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, content: dict[str, Any]) -> ShardIndex:
        keys = [str(key) for key, _ in content["samples"]]
        members = [{ext: Member(int(o), int(s)) for ext, (o, s) in entry.items()} for _, entry in content["samples"]]
        return cls(Path(content["path"]), int(content["size"]), int(content["mtime_ns"]), keys, members)


def scan_shard(path: Path) -> ShardIndex:
    """Index a shard by its headers; raises :class:`DamagedShard` when it is not a whole tar archive."""
    stat = path.stat()
    keys: list[str] = []
    members: list[dict[str, Member]] = []
    try:
        with tarfile.open(path, mode="r:") as archive:
            for info in archive:
                if not info.isreg() or META_NAME.match(info.name):
                    continue
                if "/" not in info.name and info.name.startswith("__") and info.name.endswith("__"):
                    continue
                match = KEY_AND_EXTENSION.match(info.name)
                if match is None:
                    continue
                key, extension = match.group(1), match.group(2).lower()
                if not keys or keys[-1] != key:
                    keys.append(key)
                    members.append({})
                if extension in members[-1]:
                    raise DamagedShard(f"is not a WebDataset shard: member {info.name} repeats the '.{extension}' entry of sample {key}")
                members[-1][extension] = Member(info.offset_data, info.size)
            end = archive.offset
    except tarfile.ReadError as exc:
        # tarfile fails on the member after the last one it gave: the last sample listed is the damaged one
        where = f" at sample {keys[-1]}, after {len(keys) - 1} whole samples" if keys else ""
        raise DamagedShard(f"is not a readable tar file ({exc}){where}") from None
    with open(path, "rb") as handle:
        handle.seek(end)
        marker = handle.read(END_OF_ARCHIVE)
    if len(marker) < END_OF_ARCHIVE or marker.count(0) != END_OF_ARCHIVE:
        last = f" after sample {keys[-1]}" if keys else ""
        raise DamagedShard(
            f"ends without the end-of-archive blocks{last} ({len(keys)} whole samples): the file was cut short "
            "(an interrupted copy or download?) and samples are missing"
        )
    return ShardIndex(path, stat.st_size, stat.st_mtime_ns, keys, members)


class ShardIndexCache:
    """Shard indexes under ``cache_dir``, valid while the shard keeps its size and modification time."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = Path(cache_dir) / "fomo-datasets" / "shard-index"

    def _file(self, shard: Path) -> Path:
        return self.root / f"{hashlib.sha256(str(shard.resolve()).encode()).hexdigest()[:24]}.json"

    def cached(self, shard: Path) -> ShardIndex | None:
        stat = shard.stat()
        try:
            content = json.loads(self._file(shard).read_text(encoding="utf-8"))
            if content.get("version") != INDEX_VERSION or (content["size"], content["mtime_ns"]) != (stat.st_size, stat.st_mtime_ns):
                return None
            index = ShardIndex.from_json(content)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        index.path = shard
        return index

    def get(self, shard: Path) -> ShardIndex:
        """The shard's index: from the cache when still valid, else scanned and stored."""
        index = self.cached(shard)
        if index is not None:
            return index
        index = scan_shard(shard)
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(index.to_json(), stream)
            os.replace(temporary, self._file(shard))
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return index
