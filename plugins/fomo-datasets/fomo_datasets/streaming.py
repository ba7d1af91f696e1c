"""Streamed sample sets (``cache = "stream"``): images stay encoded on disk and are decoded when a batch uses them.

For data too large to keep decoded (the decoded cache takes 147 KiB per image at
224 px): the build only lists the samples and reads each image's header, and a
batch decodes its images with the same function the cache uses, so a streamed
set yields exactly the pixels of its decoded twin. The host's loader decodes in
its worker processes (``data.workers``); outside them a set decodes on
``workers`` threads.

With ``decode = "gpu"`` the workers only read the files, and JPEGs are decoded
on the training GPU (``torchvision.io.decode_jpeg``), then centre-cropped and
resized there (bicubic, antialiased). Other formats are decoded on the CPU as
usual. GPU pixels differ slightly from Pillow's (another JPEG decoder and
resize), so the sample order and captions are the same as the CPU path's, the
pixels close but not identical.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fomo_host.api import FomoError

from .cache import CaptionedSamples
from .decoding import Source, UnreadableImage, decode_image, ordered_map

JPEG_MAGIC = b"\xff\xd8\xff"


class FileImages:
    """Encoded images as files."""

    def __init__(self, paths: Sequence[Path | str]) -> None:
        self.paths = [str(path) for path in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, index: int) -> str:
        return self.paths[index]

    def source(self, index: int) -> Source:
        return Path(self.paths[index])

    def read(self, index: int) -> bytes:
        with open(self.paths[index], "rb") as handle:
            return handle.read()


class ShardImages:
    """Encoded images as members of tar shards, read by offset (one open file per shard and process)."""

    def __init__(self, shards: Sequence[Path | str], shard_of: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, keys: Sequence[str]):
        self.shards = [str(shard) for shard in shards]
        self.shard_of = np.asarray(shard_of, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.keys = list(keys)
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}

    def name(self, index: int) -> str:
        return f"{self.shards[self.shard_of[index]]}:{self.keys[index]}"

    def read(self, index: int) -> bytes:
        if self._pid != os.getpid():  # a forked worker process: the parent's file positions are shared, open anew
            self._handles, self._pid = {}, os.getpid()
        shard = int(self.shard_of[index])
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = open(self.shards[shard], "rb")  # noqa: SIM115 - kept open for the next reads
        return os.pread(handle.fileno(), int(self.lengths[index]), int(self.offsets[index]))

    def source(self, index: int) -> Source:
        return self.read(index)


EncodedImages = FileImages | ShardImages


def in_loader_worker() -> bool:
    """True in a DataLoader worker process, which is one of many: decode on one thread there."""
    return torch.utils.data.get_worker_info() is not None


class StreamedSampleSet(CaptionedSamples):
    """A :class:`fomo_host.data.SampleSet` (and :class:`fomo_host.data.StagedImages`) decoding its images on use.

    ``decode_device``: None decodes on the CPU; a CUDA device decodes JPEGs there."""

    def __init__(
        self,
        encoded: EncodedImages,
        labels: torch.Tensor,
        caption_choices: Sequence[Sequence[str]],
        key: str,
        size: int,
        label: str,
        threads: int = 1,
        decode_device: torch.device | None = None,
    ) -> None:
        super().__init__(len(encoded), labels, caption_choices, key)
        self.encoded, self.size, self.label, self.threads, self.decode_device = encoded, size, label, threads, decode_device

    def _decode(self, index: int) -> np.ndarray:
        try:
            return decode_image(self.encoded.source(index), self.size)
        except UnreadableImage as exc:
            raise unreadable(self.label, self.encoded.name(index), str(exc)) from None
        except OSError as exc:
            raise unreadable(self.label, self.encoded.name(index), f"{type(exc).__name__}: {exc}") from None

    def _load_one(self, index: int) -> np.ndarray | bytes:
        if self.decode_device is None:
            return self._decode(index)
        data = self.encoded.read(index)
        return data if data.startswith(JPEG_MAGIC) else self._decode(index)

    def load_images(self, indices: torch.Tensor) -> Any:
        """On the CPU: uint8 ``[n, 3, S, S]``. For GPU decoding: per sample the JPEG's bytes, or the decoded image."""
        threads = 1 if in_loader_worker() else self.threads
        loaded = list(ordered_map(self._load_one, indices.tolist(), threads, window=4))
        if self.decode_device is None:
            return torch.from_numpy(np.stack(loaded)) if loaded else torch.empty((0, 3, self.size, self.size), dtype=torch.uint8)
        return [item if isinstance(item, bytes) else torch.from_numpy(item) for item in loaded], indices

    def finish_images(self, loaded: Any, device: torch.device) -> torch.Tensor:
        if self.decode_device is None:
            return loaded
        items, indices = loaded
        return decode_on_device(items, indices.tolist(), self.size, self.decode_device, lambda index: self.encoded.name(index), self.label)

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        return self.finish_images(self.load_images(indices), self.decode_device or torch.device("cpu"))


def unreadable(label: str, name: str, reason: str) -> FomoError:
    return FomoError(
        f"{label}: {name}: {reason}; streamed images are decoded when a batch uses them, so a damaged file stops the run: "
        "replace it (removing it changes the sample order: start the run again), or use cache = 'decoded', which skips and counts them"
    )


def decode_on_device(
    items: list[bytes | torch.Tensor], indices: list[int], size: int, device: torch.device, name: Callable[[int], str], label: str
) -> torch.Tensor:
    """uint8 ``[n, 3, size, size]`` on ``device``: JPEG bytes decoded there (centre square, bicubic antialiased resize),
    already decoded images copied there."""
    from torchvision.io import ImageReadMode, decode_jpeg

    images = torch.empty((len(items), 3, size, size), dtype=torch.uint8, device=device)
    jpegs = [position for position, item in enumerate(items) if isinstance(item, bytes)]
    for position, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            images[position] = item.to(device, non_blocking=True)
    if not jpegs:
        return images
    encoded = [torch.frombuffer(bytearray(items[position]), dtype=torch.uint8) for position in jpegs]  # type: ignore[arg-type]
    try:
        decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        # the batch call names no file: find the one that fails
        for position, data in zip(jpegs, encoded, strict=True):
            try:
                decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            except RuntimeError as exc:
                raise unreadable(label, name(indices[position]), f"JPEG decoding on {device.type} failed: {exc}") from None
        raise
    for position, image in zip(jpegs, decoded, strict=True):
        images[position] = square_resize(image, size)
    return images


def square_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """The central square of a uint8 ``[3, H, W]`` image, resized to ``size`` (bicubic, antialiased), as uint8."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[:, top : top + side, left : left + side]
    if side == size:
        return square
    resized = torch.nn.functional.interpolate(square[None].float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return resized[0].round_().clamp_(0, 255).to(torch.uint8)
