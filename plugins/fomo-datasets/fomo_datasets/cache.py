"""Images decoded once into a memory-mapped uint8 cache, keyed by content.

An entry is a folder ``<cache_dir>/fomo-datasets/<key>/`` holding ``images.u8``
(raw uint8 ``[count, 3, S, S]``, read back with ``numpy.memmap``) and
``manifest.json`` (which inputs were kept, which were skipped and why, and any
per-sample metadata such as captions read from a tar shard). A streamed set's
entry holds the manifest alone: its images were only checked (headers read),
and are decoded when a batch uses them. The key hashes what
determines the pixels: the inputs' paths, sizes and modification times, the
image size and the decoder version, so an edited or replaced file makes a new
entry and an unchanged dataset is never decoded twice. Entries are written to a
temporary folder and renamed into place, so a crash never leaves a half entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fomo_host.api import ProgressBar, ProgressFactory, no_progress

from .decoding import DECODER_VERSION, Source, UnreadableImage, check_image, decode_image, ordered_map

logger = logging.getLogger("fomo_datasets")
IMAGES_FILE = "images.u8"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Job:
    """One input to decode: ``name`` is what a skip report shows (a file, or shard and key)."""

    name: str
    source: Source | None
    problem: str | None = None
    """Why the input is unusable before decoding (no image in a tar sample, no caption), or None."""
    meta: Any = None
    """Kept with the image when it decodes (JSON-serialisable), e.g. the captions of a tar sample."""


@dataclass
class Decoded:
    """A cache entry: the images of the kept inputs (None for a checked-only entry), and what was skipped."""

    key: str
    images: np.ndarray | None
    """uint8 ``[count, 3, S, S]``, memory-mapped read-only."""
    kept: np.ndarray
    """int64 positions, in input order, of the inputs whose image is in ``images``."""
    total: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    meta: list[Any] | None = None


def file_signature(path: Path) -> list[Any]:
    """Path, size and modification time: what the key sees of a file (a missing file hashes as such)."""
    try:
        stat = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def content_key(**parts: Any) -> str:
    """A hash of everything that determines an entry's pixels (plus the decoder version)."""
    payload = json.dumps({"decoder": DECODER_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def file_jobs(paths: Sequence[Path]) -> list[Job]:
    return [Job(str(path), path) for path in paths]


class ImageCache:
    """Decoded images under ``cache_dir``, one entry per content key."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = Path(cache_dir) / "fomo-datasets"

    def load(self, key: str, size: int, pixels: bool = True) -> Decoded | None:
        """The entry, or None when it is absent or damaged (then it is rebuilt)."""
        folder = self.root / key
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
            count = int(manifest["count"])
            expected_bytes = count * 3 * size * size if pixels else 0
            stored = (folder / IMAGES_FILE).stat().st_size if pixels else 0
            if int(manifest["size"]) != size or bool(manifest.get("pixels", True)) != pixels or stored != expected_bytes:
                raise ValueError("size mismatch")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        images: np.ndarray | None = None
        if pixels and count == 0:
            images = np.empty((0, 3, size, size), dtype=np.uint8)
        elif pixels:
            images = np.memmap(folder / IMAGES_FILE, dtype=np.uint8, mode="r", shape=(count, 3, size, size))
        return Decoded(
            key=key,
            images=images,
            kept=np.asarray(manifest["kept"], dtype=np.int64),
            total=int(manifest["total"]),
            skipped=[(str(name), str(reason)) for name, reason in manifest["skipped"]],
            meta=manifest.get("meta"),
        )

    def get_or_build(
        self,
        key: str,
        jobs: Iterable[Job],
        size: int,
        workers: int,
        label: str,
        total: int | None = None,
        progress: ProgressFactory | None = None,
        pixels: bool = True,
    ) -> Decoded:
        """Load the entry for ``key``, or decode ``jobs`` into it first (``jobs`` is only consumed then).

        With ``pixels=False`` the images are only checked (headers read) and none is stored: a streamed set's entry.
        ``total`` (the number of jobs) sizes the progress bar shown while the entry is built."""
        cached = self.load(key, size, pixels)
        if cached is not None:
            return cached
        entry = self.root / key
        if entry.exists():
            # another process may have completed the entry since the first look (its rename is atomic): keep theirs
            cached = self.load(key, size, pixels)
            if cached is not None:
                return cached
            shutil.rmtree(entry, ignore_errors=True)  # a damaged entry (interrupted copy, full disk)
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{key}.", suffix=".tmp"))
        try:
            description = f"{label}: {'decoding' if pixels else 'checking'} images"
            with (progress or no_progress)(description, total or 0) as bar:
                self._write(temporary, jobs, size, workers, label, bar, pixels)
            try:
                os.rename(temporary, self.root / key)
            except OSError:
                # another process finished the same entry first: theirs is identical, keep it
                if self.load(key, size, pixels) is None:
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        built = self.load(key, size, pixels)
        assert built is not None
        return built

    def _write(self, folder: Path, jobs: Iterable[Job], size: int, workers: int, label: str, bar: ProgressBar, pixels: bool) -> None:
        started = time.perf_counter()
        kept: list[int] = []
        skipped: list[tuple[str, str]] = []
        meta: list[Any] = []
        total = 0

        def decode(job: Job) -> np.ndarray | str | None:
            if job.problem is not None:
                return job.problem
            assert job.source is not None
            try:
                if not pixels:
                    check_image(job.source)
                    return None
                return decode_image(job.source, size)
            except UnreadableImage as exc:
                return str(exc)

        with open(folder / IMAGES_FILE, "wb") if pixels else contextlib.nullcontext() as images:
            indexed = ((position, job) for position, job in enumerate(jobs))
            for (position, job), result in ordered_map(lambda pair: (pair, decode(pair[1])), indexed, workers):
                total = position + 1
                bar.advance()
                if isinstance(result, str):
                    skipped.append((job.name, result))
                    continue
                if images is not None and result is not None:
                    images.write(result.tobytes())
                kept.append(position)
                meta.append(job.meta)
        manifest = {
            "count": len(kept),
            "size": size,
            "pixels": pixels,
            "total": total,
            "kept": kept,
            "skipped": skipped,
            "meta": meta if any(m is not None for m in meta) else None,
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
        elapsed = time.perf_counter() - started
        logger.info("%s: %s %d images (%d skipped) in %.1fs", label, "decoded" if pixels else "checked", len(kept), len(skipped), elapsed)


class CaptionedSamples:
    """Labels, caption choices and the content fingerprint a sample set of this plugin has, however it stores images.

    ``caption_choices`` may share one list between samples (e.g. the templates of a class). ``key`` names the
    pixels (the cache key of the decoded images), so a set read decoded or streamed has the same fingerprint."""

    def __init__(self, count: int, labels: torch.Tensor, caption_choices: Sequence[Sequence[str]], key: str) -> None:
        if labels.shape != (count,) or len(caption_choices) != count:
            raise ValueError(f"{count} images but {tuple(labels.shape)} labels and {len(caption_choices)} caption lists")
        if any(not choices for choices in caption_choices):
            raise ValueError("every sample needs at least one caption")
        self.labels = labels.to(torch.int64)
        self.caption_choices = caption_choices
        self.key = key
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.caption_choices)

    def captions(self, indices: torch.Tensor, generator: torch.Generator | None = None) -> list[str]:
        rows = [self.caption_choices[i] for i in indices.tolist()]
        draws = torch.rand(len(rows), generator=generator).tolist()
        return [choices[int(u * len(choices))] for choices, u in zip(rows, draws, strict=True)]

    def all_captions(self, indices: torch.Tensor) -> list[list[str]]:
        return [list(self.caption_choices[i]) for i in indices.tolist()]

    def fingerprint(self) -> str:
        """A content hash: the pixels' key with the labels and captions (the warm start keys on it)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(self.key.encode())
            digest.update(self.labels.numpy().tobytes())
            digest.update(json.dumps([list(choices) for choices in self.caption_choices]).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class MemmapSampleSet(CaptionedSamples):
    """A :class:`fomo_host.data.SampleSet` whose images live in a memory-mapped cache entry.

    ``images(indices)`` copies just those rows out of the page cache; labels and
    caption choices are held in memory.
    """

    def __init__(self, images: np.ndarray, labels: torch.Tensor, caption_choices: Sequence[Sequence[str]], key: str) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 [N, 3, H, W], got {images.dtype} {images.shape}")
        super().__init__(len(images), labels, caption_choices, key)
        self._images = images

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._images[indices.numpy()])

    def __getstate__(self) -> dict[str, Any]:
        # pickled (loader workers started by spawn) as the entry's file, not its pixels, which numpy would copy
        state = dict(self.__dict__)
        if isinstance(self._images, np.memmap) and self._images.filename is not None:
            state["_images"] = (str(self._images.filename), self._images.shape)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["_images"], tuple):
            filename, shape = state["_images"]
            state["_images"] = np.memmap(filename, dtype=np.uint8, mode="r", shape=shape)
        self.__dict__.update(state)
